package broker_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// apiVersionsFrame is a sized ApiVersions v3 request.
func apiVersionsFrame() []byte {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	return sized(append(append(header(18, 3), 0), req.AppendTo(nil)...))
}

// closedWithin waits for the broker to close nc (reading whatever it
// sends) and reports how long that took, or ok=false after limit.
func closedWithin(nc net.Conn, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	nc.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, nc)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return limit, false
	}
	return time.Since(start), true
}

// served reports whether a new connection from local (e.g. 127.0.0.2;
// "" for any) is answered an ApiVersions; the connection stays open while
// t runs when it is.
func served(t *testing.T, addr, local string) bool {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(apiVersionsFrame()); err != nil {
		return false
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return false
	}
	_, err = io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint32(size[:])))
	return err == nil
}

// TestGuardDeadlines: 1,000 connections that never authenticate, and one
// that keeps sending ApiVersions without authenticating, are all closed
// by --auth-timeout; an authenticated connection outlives it, and is
// closed after --connections-max-idle once it stops sending.
func TestGuardDeadlines(t *testing.T) {
	url, ts := tenants(t, "guarded")
	a := account{sa: ts[0].sa, keyID: ts[0].keyID, secret: ts[0].secret}
	const authTimeout, maxIdle = 2 * time.Second, 4 * time.Second
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1, Metrics: true,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN",
			"--auth-timeout=" + authTimeout.String(), "--connections-max-idle=" + maxIdle.String(),
			"--max-connections-per-ip=2000", "--max-connection-creation-rate=100000"},
		ClientOpts: []kgo.Opt{kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())}})
	addr := s.Bootstrap()[0]

	busy := dialPlain(t, addr, a) // keeps sending: outlives both limits
	idle := dialPlain(t, addr, a) // authenticated, then silent
	var (
		idleTook   time.Duration
		idleClosed bool
		wg         sync.WaitGroup
	)
	wg.Go(func() { idleTook, idleClosed = closedWithin(idle.nc, maxIdle+10*time.Second) })

	const n = 1000
	took := make([]time.Duration, n+1)
	ok := make([]bool, n+1)
	for i := range n {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer nc.Close()
		wg.Go(func() { took[i], ok[i] = closedWithin(nc, authTimeout+10*time.Second) })
	}
	chatty, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer chatty.Close()
	wg.Go(func() { took[n], ok[n] = closedWithin(chatty, authTimeout+10*time.Second) })
	wg.Go(func() {
		for range 50 {
			if _, err := chatty.Write(apiVersionsFrame()); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	for range 6 {
		busy.do(kmsg.NewPtrApiVersionsRequest())
		time.Sleep(time.Second)
	}
	wg.Wait()
	for i := range took {
		switch {
		case !ok[i]:
			t.Fatalf("connection %d (of %d unauthenticated) still open %s after the auth timeout", i, n+1, 10*time.Second)
		case took[i] < authTimeout-500*time.Millisecond:
			// Timed from the dial's return: the broker's clock
			// started a little earlier.
			t.Fatalf("connection %d closed after %s, before the auth timeout (%s)", i, took[i], authTimeout)
		}
	}
	// The authenticated, busy connection is still served.
	busy.do(kmsg.NewPtrMetadataRequest())
	// The idle one was closed once --connections-max-idle passed.
	if !idleClosed || idleTook < maxIdle-500*time.Millisecond {
		t.Fatalf("idle authenticated connection: closed=%v after %s (idle timeout %s)", idleClosed, idleTook, maxIdle)
	}
	page := scrape(t, s)
	if got := metricValue(page, "eddy_broker_connections_closed_total", `reason="auth_timeout"`); got != n+1 {
		t.Errorf("closed for the auth timeout: %v, want %d", got, n+1)
	}
	if got := metricValue(page, "eddy_broker_connections_closed_total", `reason="idle"`); got < 1 {
		t.Errorf("closed for idleness: %v, want at least 1", got)
	}
}

// waitNoConnections waits until the broker holds no connection (those the
// stack opened to see it start close asynchronously).
func waitNoConnections(t *testing.T, s *stack.Stack) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for metricSum(scrape(t, s), "eddy_broker_connections") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the broker still holds connections after 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConnectionLimits: connections over --max-connections-per-ip (or an
// address's override) and over --max-connections are closed at once and
// counted by reason; a freed slot is taken again.
func TestConnectionLimits(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 1, Metrics: true,
		BrokerArgs: []string{"--max-connections-per-ip=3", "--max-connections=5", "--max-connections-per-ip-overrides=127.0.0.3=0"}})
	addr := s.Bootstrap()[0]
	waitNoConnections(t, s)

	if served(t, addr, "127.0.0.3") {
		t.Fatal("an address with an override of 0 was served")
	}
	for i := range 3 {
		if !served(t, addr, "127.0.0.1") {
			t.Fatalf("connection %d of 3 from 127.0.0.1 refused", i+1)
		}
	}
	if served(t, addr, "127.0.0.1") {
		t.Fatal("a 4th connection from 127.0.0.1 was served (--max-connections-per-ip=3)")
	}
	for i := range 2 {
		if !served(t, addr, "127.0.0.2") {
			t.Fatalf("connection %d of 2 from 127.0.0.2 refused", i+1)
		}
	}
	if served(t, addr, "127.0.0.4") {
		t.Fatal("a 6th connection was served (--max-connections=5)")
	}
	page := scrape(t, s)
	for reason, want := range map[string]float64{"per_ip": 2, "max_connections": 1, "creation_rate": 0} {
		if got := metricValue(page, "eddy_broker_connections_refused_total", `reason="`+reason+`"`); got != want {
			t.Errorf("refused for %s: %v, want %v", reason, got, want)
		}
	}
}

// TestConnectionCreationRate: beyond --max-connection-creation-rate (a
// bucket of one second's worth) new connections are closed at once and
// counted; once it refills, connections are served again.
func TestConnectionCreationRate(t *testing.T) {
	const rate = 10
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 1, Metrics: true,
		BrokerArgs: []string{"--max-connection-creation-rate=10"}})
	addr := s.Bootstrap()[0]
	waitNoConnections(t, s)
	time.Sleep(1100 * time.Millisecond) // a full bucket

	start := time.Now()
	var conns []net.Conn
	for range 4 * rate {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		conns = append(conns, nc)
	}
	elapsed := time.Since(start)
	refused := 0
	for _, nc := range conns {
		if _, ok := closedWithin(nc, 500*time.Millisecond); ok {
			refused++
		}
	}
	// A full bucket, plus what refilled while dialing, is let in.
	if want := 4*rate - rate - int(elapsed.Seconds()*rate) - 1; refused < want {
		t.Fatalf("%d of %d connections opened in %s were refused; want at least %d", refused, 4*rate, elapsed, want)
	}
	if got := metricValue(scrape(t, s), "eddy_broker_connections_refused_total", `reason="creation_rate"`); got != float64(refused) {
		t.Fatalf("refused for the creation rate: %v, want %d", got, refused)
	}
	time.Sleep(time.Second)
	if !served(t, addr, "") {
		t.Fatal("no connection served once the bucket refilled")
	}
}
