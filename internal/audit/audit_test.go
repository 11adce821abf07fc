package audit_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddy-streams/eddy/internal/audit"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
)

// TestWriter: rows are written as queued; the same denial repeated is one
// row with a count, distinct denials are rows of their own; what does not
// fit the bounds is dropped and counted; text Postgres refuses (NUL,
// invalid UTF-8) and overlong text are cleaned rather than failing the
// batch.
func TestWriter(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.URL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	w := audit.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)

	w.Record(store.AuditEntry{OrgID: "org-1", Principal: "User:sa-1", Channel: store.AuditREST, Action: "topic.create",
		ResourceType: "topic", ResourceName: "bad\x00name\xff" + strings.Repeat("x", 2000), Result: store.AuditOK})
	deny := store.AuditEntry{OrgID: "org-1", ClusterID: "vc-1", Principal: "User:sa-2", Source: "127.0.0.1",
		Action: "Produce", ResourceType: "topic", ResourceName: "orders", Detail: "WRITE"}
	for range 100 {
		w.Deny(deny)
	}
	other := deny
	other.ResourceName = "payments"
	w.Deny(other)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, _, err := st.AuditLog(ctx, "org-1", store.AuditFilter{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(rows), rows)
	}
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.Action+" "+r.ResourceName[:min(len(r.ResourceName), 7)]] = r.Count
		if r.Action == "topic.create" && !strings.HasPrefix(r.ResourceName, "badname\uFFFD") {
			t.Errorf("resource name %q, want NUL dropped and the invalid byte replaced", r.ResourceName[:20])
		}
		if len(r.ResourceName) > 512 {
			t.Fatalf("resource name of %d bytes kept", len(r.ResourceName))
		}
	}
	if counts["Produce orders"] != 100 || counts["Produce payment"] != 1 || counts["topic.create badname"] != 1 {
		t.Fatalf("counts = %v", counts)
	}

	// Bounds: more distinct denials than MaxDenials, more rows than
	// MaxQueue, all before a write.
	for i := range audit.MaxDenials + 10 {
		d := deny
		d.ResourceName = string(rune('a'+i%26)) + string(rune(i))
		w.Deny(d)
	}
	for range audit.MaxQueue + 5 {
		w.Record(store.AuditEntry{OrgID: "org-2", Principal: "operator", Channel: store.AuditREST, Action: "plan.create", Result: store.AuditOK})
	}
	for reason, want := range map[string]float64{"denials_full": 10, "queue_full": 5} {
		if got := dropped(t, reg, reason); got != want {
			t.Errorf("dropped (%s) = %v, want %v", reason, got, want)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func dropped(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eddy_audit_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
