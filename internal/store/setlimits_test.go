package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/store"
)

// TestSetLimits: the Kafka API's way to change a cluster's limits keeps
// them in range (ErrInvalid) and under the plan's ceilings (ErrLimit),
// writes nothing when only validating, and applies what passes.
func TestSetLimits(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	if err := st.EnsureCluster(ctx, "vc-dev", "dev"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateBillingPlan(ctx, store.DefaultPlan, func(p *store.BillingPlan) error {
		p.Ceilings.IngressMBps = 50
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	set := func(validateOnly bool, ingress int32) error {
		_, err := st.SetLimits(ctx, "vc-dev", validateOnly, func(l *limits.Limits, ceil limits.Limits) error {
			if ceil.IngressMBps != 50 {
				t.Errorf("ceilings %+v", ceil)
			}
			l.IngressMBps = ingress
			return nil
		})
		return err
	}
	if err := set(false, 60); !errors.Is(err, store.ErrLimit) {
		t.Errorf("above the ceiling: %v, want ErrLimit", err)
	}
	if err := set(false, 0); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("out of range: %v, want ErrInvalid", err)
	}
	if err := set(true, 10); err != nil {
		t.Fatal(err)
	}
	if own, _, err := st.Limits(ctx, "vc-dev"); err != nil || own.IngressMBps != limits.Defaults().IngressMBps {
		t.Errorf("after refusals and a validation: %+v %v, want the default ingress", own, err)
	}
	if err := set(false, 10); err != nil {
		t.Fatal(err)
	}
	if own, ceil, err := st.Limits(ctx, "vc-dev"); err != nil || own.IngressMBps != 10 || ceil.IngressMBps != 50 {
		t.Errorf("after a change: %+v %+v %v", own, ceil, err)
	}
	if _, _, err := st.CreateTopic(ctx, store.AnyOrg, "vc-dev", "__consumer_offsets", 1, nil); !errors.Is(err, store.ErrExists) {
		t.Errorf("creating __consumer_offsets: %v, want ErrExists", err)
	}
}
