package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// TestPlans (issue 18, acceptance 7): the operator manages plans; a
// tenant's limits over its plan's ceiling are refused with problem+json
// naming the limit and the ceiling; raising the ceiling lets the same
// PATCH through; lowering it caps the effective limit without changing
// the cluster's own; tenants can neither see nor change plans.
func TestPlans(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := e.newTenant("acme")

	std := must[client.Plan](t)(e.operator.GetPlan(ctx, "standard"))
	if std.Ceilings != limits.Widest() {
		t.Errorf("default plan's ceilings %+v, want the widest", std.Ceilings)
	}
	small := must[client.Plan](t)(e.operator.CreatePlan(ctx, client.CreatePlanRequest{ID: "small", Name: "Small",
		Ceilings: &limits.Limits{IngressMBps: 50, MaxConnections: 200}}))
	want := limits.Widest()
	want.IngressMBps, want.MaxConnections = 50, 200
	if small.Ceilings != want || small.Currency != "USD" {
		t.Fatalf("created %+v, want ceilings %+v in USD", small, want)
	}
	if _, err := e.operator.CreatePlan(ctx, client.CreatePlanRequest{ID: "small", Name: "Again"}); client.StatusOf(err) != 409 {
		t.Errorf("second plan small: %v, want 409", err)
	}
	if l := must[client.List[client.Plan]](t)(e.operator.ListPlans(ctx, client.ListOptions{})); len(l.Items) != 2 {
		t.Errorf("plans %+v", l.Items)
	}
	must[client.BillingSettings](t)(e.operator.SetBillingSettings(ctx, a.org.Organization.ID, client.BillingSettings{Plan: "small", TimeZone: "UTC"}))

	// Create and PATCH over the ceiling: 422 naming the limit and the ceiling.
	_, err := a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "big", Limits: &limits.Limits{MaxConnections: 500}})
	overCeiling(t, err, "limits.max_connections", "at most 200")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c1", Limits: &limits.Limits{IngressMBps: 40}}))
	// Limits left out are the defaults capped by the ceilings.
	if cl.Plan != "small" || cl.Ceilings != want || cl.EffectiveLimits.IngressMBps != 40 || cl.Limits.MaxConnections != 200 {
		t.Errorf("cluster plan %q ceilings %+v effective %+v", cl.Plan, cl.Ceilings, cl.EffectiveLimits)
	}
	_, err = a.admin.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{Limits: &limits.Limits{IngressMBps: 80}})
	overCeiling(t, err, "limits.ingress_mbps", "at most 50")
	status, p, _ := e.send(ctx, a, "PATCH", "/v1/clusters/"+cl.ID, "application/json", `{"limits":{"max_connections":201}}`)
	if status != 422 || p.Type != client.ProblemLimitExceeded || len(p.Errors) != 1 || p.Errors[0].Field != "limits.max_connections" ||
		!strings.Contains(p.Errors[0].Message, "200") || !strings.Contains(p.Errors[0].Message, "small") {
		t.Errorf("raw PATCH over the ceiling: %d %+v", status, p)
	}
	if got := must[client.Cluster](t)(a.admin.GetCluster(ctx, cl.ID)); got.Limits.IngressMBps != 40 || got.Limits.MaxConnections != 200 {
		t.Errorf("refused PATCHes changed the limits: %+v", got.Limits)
	}

	// The operator raises the ceiling: the same PATCH succeeds.
	must[client.Plan](t)(e.operator.UpdatePlan(ctx, "small", client.UpdatePlanRequest{Ceilings: &limits.Limits{IngressMBps: 100}}))
	up := must[client.Cluster](t)(a.admin.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{Limits: &limits.Limits{IngressMBps: 80}}))
	if up.Limits.IngressMBps != 80 || up.EffectiveLimits.IngressMBps != 80 {
		t.Errorf("after raising the ceiling: limits %+v effective %+v", up.Limits, up.EffectiveLimits)
	}

	// The operator lowers it: the effective limit follows, the cluster's
	// own is kept, and other limits can still change.
	low := must[client.Plan](t)(e.operator.UpdatePlan(ctx, "small", client.UpdatePlanRequest{Name: ptr("Smaller"), Ceilings: &limits.Limits{IngressMBps: 20}}))
	if low.Name != "Smaller" || low.Ceilings.IngressMBps != 20 || low.Ceilings.MaxConnections != 200 {
		t.Errorf("lowered plan %+v", low)
	}
	got := must[client.Cluster](t)(a.admin.GetCluster(ctx, cl.ID))
	if got.Limits.IngressMBps != 80 || got.EffectiveLimits.IngressMBps != 20 {
		t.Errorf("after lowering the ceiling: limits %+v effective %+v; want 80 and 20", got.Limits, got.EffectiveLimits)
	}
	if up := must[client.Cluster](t)(a.admin.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{Limits: &limits.Limits{MaxConnections: 150}})); up.Limits.MaxConnections != 150 {
		t.Errorf("changing another limit under a lowered ceiling: %+v", up.Limits)
	}

	// Topics and retention over REST: the store's one rule, 422.
	must[client.Plan](t)(e.operator.UpdatePlan(ctx, "small", client.UpdatePlanRequest{Ceilings: &limits.Limits{MaxTopics: 1, MaxRetentionMs: 3_600_000}}))
	if _, err := a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "forever", Configs: map[string]string{"retention.ms": "-1"}}); client.StatusOf(err) != 422 ||
		!strings.Contains(err.Error(), "retention.ms") {
		t.Errorf("topic kept forever under a 1 h ceiling: %v, want 422 naming retention.ms", err)
	}
	must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "hour", Configs: map[string]string{"retention.ms": "3600000"}}))
	if _, err := a.admin.UpdateTopic(ctx, cl.ID, "hour", client.UpdateTopicRequest{Configs: &map[string]string{"retention.ms": "7200000"}}); client.StatusOf(err) != 422 {
		t.Errorf("retention raised over the ceiling: %v, want 422", err)
	}
	if _, err := a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "second"}); client.StatusOf(err) != 422 || !strings.Contains(err.Error(), "topics") {
		t.Errorf("second topic under a ceiling of 1: %v, want 422", err)
	}

	// Ceilings keep to limits' static ranges.
	for _, tc := range []struct{ method, path, body, field string }{
		{"PATCH", "/v1/plans/small", `{"ceilings":{"ingress_mbps":10001}}`, "ceilings.ingress_mbps"},
		{"POST", "/v1/plans", `{"id":"Bad Id","name":"x"}`, "id"},
		{"POST", "/v1/plans", `{"id":"zero","name":"x","ceilings":{"max_topics":0}}`, "ceilings.max_topics"},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, e.url+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		resp, err := e.raw().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p client.Problem
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != 400 || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("%s %s %s: %d %+v, want 400 naming %s", tc.method, tc.path, tc.body, resp.StatusCode, p, tc.field)
		}
	}
	if _, err := e.operator.GetPlan(ctx, "nope"); !client.IsNotFound(err) {
		t.Errorf("no plan: %v", err)
	}

	// Tenants can neither list, read nor change plans.
	if _, err := a.admin.ListPlans(ctx, client.ListOptions{}); client.StatusOf(err) != 403 {
		t.Errorf("tenant lists plans: %v", err)
	}
	if _, err := a.admin.CreatePlan(ctx, client.CreatePlanRequest{ID: "free", Name: "Free"}); client.StatusOf(err) != 403 {
		t.Errorf("tenant creates a plan: %v", err)
	}
	if _, err := a.admin.UpdatePlan(ctx, "small", client.UpdatePlanRequest{Ceilings: &limits.Limits{IngressMBps: 10_000}}); !client.IsNotFound(err) {
		t.Errorf("tenant raises its ceiling: %v", err)
	}
}

func overCeiling(t *testing.T, err error, field, msg string) {
	t.Helper()
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != 422 || p.Type != client.ProblemLimitExceeded {
		t.Fatalf("%v, want 422 %s", err, client.ProblemLimitExceeded)
	}
	for _, fe := range p.Errors {
		if fe.Field == field && strings.Contains(fe.Message, msg) {
			return
		}
	}
	t.Errorf("%+v does not name %s with %q", p.Errors, field, msg)
}
