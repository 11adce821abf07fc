package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
)

// TestRollingRestart (issue 23, acceptance 3): every broker in turn is
// sent SIGTERM, as Kubernetes does, waited for, restarted and waited for
// until its /readyz answers, under acks=all idempotent load. No
// acknowledged record is lost or duplicated, every broker hands its
// partitions off before it stops serving, and drains and exits cleanly
// within its --shutdown-timeout. The roll is paced as the Helm chart paces
// it (broker.minReadySeconds): clients' idle connections to a broker's
// previous process are gone before the next broker hands partitions to
// it. The produce p99 before and during the roll is logged, not asserted:
// the machine is shared.
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts three brokers under load")
	}
	const (
		brokers         = 3
		shutdownTimeout = 15 * time.Second // the default
		// rollPace is the chart's broker.minReadySeconds.
		rollPace = 45 * time.Second
	)
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: brokers, Metrics: true,
		BrokerArgs: []string{"--shutdown-timeout=" + shutdownTimeout.String()}})
	for id := 1; id <= brokers; id++ {
		s.WaitReady(id, time.Minute)
	}
	const topic = "rolling"
	load := s.StartLoad(topic, 12)
	load.WaitFlowing(12, 2*time.Minute)
	steady := time.Now()
	time.Sleep(10 * time.Second)

	var stops []time.Time // when each broker was sent SIGTERM
	rollStart := time.Now()
	t.Logf("roll starts at %s", rollStart.UTC().Format("15:04:05.000"))
	for id := 1; id <= brokers; id++ {
		t.Logf("+%v: stopping broker %d", time.Since(rollStart).Round(time.Millisecond), id)
		handedOff := strings.Count(s.Log(id), "partitions handed off")
		stopping := time.Now()
		stops = append(stops, stopping)
		s.Stop(id)
		drained := time.Since(stopping)
		if err := s.Exit(id); err != nil {
			t.Errorf("broker %d exited after SIGTERM with %v", id, err)
		}
		// Its partitions went to the other brokers while it still served
		// (a controlled shutdown), not when its session ended.
		if strings.Count(s.Log(id), "partitions handed off") != handedOff+1 {
			t.Errorf("broker %d did not hand its partitions off before it stopped", id)
		}
		if drained > shutdownTimeout+5*time.Second {
			t.Errorf("broker %d took %v to stop, past its --shutdown-timeout %v", id, drained, shutdownTimeout)
		}
		restarting := time.Now()
		s.Restart(id)
		s.WaitReady(id, time.Minute)
		t.Logf("broker %d: stopped in %v, ready again %v after its restart", id,
			drained.Round(10*time.Millisecond), time.Since(restarting).Round(10*time.Millisecond))
		if id < brokers {
			time.Sleep(rollPace)
		}
	}
	rollEnd := time.Now()
	acked, _ := load.Acked()
	poll.Until(t, time.Minute, "records acknowledged after the roll", func() error {
		if n, _ := load.Acked(); n <= acked {
			return fmt.Errorf("%d acknowledged, as many as when the roll ended", n)
		}
		return nil
	})

	load.Stop()
	before, nBefore := load.P99(steady, rollStart)
	during, nDuring := load.P99(rollStart, rollEnd)
	ratio := 0.0
	if before > 0 {
		ratio = float64(during) / float64(before)
	}
	t.Logf("produce p99 before the roll %v (%d acks), during it %v (%d acks, %.1fx); the roll took %v",
		before, nBefore, during, nDuring, ratio, rollEnd.Sub(rollStart).Round(10*time.Millisecond))

	// Undiluted by the pacing: the p99 of what was sent in the 5 s from
	// each SIGTERM (the drain, the hand-offs and the restart).
	for i, at := range stops {
		p99, n := load.P99(at, at.Add(5*time.Second))
		t.Logf("broker %d: produce p99 in the 5s from its SIGTERM %v (%d acks)", i+1, p99, n)
	}
	for _, st := range load.Slowest(rollStart, rollEnd, 5) {
		t.Logf("stall during the roll: %s", st)
	}
	load.Verify()
}
