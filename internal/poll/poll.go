// Package poll is how tests wait for a precondition that something else
// makes true in its own time: a partition led, a member assigned, a
// coordinator slot placed, a flush committed, a broker listed in
// Metadata. A test that assumes such a state instead of waiting for it
// passes on an idle machine and panics or fails obscurely on a loaded one.
//
// A condition is a func() error: nil when it holds, otherwise an error
// describing what was observed instead ("partition 7 led by broker 2").
// When a wait gives up, that last observation is what the failure says,
// together with what was awaited and for how long. Deadlines are meant to
// be generous: a wait ends as soon as its condition holds, so a long
// deadline costs nothing when things go well and saves a red run when a
// shared 2-core machine is busy.
//
// Until fails the test and must be called from the test's goroutine (as
// t.Fatal must); Wait returns an error and may be called from anywhere.
package poll

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Interval is the pause between two checks of a condition. Checks that
// query Postgres or a broker cost a round trip each; 50ms keeps a waiting
// test from loading the machine it waits on.
const Interval = 50 * time.Millisecond

// Until checks cond until it returns nil. If within passes first, it fails
// t with what was awaited, for how long, and cond's last error.
func Until(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := Wait(ctx, cond); err != nil {
		t.Fatalf("waited %v for %s: %v", within, what, err)
	}
}

// Wait checks cond until it returns nil or ctx ends. It returns nil once
// cond held, else an error wrapping ctx's error that carries cond's last
// error.
func Wait(ctx context.Context, cond func() error) error {
	var last error
	for {
		if last = cond(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last observed: %w", ctx.Err(), last)
		case <-time.After(Interval):
		}
	}
}

// ErrNotYet is what a condition with nothing more to say returns while it
// does not hold (True turns a bool into it).
var ErrNotYet = errors.New("poll: condition not met")

// True adapts a boolean condition.
func True(cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return ErrNotYet
	}
}
