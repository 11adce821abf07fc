package broker

import (
	"context"
	"testing"
	"time"
)

// TestLoginBackoff: a flood of failed logins from one address is answered
// ever more slowly (up to 5 s); other addresses are not slowed, and a
// connection that goes away stops waiting.
func TestLoginBackoff(t *testing.T) {
	s := &Server{}
	for i := range 3 {
		if d := s.loginBackoff("10.0.0.1"); d != 0 {
			t.Fatalf("after %d failures the next login waits %s, want none", i, d)
		}
		s.loginFailed("10.0.0.1")
	}
	var prev time.Duration
	for range 10 {
		d := s.loginBackoff("10.0.0.1")
		if d < prev || d == 0 || d > 5*time.Second {
			t.Fatalf("backoff %s after %s: want growing, at most 5s", d, prev)
		}
		prev = d
		s.loginFailed("10.0.0.1")
	}
	if prev != 5*time.Second {
		t.Fatalf("backoff tops out at %s, want 5s", prev)
	}
	if d := s.loginBackoff("10.0.0.2"); d != 0 {
		t.Fatalf("another address waits %s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { s.loginDelay(ctx, "10.0.0.1"); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * time.Second):
		t.Fatal("loginDelay ignores a cancelled context")
	}
}
