package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
)

// leadersOf returns which of the stack's first n control planes hold the
// lease, by their eddy_controlplane_leader gauge.
func leadersOf(ctx context.Context, s *stack.Stack, n int) ([]int, error) {
	var out []int
	for i := range n {
		ok, err := s.ControlPlane(i).Leader(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, i)
		}
	}
	return out, nil
}

// TestControlPlaneFailover (issue 23, acceptance 4): two control planes
// share one Postgres; under produce load the one holding the lease is
// SIGKILLed. The other takes the singleton loops over within 15 s,
// placement keeps working (a broker killed after the takeover has its
// partitions led elsewhere), REST requests to the survivor never fail,
// and every acknowledged record is read back exactly once.
func TestControlPlaneFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two control planes and three brokers")
	}
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), ControlPlanes: 2, API: true})
	var leader int
	poll.Until(t, time.Minute, "exactly one control plane to lead", func() error {
		ls, err := leadersOf(context.Background(), s, 2)
		if err != nil {
			return err
		}
		if len(ls) != 1 {
			return fmt.Errorf("leaders %v", ls)
		}
		leader = ls[0]
		return nil
	})
	survivor := 1 - leader

	const topic = "cp-failover"
	load := s.StartLoad(topic, 12)
	load.WaitFlowing(12, 2*time.Minute)

	// REST against the survivor, before, during and after the failover:
	// creates, lists and reads, none of which may fail.
	api := client.New(s.ControlPlane(survivor).API, client.WithToken(stack.OperatorToken))
	rctx, stopREST := context.WithCancel(context.Background())
	var (
		restOK   atomic.Int64
		restMu   sync.Mutex
		restErrs []error
		restWG   sync.WaitGroup
	)
	restWG.Go(func() {
		for i := 0; rctx.Err() == nil; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := func() error {
				created, err := api.CreateOrganization(ctx, client.CreateOrganizationRequest{Name: fmt.Sprintf("ha-org-%d", i)})
				if err != nil {
					return fmt.Errorf("create organisation %d: %w", i, err)
				}
				if _, err := api.GetOrganization(ctx, created.Organization.ID); err != nil {
					return fmt.Errorf("get organisation %d: %w", i, err)
				}
				if _, err := api.ListOrganizations(ctx, client.ListOptions{}); err != nil {
					return fmt.Errorf("list organisations: %w", err)
				}
				return nil
			}()
			cancel()
			if err != nil {
				restMu.Lock()
				restErrs = append(restErrs, err)
				restMu.Unlock()
			} else {
				restOK.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	defer func() {
		stopREST()
		restWG.Wait()
	}()

	time.Sleep(time.Second)
	s.KillControlPlane(leader)
	killed := time.Now()
	poll.Until(t, 15*time.Second, "the survivor to take the lease over", func() error {
		ok, err := s.ControlPlane(survivor).Leader(context.Background())
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("control plane %d does not lead yet", survivor)
		}
		return nil
	})
	t.Logf("control plane %d took over %v after control plane %d was killed", survivor, time.Since(killed).Round(10*time.Millisecond), leader)

	// Placement runs on the survivor: a broker killed now loses its
	// partitions to the others.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	before, err := stack.Leaders(ctx, load.Client(), topic)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	victim := before[0]
	s.Kill(int(victim))
	brokerKilled := time.Now()
	poll.Until(t, 30*time.Second, fmt.Sprintf("no partition led by the killed broker %d", victim), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cur, err := stack.Leaders(ctx, load.Client(), topic)
		if err != nil {
			return err
		}
		for p, l := range cur {
			if l == victim || l < 0 {
				return fmt.Errorf("partition %d led by %d (leaders %v)", p, l, cur)
			}
		}
		return nil
	})
	t.Logf("the killed broker's partitions were led elsewhere %v after its SIGKILL", time.Since(brokerKilled).Round(10*time.Millisecond))
	ackedThen, _ := load.Acked()
	poll.Until(t, time.Minute, "records acknowledged after the failovers", func() error {
		if n, _ := load.Acked(); n <= ackedThen {
			return fmt.Errorf("%d acknowledged, as many as after the broker failover", n)
		}
		return nil
	})

	stopREST()
	restWG.Wait()
	restMu.Lock()
	if len(restErrs) > 0 {
		t.Errorf("%d REST rounds against the survivor failed (%d succeeded); first: %v", len(restErrs), restOK.Load(), restErrs[0])
	}
	restMu.Unlock()
	if restOK.Load() == 0 {
		t.Error("no REST round succeeded")
	}
	t.Logf("%d REST rounds (create, get, list) against the survivor, none failed", restOK.Load())

	load.Stop()
	load.Verify()
}
