package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/store"
)

// TestPlanCeilings: a plan's ceilings cap its organisations' clusters'
// effective limits (the lower of the two) in the brokers' snapshot and in
// the store's own checks (topics, partitions, retention); the default
// plan caps nothing that Validate allows; clusters outside any
// organisation are on the default plan.
func TestPlanCeilings(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	def, err := st.BillingPlan(ctx, store.DefaultPlan)
	if err != nil || def.Ceilings != limits.Widest() {
		t.Fatalf("default plan %+v, %v; want the widest ceilings", def, err)
	}
	if err := st.EnsureCluster(ctx, "vc-dev", "dev"); err != nil {
		t.Fatal(err)
	}
	ceil := limits.Widest()
	ceil.MaxTopics, ceil.IngressMBps, ceil.MaxRetentionMs = 2, 10, 3_600_000
	p, err := st.CreateBillingPlan(ctx, store.BillingPlan{ID: "small", Name: "Small", Currency: "USD", Ceilings: ceil})
	if err != nil || p.Ceilings != ceil {
		t.Fatalf("create plan: %+v, %v", p, err)
	}
	if _, err := st.CreateBillingPlan(ctx, store.BillingPlan{ID: "small", Name: "Again", Currency: "USD", Ceilings: ceil}); !errors.Is(err, store.ErrExists) {
		t.Errorf("second plan small: %v, want ErrExists", err)
	}
	if priced, err := st.Plan(ctx, "small"); err != nil || len(priced.Prices) == 0 {
		t.Errorf("new plan's price book: %+v, %v; want the default plan's", priced, err)
	}
	org, _, _, err := st.CreateOrg(ctx, "acme", []byte("h"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetOrgBilling(ctx, store.OrgBilling{OrgID: org.ID, PlanID: "small", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	if id, c, err := st.OrgCeilings(ctx, org.ID); err != nil || id != "small" || c != ceil {
		t.Fatalf("OrgCeilings = %s %+v %v", id, c, err)
	}
	cl, err := st.CreateCluster(ctx, org.ID, "c", limits.Defaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cl.PlanID != "small" || cl.Ceilings != ceil || cl.Limits != limits.Defaults() {
		t.Errorf("cluster's plan %s %+v, limits %+v", cl.PlanID, cl.Ceilings, cl.Limits)
	}
	all, err := st.ClusterLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := all[cl.ID]; got.IngressMBps != 10 || got.MaxTopics != 2 || got.EgressMBps != limits.Defaults().EgressMBps {
		t.Errorf("effective limits %+v, want ingress 10 and topics 2 from the plan, the rest the cluster's", got)
	}
	if got := all["vc-dev"]; got != limits.Defaults() {
		t.Errorf("cluster outside any organisation: %+v, want the defaults under the default plan", got)
	}

	if _, _, err := st.CreateTopic(ctx, org.ID, cl.ID, "long", 1, map[string]string{"retention.ms": "-1"}); !errors.Is(err, store.ErrLimit) ||
		!strings.Contains(err.Error(), "retention.ms") {
		t.Errorf("topic retained forever under a 1 h ceiling: %v, want ErrLimit naming retention.ms", err)
	}
	for _, name := range []string{"t1", "t2"} {
		if _, _, err := st.CreateTopic(ctx, org.ID, cl.ID, name, 1, map[string]string{"retention.ms": "3600000"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := st.CreateTopic(ctx, org.ID, cl.ID, "t3", 1, nil); !errors.Is(err, store.ErrLimit) || !strings.Contains(err.Error(), "2 topics") {
		t.Errorf("third topic under a ceiling of 2: %v, want ErrLimit", err)
	}
	if err := st.SetTopicConfigs(ctx, cl.ID, "t1", map[string]string{"retention.ms": "3600001"}); !errors.Is(err, store.ErrLimit) {
		t.Errorf("retention raised over the ceiling: %v, want ErrLimit", err)
	}
	if _, err := st.UpdateTopic(ctx, org.ID, cl.ID, "t1", 0, map[string]string{"retention.ms": "-1"}); !errors.Is(err, store.ErrLimit) {
		t.Errorf("retention raised over the ceiling by UpdateTopic: %v, want ErrLimit", err)
	}

	// Raising the ceiling lifts the cap at once.
	up, err := st.UpdateBillingPlan(ctx, "small", func(p *store.BillingPlan) error {
		p.Ceilings.MaxTopics = 3
		return nil
	})
	if err != nil || up.Ceilings.MaxTopics != 3 {
		t.Fatalf("update plan: %+v, %v", up, err)
	}
	if _, _, err := st.CreateTopic(ctx, org.ID, cl.ID, "t3", 1, nil); err != nil {
		t.Errorf("third topic under a ceiling of 3: %v", err)
	}
	if _, err := st.UpdateBillingPlan(ctx, "nope", func(*store.BillingPlan) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of no plan: %v", err)
	}
	plans, _, err := st.BillingPlans(ctx, store.Page{})
	if err != nil || len(plans) != 2 || plans[0].ID != "small" || plans[1].ID != store.DefaultPlan {
		t.Errorf("plans %+v, %v", plans, err)
	}
}
