// Package s3test gives tests a real S3-compatible server.
//
// Start picks, in order:
//
//  1. the server at $EDDY_S3_ENDPOINT (credentials from $EDDY_S3_ACCESS_KEY
//     and $EDDY_S3_SECRET_KEY), shared by every test: use unique bucket
//     names and clean up;
//  2. a private moto_server (Python moto) on a free loopback port, started
//     for the calling test and killed when it ends;
//  3. otherwise it skips the test, or fails it if $EDDY_S3_REQUIRE is set
//     (CI sets it so that a missing server cannot pass for a green run).
//
// Servers are path-style and accept any credentials in region us-east-1.
//
// StartMoto starts a private moto_server outside tests (eddy bench's S3
// run); its caller closes it.
package s3test

import (
	"bytes"
	"fmt"
	"github.com/eddy-streams/eddy/internal/freeport"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Environment variables read by Start.
const (
	EnvEndpoint  = "EDDY_S3_ENDPOINT"
	EnvAccessKey = "EDDY_S3_ACCESS_KEY"
	EnvSecretKey = "EDDY_S3_SECRET_KEY"
	EnvRequire   = "EDDY_S3_REQUIRE"
)

// Region is the region to sign requests for.
const Region = "us-east-1"

// startTimeout bounds how long moto_server may take to answer; it usually
// takes about a second.
const startTimeout = 30 * time.Second

// Start returns the endpoint URL and credentials of an S3-compatible server
// for t, as described in the package documentation.
func Start(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		return ep, os.Getenv(EnvAccessKey), os.Getenv(EnvSecretKey)
	}
	moto, err := exec.LookPath("moto_server")
	if err != nil {
		msg := fmt.Sprintf("s3test: no S3-compatible server: set %s to one, or install moto (pip install 'moto[server]') for moto_server", EnvEndpoint)
		if os.Getenv(EnvRequire) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// The port is free when probed; another process could take it before
	// moto binds it, so try a few.
	m, err := startMotoRetrying(moto)
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(m.Close)
	return m.Endpoint, MotoAccessKey, MotoSecretKey
}

// Credentials moto_server accepts (it accepts any).
const (
	MotoAccessKey = "testing"
	MotoSecretKey = "testing"
)

// Moto is a private moto_server, for runs outside tests (eddy bench).
type Moto struct {
	Endpoint string // http://127.0.0.1:port
	stop     func()
}

// StartMoto starts moto_server (from $PATH) on a free loopback port and
// waits until it answers. Close kills it and waits for it.
func StartMoto() (*Moto, error) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("s3test: no moto_server on $PATH (pip install 'moto[server]'): %w", err)
	}
	m, err := startMotoRetrying(path)
	if err != nil {
		return nil, fmt.Errorf("s3test: %w", err)
	}
	return m, nil
}

// Close kills the server and waits for it.
func (m *Moto) Close() { m.stop() }

// startMotoRetrying tries startMoto a few times: the port is free when
// probed, but another process could take it before moto binds it.
func startMotoRetrying(path string) (*Moto, error) {
	var lastErr error
	for range 3 {
		m, err := startMoto(path)
		if err == nil {
			return m, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// startMoto starts moto_server on a free port and waits until it answers.
func startMoto(path string) (*Moto, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 5 * time.Second // don't hang on output pipes held open
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		kill(cmd.Process)
		<-exited
	}

	endpoint := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(endpoint + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("moto_server on %s exited before answering:\n%s", addr, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("moto_server on %s did not answer within %v:\n%s", addr, startTimeout, out.String())
		}
	}
	return &Moto{Endpoint: endpoint, stop: stop}, nil
}

func freePort() (int, error) { return freeport.One() }

// syncBuffer collects the server's output for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
