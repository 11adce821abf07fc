package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/autoscale"
	"github.com/eddy-streams/eddy/internal/brokerload"
	"github.com/eddy-streams/eddy/internal/store"
)

// TestPool (issue 25): the operator sees the broker pool (zones, state,
// what each broker leads, its last load report) and the autoscaler's
// evaluations over time with their decisions; bad parameters are 400
// problem+json naming the parameter; tenants are refused both with 403.
func TestPool(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Three brokers in two zones: 1 reports load and leads the topic's
	// partitions, 2 leads coordinator slots, 3 drains.
	epochs := map[int32]int64{}
	for id, rack := range map[int32]string{1: "zone-a", 2: "zone-b", 3: "zone-a"} {
		epochs[id] = must[int64](t)(e.st.Register(ctx, id, "127.0.0.1", 9090+id, rack, time.Minute))
	}
	reported := time.Now().UTC().Truncate(time.Second)
	load := brokerload.Report{At: reported, Interval: 1, Rates: brokerload.Rates{BytesIn: 1000, BytesOut: 3000, Requests: 12, Connections: 4},
		CPUUsed: 0.25, CPUCores: 2, MemoryBytes: 1 << 26, Partitions: 3}
	if err := e.st.Heartbeat(ctx, 1, epochs[1], time.Minute, load.Marshal()); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetDraining(ctx, 3, true); err != nil {
		t.Fatal(err)
	}
	a := e.newTenant("acme")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "prod"}))
	must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "orders", Partitions: ptr[int32](3)}))
	if _, _, err := e.st.PlaceRound(ctx, func(_ []store.BrokerLoad, items []store.Item) []store.Assignment {
		var out []store.Assignment
		for _, it := range items {
			if it.Kind == store.KindPartition {
				out = append(out, store.Assignment{Item: it, Broker: 1})
			}
		}
		return out
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AssignSlots(ctx, 2, 1, 0, 1); err != nil {
		t.Fatal(err)
	}

	pool := must[client.BrokerList](t)(e.operator.ListBrokers(ctx))
	if len(pool.Items) != 3 {
		t.Fatalf("pool %+v, want brokers 1, 2 and 3", pool.Items)
	}
	b1, b2, b3 := pool.Items[0], pool.Items[1], pool.Items[2]
	if b1.ID != 1 || b1.Rack != "zone-a" || b1.Port != 9091 || b1.State != client.BrokerLive || b1.Partitions != 3 || b1.CoordinatorSlots != 0 {
		t.Errorf("broker 1: %+v", b1)
	}
	if l := b1.Load; l.BytesInPerSec != 1000 || l.BytesOutPerSec != 3000 || l.Connections != 4 || l.CPUCoresUsed != 0.25 ||
		l.CPUCores != 2 || l.ReportedAt == nil || !l.ReportedAt.Equal(reported) {
		t.Errorf("broker 1's load %+v, want its report %+v", l, load)
	}
	if b2.ID != 2 || b2.Rack != "zone-b" || b2.State != client.BrokerLive || b2.Partitions != 0 || b2.CoordinatorSlots != 2 || b2.Load.ReportedAt != nil {
		t.Errorf("broker 2: %+v", b2)
	}
	if b3.ID != 3 || b3.State != client.BrokerDraining {
		t.Errorf("broker 3: %+v, want draining", b3)
	}

	// The autoscaler's rows: one too old for the default hour, one
	// unreadable (a gap), two recent with their decisions.
	now := time.Now().UTC().Truncate(time.Millisecond)
	row := func(at time.Time, brokers int, demand float64, d *autoscale.Decision) {
		t.Helper()
		b, err := json.Marshal(autoscale.Evaluation{Sample: autoscale.Sample{At: at, Brokers: brokers, BytesIn: demand * 50e6},
			Demand: demand, Target: 0.6, Decision: d})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.AddLoadSample(ctx, at, b, 8*24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	row(now.Add(-2*time.Hour), 1, 0.1, &autoscale.Decision{Action: autoscale.Hold, From: 1, To: 1, Reason: "old"})
	if err := e.st.AddLoadSample(ctx, now.Add(-30*time.Minute), []byte(`"not an evaluation"`), 8*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	row(now.Add(-2*time.Minute), 2, 1.9, &autoscale.Decision{Action: autoscale.ScaleOut, From: 2, To: 4, Reason: "predicted 0.95 > 0.70", Utilisation: 0.95, Predicted: 0.95})
	row(now.Add(-time.Minute), 4, 2.0, &autoscale.Decision{Action: autoscale.Hold, From: 4, To: 4, Reason: "within band", Utilisation: 0.5, Predicted: 0.5})

	h := must[client.AutoscalerHistory](t)(e.operator.AutoscalerDecisions(ctx, time.Time{}, 0))
	if len(h.Items) != 2 || !h.Items[0].At.Equal(now.Add(-2*time.Minute)) || !h.Items[1].At.Equal(now.Add(-time.Minute)) {
		t.Fatalf("the last hour's evaluations %+v, want the two recent ones, oldest first", h.Items)
	}
	if d := h.Items[0].Decision; d == nil || d.Action != "scale-out" || d.From != 2 || d.To != 4 || d.Reason != "predicted 0.95 > 0.70" ||
		h.Items[0].Demand != 1.9 || h.Items[0].Target != 0.6 || h.Items[0].Brokers != 2 || h.Items[0].BytesInPerSec != 1.9*50e6 {
		t.Errorf("scale-out evaluation %+v decision %+v", h.Items[0], d)
	}
	if h = must[client.AutoscalerHistory](t)(e.operator.AutoscalerDecisions(ctx, now.Add(-3*time.Hour), 0)); len(h.Items) != 3 || h.Items[0].Decision.Reason != "old" {
		t.Errorf("since 3 hours ago: %+v, want 3 readable evaluations", h.Items)
	}
	if h = must[client.AutoscalerHistory](t)(e.operator.AutoscalerDecisions(ctx, now.Add(-3*time.Hour), 1)); len(h.Items) != 1 || !h.Items[0].At.Equal(now.Add(-time.Minute)) {
		t.Errorf("limit 1: %+v, want the newest evaluation", h.Items)
	}

	for _, c := range []struct{ query, field string }{
		{"since=yesterday", "since"},
		{"since=" + url.QueryEscape(now.Add(-9*24*time.Hour).Format(time.RFC3339)), "since"},
		{"limit=0", "limit"},
		{"limit=5001", "limit"},
		{"limit=ten", "limit"},
	} {
		req, err := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/autoscaler/decisions?"+c.query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		resp, err := e.raw().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p client.Problem
		status, ct := resp.StatusCode, resp.Header.Get("Content-Type")
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || ct != "application/problem+json" {
			t.Errorf("?%s: %s answer does not decode as a problem: %v", c.query, ct, err)
		}
		resp.Body.Close()
		if status != 400 || p.Type != client.ProblemValidation || len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("?%s: %d %+v, want 400 naming %s", c.query, status, p, c.field)
		}
	}

	// Tenants, even an organisation's admin, are refused.
	for _, path := range []string{"/v1/brokers", "/v1/autoscaler/decisions"} {
		status, p, _ := e.send(ctx, a, "GET", path, "", "")
		if status != 403 || p.Type != client.ProblemForbidden || !strings.Contains(p.Detail, "only the operator") {
			t.Errorf("tenant GET %s: %d %+v, want 403 problem+json", path, status, p)
		}
	}
	if _, err := a.admin.ListBrokers(ctx); client.StatusOf(err) != 403 {
		t.Errorf("tenant client ListBrokers: %v, want 403", err)
	}
}
