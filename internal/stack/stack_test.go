package stack

import (
	"testing"
	"time"
)

// A paused broker (SIGSTOP) that handles SIGTERM, as the broker does,
// keeps the signal pending until continued: Stop must continue it rather
// than wait out its bound.
func TestStopPaused(t *testing.T) {
	old := stopWait
	stopWait = 10 * time.Second
	defer func() { stopWait = old }()
	s := &Stack{t: t, bin: "/bin/sh", dir: t.TempDir(), brokers: map[int]*Broker{}}
	// The shell stands in for a broker: it traps SIGTERM and exits cleanly.
	p := s.spawn("broker-1", nil, "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done")
	s.brokers[1] = &Broker{ID: 1, proc: p}
	time.Sleep(200 * time.Millisecond) // let the shell install its trap
	s.Pause(1)
	time.Sleep(100 * time.Millisecond)
	s.Stop(1)
	if err := s.Exit(1); err != nil {
		t.Fatalf("exit: %v", err)
	}
}
