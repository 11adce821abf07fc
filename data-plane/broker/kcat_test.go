package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"github.com/eddy-streams/eddy/internal/freeport"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/stack"
)

// tool finds an external client. In CI (CI set) a missing tool is a
// failure — `make test` installs it — elsewhere the test is skipped.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; `make deps` installs it", name)
		}
		t.Skipf("%s is not installed (run `make deps`)", name)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.One()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// devPorts returns a base port for `eddy dev --port`: it uses base..base+2
// for its brokers and base+100..base+103 for metrics, so all of those must
// be free.
func devPorts(t *testing.T) int {
	t.Helper()
	base, err := freeport.Base(0, 1, 2, 100, 101, 102, 103)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// TestDevKcatRoundTrip starts the stack the way `make dev` does (eddy dev:
// its own Postgres, control plane, three brokers) and round-trips 10,000
// keyed records with headers through kcat.
func TestDevKcatRoundTrip(t *testing.T) {
	kcat := tool(t, "kcat")
	bin := stack.Binary(t)
	// Postgres runs as the postgres user when we are root: it must be
	// able to reach the data directory, which t.TempDir's 0700 parents
	// forbid.
	dir, err := os.MkdirTemp("", "eddy-dev-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() { // the brokers' own logs say why
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", filepath.Base(l), b)
			}
		}
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := devPorts(t)
	apiPort := freePort(t)
	cmd := exec.Command(bin, "dev", "--data-dir", dir, "--port", strconv.Itoa(port), "--pg-port", strconv.Itoa(freePort(t)),
		"--api-port", strconv.Itoa(apiPort))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd.Stderr = &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
			err := waitErr
			if err != nil {
				t.Errorf("eddy dev did not stop cleanly: %v\n%s", err, logs.String())
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Errorf("eddy dev did not stop within a minute after Ctrl-C")
		}
	}
	t.Cleanup(stop)

	ready := make(chan string, 1)
	go func() {
		var banner strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			banner.WriteString(sc.Text() + "\n")
			if sc.Text() == "ready" {
				ready <- banner.String()
			}
		}
	}()
	var banner string
	select {
	case banner = <-ready:
	case <-done:
		t.Fatalf("eddy dev exited: %v\n%s", waitErr, logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("eddy dev not ready after 2 minutes\n%s", logs.String())
	}
	bootstrap := "127.0.0.1:" + strconv.Itoa(port)
	// The REST API is up with the operator token eddy dev wrote.
	tok, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(apiPort)+"/v1/organizations", strings.NewReader(`{"name":"acme"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating an organisation through eddy dev's REST API: %s", resp.Status)
	}
	// eddy dev made a development tenant; its credentials are in dev.env
	// and in the banner's snippets.
	env := map[string]string{}
	envFile, err := os.ReadFile(filepath.Join(dir, "dev.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(envFile), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	key, secret := env["EDDY_API_KEY"], env["EDDY_API_SECRET"]
	auth := []string{"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=" + key, "-X", "sasl.password=" + secret}
	kcatLine := "kcat -b " + bootstrap + " " + strings.Join(auth, " ")
	if key == "" || secret == "" || !strings.Contains(banner, kcatLine) || !strings.Contains(banner, "kgo.SASL(plain.Auth{User: \""+key) ||
		!strings.Contains(banner, "curl -s -u "+key) {
		t.Fatalf("the banner must show kcat, franz-go and curl snippets with the dev tenant's key (dev.env: %q):\n%s", envFile, banner)
	}
	// The REST API takes the key too (the curl snippet).
	req, _ = http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(apiPort)+"/v1/clusters/"+env["EDDY_CLUSTER"]+"/topics", nil)
	req.SetBasicAuth(key, secret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("REST with the dev key: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// No unauthenticated access unless eddy dev --anonymous.
	lctx, lcancel := context.WithTimeout(context.Background(), time.Minute)
	defer lcancel()
	if out, err := exec.CommandContext(lctx, kcat, "-b", bootstrap, "-L", "-m", "5").CombinedOutput(); err == nil {
		t.Fatalf("an unauthenticated kcat listed metadata:\n%s", out)
	}

	const n = 10_000
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "key-%d\tvalue-%d\n", i, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod := exec.CommandContext(ctx, kcat, append(append([]string{"-b", bootstrap}, auth...), "-P", "-t", "kcat-roundtrip", "-K", "\t",
		"-H", "source=kcat", "-H", "run=1", "-X", "acks=all")...)
	prod.Stdin = strings.NewReader(in.String())
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	cons := exec.CommandContext(ctx, kcat, append(append([]string{"-b", bootstrap}, auth...), "-C", "-t", "kcat-roundtrip", "-o", "beginning", "-e",
		"-f", "%k\t%s\t%h\n")...)
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("consumed %d records, want %d", len(lines), n)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 3 || strings.TrimPrefix(f[0], "key-") != strings.TrimPrefix(f[1], "value-") {
			t.Fatalf("damaged record %q", l)
		}
		if f[2] != "source=kcat,run=1" {
			t.Fatalf("headers %q, want source=kcat,run=1", f[2])
		}
		if seen[f[0]] {
			t.Fatalf("record %s read twice", f[0])
		}
		seen[f[0]] = true
	}
	stop()
}
