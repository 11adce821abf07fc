package main

import (
	"bytes"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
)

// TestDevExitsWhenRESTPortIsTaken: when the control plane of `eddy dev`
// cannot bind its REST port, eddy dev stops its brokers and exits non-zero
// with that error instead of running on half-broken (or waiting for ever).
func TestDevExitsWhenRESTPortIsTaken(t *testing.T) {
	bin := stack.Binary(t)
	taken, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	apiPort := taken.Addr().(*net.TCPAddr).Port
	port := freePorts(t, 1)
	cmd := exec.Command(bin, "dev", "--data-dir", t.TempDir(), "--database-url", pgtest.URL(t),
		"--port", strconv.Itoa(port), "--api-port", strconv.Itoa(apiPort), "--brokers", "1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("eddy dev still running 2 minutes after its REST port was found taken\n%s", stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("eddy dev exited with %v, want exit status 1\n%s", err, stderr.String())
	}
	logs := stderr.String()
	for _, want := range []string{"eddy: control plane: ", "address already in use", "all brokers stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("eddy dev's log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(stdout.String(), "ready") {
		t.Errorf("eddy dev printed ready:\n%s", stdout.String())
	}
}
