package broker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestReady: a broker is not ready before its session is registered and
// its partitions are loaded, is ready once serving, and is not ready again
// while draining.
func TestReady(t *testing.T) {
	ctx := context.Background()
	var idle Server
	if err := idle.Ready(ctx); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("before registering: Ready = %v, want %v", err, ErrNotRegistered)
	}
	idle.session.Store(1)
	if err := idle.Ready(ctx); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("registered, nothing loaded: Ready = %v, want %v", err, ErrNotLoaded)
	}

	r := startRig(t, rigOptions{placement: true})
	deadline := time.Now().Add(10 * time.Second)
	for r.s.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 10s after registering: %v", r.s.Ready(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.s.mu.Lock()
	r.s.draining = true
	r.s.mu.Unlock()
	if err := r.s.Ready(ctx); !errors.Is(err, ErrDraining) {
		t.Errorf("draining: Ready = %v, want %v", err, ErrDraining)
	}
	r.s.mu.Lock()
	r.s.draining = false
	r.s.mu.Unlock()
}
