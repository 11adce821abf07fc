package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/billing"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// billingEnv is a database with one organisation on a test plan (ingress
// 0.05/GB, 0.08/GB from March 16th 2026, 10 GB included; egress 0.05/GB).
type billingEnv struct {
	url   string
	st    *store.Store
	org   store.OrgBilling
	cl    string
	ctx   context.Context
	bootN int
}

func newBillingEnv(t *testing.T, tz string) *billingEnv {
	t.Helper()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	err = st.PutPlan(ctx, "test", "Test", "USD", []store.PlanPrice{
		{Metric: billing.Ingress, EffectiveFrom: ts("2020-01-01T00:00:00Z"), UnitPrice: "0.05"},
		{Metric: billing.Ingress, EffectiveFrom: ts("2026-03-16T00:00:00Z"), UnitPrice: "0.08"},
		{Metric: billing.Egress, EffectiveFrom: ts("2020-01-01T00:00:00Z"), UnitPrice: "0.05"},
		{Metric: billing.Storage, EffectiveFrom: ts("2020-01-01T00:00:00Z"), UnitPrice: "0.10"},
		{Metric: billing.Partitions, EffectiveFrom: ts("2020-01-01T00:00:00Z"), UnitPrice: "0"},
		{Metric: billing.Clusters, EffectiveFrom: ts("2020-01-01T00:00:00Z"), UnitPrice: "0"},
	}, map[billing.Metric]string{billing.Ingress: "10"})
	if err != nil {
		t.Fatal(err)
	}
	o, _, _, err := st.CreateOrg(ctx, "acme", []byte("h"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := st.CreateCluster(ctx, o.ID, "prod", limits.Limits{IngressMBps: 1, EgressMBps: 1, MaxRequestsPerSec: 10_000, MaxConnections: 1000, MaxPartitions: 10, MaxStorageGB: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ob := store.OrgBilling{OrgID: o.ID, PlanID: "test", TimeZone: tz}
	if err := st.SetOrgBilling(ctx, ob); err != nil {
		t.Fatal(err)
	}
	ob, err = st.OrgBillingOf(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &billingEnv{url: url, st: st, org: ob, cl: cl.ID, ctx: ctx}
}

// report stores one broker usage report for the env's cluster.
func (e *billingEnv) report(t *testing.T, boot, start string, in, out int64) store.UsageReport {
	t.Helper()
	r := store.UsageReport{BrokerID: 1, BootID: boot, WindowStart: ts(start), WindowEnd: ts(start).Add(time.Minute),
		Cluster: e.cl, BytesIn: in, BytesOut: out, Requests: 1}
	if err := e.st.InsertUsage(e.ctx, []store.UsageReport{r}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *billingEnv) rate(t *testing.T, month string, finalize bool) store.Invoice {
	t.Helper()
	loc, _ := time.LoadLocation(e.org.TimeZone)
	m, _ := time.ParseInLocation(time.DateOnly, month, loc)
	inv, err := e.st.RateMonth(e.ctx, e.org, billing.MonthOf(m, loc), finalize)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := e.st.CostLineSum(e.ctx, e.org.OrgID, inv.Month)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Subtotal != sum {
		t.Errorf("invoice %s subtotal %d != cost lines %d", inv.Month, inv.Subtotal, sum)
	}
	return inv
}

const gb = 1_000_000_000

// TestRateMonthAndFinalize: rating, replayed reports, credits, and a
// finalized invoice that SQL itself keeps from changing.
func TestRateMonthAndFinalize(t *testing.T) {
	e := newBillingEnv(t, "UTC")
	r1 := e.report(t, "boot-a", "2026-03-10T12:00:00Z", 12*gb, 2*gb) // 10 free, 2 at 0.05; egress 2 at 0.05
	e.report(t, "boot-a", "2026-03-20T00:00:00Z", 5*gb, 0)           // 5 at 0.08
	inv := e.rate(t, "2026-03-01", false)
	// 0.10 + 0.10 + 0.40
	if inv.Status != "draft" || inv.Subtotal != 600_000_000 || inv.TotalCents != 60 {
		t.Fatalf("draft = %+v", inv)
	}
	// A replayed report (same key) changes nothing.
	if err := e.st.InsertUsage(e.ctx, []store.UsageReport{r1, r1}); err != nil {
		t.Fatal(err)
	}
	if again := e.rate(t, "2026-03-01", false); again.Subtotal != inv.Subtotal || again.ID != inv.ID {
		t.Fatalf("after a replay: %+v", again)
	}
	if _, err := e.st.AddAdjustment(e.ctx, e.org.OrgID, "2026-03-01", true, 150_000_000, "goodwill"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.AddAdjustment(e.ctx, e.org.OrgID, "2026-03-01", false, 1_234_000, "support"); err != nil {
		t.Fatal(err)
	}
	inv = e.rate(t, "2026-03-01", true)
	if inv.Status != "finalized" || inv.Credits != 150_000_000 || inv.Adjustments != 1_234_000 || inv.TotalCents != 45 {
		t.Fatalf("finalized = %+v", inv)
	}
	full, err := e.st.Invoice(e.ctx, e.org.OrgID, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	var lineSum billing.Nanos
	for _, l := range full.Lines {
		lineSum += l.Amount
		if l.ClusterName != "prod" {
			t.Errorf("line %+v has no cluster name", l)
		}
	}
	if len(full.Lines) != 3 || lineSum != inv.Subtotal {
		t.Fatalf("lines %+v sum to %d", full.Lines, lineSum)
	}

	// Late usage, re-rating and adjustments leave a finalized month alone.
	e.report(t, "boot-b", "2026-03-25T00:00:00Z", 50*gb, 0)
	if after := e.rate(t, "2026-03-01", false); after.Subtotal != inv.Subtotal || after.Status != "finalized" || !after.RatedAt.Equal(inv.RatedAt) {
		t.Fatalf("finalized invoice changed: %+v", after)
	}
	if _, err := e.st.AddAdjustment(e.ctx, e.org.OrgID, "2026-03-01", true, 1, "late"); !errors.Is(err, store.ErrFinalized) {
		t.Fatalf("adjustment on a finalized month: %v", err)
	}
	// ... and so does SQL run by hand.
	conn, err := pgx.Connect(e.ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(e.ctx)
	for _, q := range []string{
		`UPDATE invoices SET total_cents = 0`,
		`UPDATE invoices SET status = 'draft'`,
		`DELETE FROM invoices`,
		`UPDATE invoice_lines SET amount_nanos = 0`,
		`DELETE FROM invoice_lines`,
		`INSERT INTO invoice_lines SELECT invoice_id, 'x', metric, unit_price, quantity, billable, amount_nanos FROM invoice_lines`,
		`UPDATE cost_lines SET amount_nanos = 0`,
		`DELETE FROM cost_lines`,
		`DELETE FROM billing_adjustments`,
	} {
		if _, err := conn.Exec(e.ctx, q); err == nil {
			t.Errorf("%s: allowed on a finalized invoice", q)
		}
	}
}

// TestMonthBoundaryInTimeZone: usage just after midnight UTC on April
// 1st belongs to March for an organisation in Los Angeles, and the
// usage API buckets days in that zone.
func TestMonthBoundaryInTimeZone(t *testing.T) {
	e := newBillingEnv(t, "America/Los_Angeles")
	e.report(t, "b", "2026-03-31T23:00:00Z", 0, 2*gb)  // March 31st, 16:00 PDT
	e.report(t, "b", "2026-04-01T03:00:00Z", 0, 4*gb)  // March 31st, 20:00 PDT
	e.report(t, "b", "2026-04-01T07:00:00Z", 0, 10*gb) // April 1st, 00:00 PDT
	mar := e.rate(t, "2026-03-01", false)
	apr := e.rate(t, "2026-04-01", false)
	if mar.Subtotal != 300_000_000 || apr.Subtotal != 500_000_000 {
		t.Fatalf("March %d, April %d", mar.Subtotal, apr.Subtotal)
	}
	if !mar.PeriodEnd.Equal(ts("2026-04-01T07:00:00Z")) {
		t.Errorf("March ends %s", mar.PeriodEnd)
	}
	rows, err := e.st.Usage(e.ctx, e.org.OrgID, store.UsageFilter{Metric: "egress", Granularity: "day", TimeZone: e.org.TimeZone,
		From: ts("2026-03-01T00:00:00Z"), To: ts("2026-05-01T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Quantity != "6000000000" || !rows[0].Start.Equal(ts("2026-03-31T07:00:00Z")) ||
		rows[1].Quantity != "10000000000" || !rows[1].End.Equal(ts("2026-04-02T07:00:00Z")) {
		t.Fatalf("daily usage = %+v", rows)
	}
	// Another organisation sees none of it.
	o2, _, _, _ := e.st.CreateOrg(e.ctx, "other", []byte("h"), nil)
	rows, err = e.st.Usage(e.ctx, o2.ID, store.UsageFilter{ClusterID: e.cl, Granularity: "month", TimeZone: "UTC",
		From: ts("2026-01-01T00:00:00Z"), To: ts("2027-01-01T00:00:00Z")})
	if err != nil || len(rows) != 0 {
		t.Fatalf("other org's usage: %+v %v", rows, err)
	}
	if ok, _ := e.st.BilledCluster(e.ctx, o2.ID, e.cl); ok {
		t.Fatal("cluster bills to the wrong org")
	}
}

// TestBudgetAlertEvents: an alert fires once per month when the total
// reaches its threshold; deliveries are claimed, retried and finished.
func TestBudgetAlertEvents(t *testing.T) {
	e := newBillingEnv(t, "UTC")
	a, err := e.st.CreateBudgetAlert(e.ctx, store.BudgetAlert{OrgID: e.org.OrgID, Name: "50c", Threshold: 500_000_000,
		WebhookURL: "http://127.0.0.1:1/hook", Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	e.report(t, "b", "2026-03-02T00:00:00Z", 12*gb, 0) // 0.10: below
	e.rate(t, "2026-03-01", false)
	if _, ok, _ := e.st.ClaimAlertDelivery(e.ctx, time.Minute); ok {
		t.Fatal("alert fired below its threshold")
	}
	e.report(t, "b", "2026-03-03T00:00:00Z", 8*gb, 0) // 0.50 in all
	e.rate(t, "2026-03-01", false)
	e.rate(t, "2026-03-01", false)
	d, ok, err := e.st.ClaimAlertDelivery(e.ctx, time.Minute)
	if err != nil || !ok || d.Alert.ID != a.ID || d.Month != "2026-03-01" || d.Amount != 500_000_000 || d.Alert.Secret != "s3cret" {
		t.Fatalf("claim = %+v %v %v", d, ok, err)
	}
	if _, ok, _ := e.st.ClaimAlertDelivery(e.ctx, time.Minute); ok {
		t.Fatal("claimed twice (or fired twice)")
	}
	if err := e.st.FinishAlertDelivery(e.ctx, d, errors.New("503"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	d2, ok, _ := e.st.ClaimAlertDelivery(e.ctx, time.Minute)
	if !ok || d2.Attempts != 1 {
		t.Fatalf("retry claim = %+v %v", d2, ok)
	}
	if err := e.st.FinishAlertDelivery(e.ctx, d2, nil, 0); err != nil {
		t.Fatal(err)
	}
	evs, err := e.st.AlertEvents(e.ctx, e.org.OrgID, a.ID)
	if err != nil || len(evs) != 1 || evs[0].DeliveredAt == nil || evs[0].Attempts != 2 {
		t.Fatalf("events = %+v %v", evs, err)
	}
}

func TestStorageSampling(t *testing.T) {
	e := newBillingEnv(t, "UTC")
	start := time.Now().Truncate(time.Minute)
	for range 2 { // a second sampler of the same window adds nothing
		if _, err := e.st.SampleStorage(e.ctx, start, 60); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := e.st.Usage(e.ctx, e.org.OrgID, store.UsageFilter{Metric: "clusters", Granularity: "hour", TimeZone: "UTC",
		From: start.Add(-time.Hour), To: start.Add(time.Hour)})
	if err != nil || len(rows) != 1 || rows[0].Quantity != "60" {
		t.Fatalf("cluster-seconds = %+v %v", rows, err)
	}
}
