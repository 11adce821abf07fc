package chaos

import (
	"errors"
	"testing"
	"time"
)

// A heal that fails ends its lane with the error (Execute fails the run
// with it) instead of being logged while the lane goes on.
func TestRunLaneHealFails(t *testing.T) {
	var injected []Step
	do := func(s Step) func() error {
		injected = append(injected, s)
		return func() error { return errors.New("postgres did not come back") }
	}
	steps := []Step{{Kind: FaultRestartPostgres}, {Kind: FaultKillBroker, Target: 1}}
	tl := &Timeline{}
	err := runLane(do, steps, time.Now(), tl, t.Logf)
	if err == nil {
		t.Fatal("runLane returned no error for a failed heal")
	}
	if len(injected) != 1 {
		t.Fatalf("injected %v after the failed heal", injected)
	}
	if ev := tl.Events(); len(ev) != 1 || ev[0].Err == "" {
		t.Fatalf("timeline %+v", ev)
	}
}

// The short run in make test deals every fault at least once.
func TestShortPlanCoversEveryKind(t *testing.T) {
	plan := Plan(shortSeed, shortDuration, shortEvery, nil, 3, 2)
	seen := map[FaultKind]int{}
	for _, s := range plan {
		seen[s.Kind]++
	}
	t.Logf("%d faults: %v", len(plan), seen)
	for _, k := range append(append([]FaultKind{}, ProcessFaults...), StorageFaults...) {
		if seen[k] == 0 {
			t.Errorf("the short run's plan has no %s: %v", k, seen)
		}
	}
}
