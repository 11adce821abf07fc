package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
)

// TestPlanCeilings (issue 18): the ceilings of a cluster's plan hold over
// the Kafka API. The development cluster is on the default plan, whose
// ceilings the operator lowers here: topics (CreateTopics,
// POLICY_VIOLATION), retention (CreateTopics, AlterConfigs and
// IncrementalAlterConfigs, POLICY_VIOLATION), consumer groups, those a
// simple OffsetCommit creates included (POLICY_VIOLATION), and the
// producer-id budget (InitProducerId, THROTTLING_QUOTA_EXCEEDED).
func TestPlanCeilings(t *testing.T) {
	url := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lowerDefaultPlan(t, url, func(c *limits.Limits) {
		c.MaxTopics, c.MaxGroups, c.MaxRetentionMs = 2, 2, 3_600_000
		c.ProducerIDBurst, c.ProducerIDsPerHour = 5, 1
	})
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1})
	cl := newClient(t, s)
	adm := kadm.NewClient(cl)

	policy := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, kerr.PolicyViolation) {
			t.Errorf("%s: %v, want POLICY_VIOLATION", what, err)
		}
	}
	// kadm returns a single topic's error as its own too.
	r, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"retention.ms": kmsg.StringPtr("-1")}, "forever")
	policy("topic kept forever under a 1 h ceiling", errors.Join(err, r.Err))
	createTopic(t, cl, "t1", 1, map[string]*string{"retention.ms": kmsg.StringPtr("3600000")})
	createTopic(t, cl, "t2", 1, nil)
	r, err = adm.CreateTopic(ctx, 1, -1, nil, "t3")
	policy("third topic under a ceiling of 2", errors.Join(err, r.Err))

	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("7200000")}}, "t1")
	if err != nil {
		t.Fatal(err)
	}
	policy("IncrementalAlterConfigs of retention.ms over the ceiling", alt[0].Err)
	alt, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("-1")}}, "t2")
	if err != nil {
		t.Fatal(err)
	}
	policy("AlterConfigs of retention.ms over the ceiling", alt[0].Err)
	if alt, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("1800000")}}, "t1"); err != nil || alt[0].Err != nil {
		t.Errorf("retention.ms within the ceiling: %v %v", err, alt)
	}

	// Groups: the broker reads the ceiling with the clusters' limits, every
	// --quota-interval; until then the pool-wide cap holds, so commit to
	// new groups until one is refused.
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "t1", Partition: 0, At: 0, LeaderEpoch: -1})
	commit := func(group string) error {
		resp, err := adm.CommitOffsets(ctx, group, offs)
		if err == nil {
			err = resp.Error()
		}
		return err
	}
	if err := commit("g1"); err != nil {
		t.Fatal(err)
	}
	refused := false
	for i := 0; i < 50 && !refused; i++ {
		err := commit(fmt.Sprintf("g-%d", i))
		switch {
		case errors.Is(err, kerr.PolicyViolation):
			refused = true
		case err != nil:
			t.Fatal(err)
		default:
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !refused {
		t.Fatal("commits to new groups never refused under a ceiling of 2 groups")
	}
	policy("OffsetCommit creating a group past the ceiling", commit("another"))
	if err := commit("g1"); err != nil {
		t.Errorf("commit to an existing group: %v", err)
	}

	// Producer ids: the plan's burst of 5, then throttled.
	rc := dialRaw(t, s.Broker(1).Addr)
	granted := 0
	for range 10 {
		resp, err := rc.request(kmsg.NewPtrInitProducerIDRequest())
		if err != nil {
			t.Fatal(err)
		}
		switch r := resp.(*kmsg.InitProducerIDResponse); {
		case r.ErrorCode == 0:
			granted++
		case r.ErrorCode == kerr.ThrottlingQuotaExceeded.Code && r.ThrottleMillis > 0:
		default:
			t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	}
	if granted != 5 {
		t.Errorf("%d of 10 InitProducerId granted, want the plan's burst of 5", granted)
	}
}

// lowerDefaultPlan sets the ceilings of the default plan, which the
// development cluster is on, in the database at url.
func lowerDefaultPlan(t *testing.T, url string, set func(*limits.Limits)) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.UpdateBillingPlan(ctx, store.DefaultPlan, func(p *store.BillingPlan) error {
		set(&p.Ceilings)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return st
}
