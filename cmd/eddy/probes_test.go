package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/migrations"
)

// TestBrokerProbes runs `eddy broker` as Kubernetes does and watches its
// probes: /readyz answers 503 until the broker has registered and loaded
// its partitions (a slow --metadata-interval widens that window), then
// 200; after SIGTERM /livez never fails while the broker drains, and the
// process exits cleanly.
func TestBrokerProbes(t *testing.T) {
	bin := stack.Binary(t)
	url := pgtest.URL(t)
	if _, err := migrations.Apply(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	metrics := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(bin, "broker", "--database-url", url, "--data-dir", t.TempDir(),
		"--listen", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--anonymous-cluster", "vc-dev",
		"--metrics-listen", metrics, "--metadata-interval", "1s", "--shutdown-timeout", "10s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("broker log:\n%s", stderr.String())
		}
	}()

	cl := &http.Client{Timeout: time.Second}
	// probe returns the status of GET path, or 0 if nothing answered.
	probe := func(path string) (int, string) {
		resp, err := cl.Get("http://" + metrics + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	var notReady []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := probe("/readyz")
		if code == http.StatusOK {
			break
		}
		if code == http.StatusServiceUnavailable {
			notReady = append(notReady, strings.TrimSpace(body))
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s: %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(notReady) == 0 || !strings.Contains(notReady[len(notReady)-1], "partitions not loaded") {
		t.Errorf("/readyz before ready: %q; want 503s ending with partitions not loaded", dedup(notReady))
	}
	t.Logf("not ready while starting: %q", dedup(notReady))
	if code, _ := probe("/livez"); code != http.StatusOK {
		t.Errorf("/livez of a ready broker: %d", code)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var whileDraining []string
	for exited := false; !exited; {
		select {
		case err := <-done:
			done <- err // for the deferred Wait
			if err != nil {
				t.Errorf("broker exited with %v after SIGTERM", err)
			}
			exited = true
		default:
			code, body := probe("/livez")
			switch code {
			case 0: // the metrics server stops last, just before exit
			case http.StatusOK:
				if c, b := probe("/readyz"); c != 0 {
					whileDraining = append(whileDraining, strconv.Itoa(c)+" "+strings.TrimSpace(b))
				}
			default:
				t.Errorf("/livez during the drain: %d %s", code, body)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	t.Logf("/readyz during the drain: %q", dedup(whileDraining))
}

// dedup drops consecutive repeats.
func dedup(s []string) []string {
	var out []string
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}
