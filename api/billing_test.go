package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/billing"
	"github.com/eddy-streams/eddy/control-plane/ledger"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/store"
)

// usageAndInvoice reports 3 GB in and 1 GB out for cluster at the start of
// the running month (as a broker would) and rates the month: 0.15 + 0.05
// on the standard plan, plus the cluster-hours sampled meanwhile (none).
func (e *env) usageAndInvoice(orgID, clusterID string) client.Invoice {
	e.t.Helper()
	ctx := context.Background()
	ob, err := e.st.OrgBillingOf(ctx, orgID)
	if err != nil {
		e.t.Fatal(err)
	}
	loc, _ := time.LoadLocation(ob.TimeZone)
	p := billing.MonthOf(time.Now(), loc)
	err = e.st.InsertUsage(ctx, []store.UsageReport{{BrokerID: 1, BootID: "t", WindowStart: p.Start, WindowEnd: p.Start.Add(time.Minute),
		Cluster: clusterID, BytesIn: 3e9, BytesOut: 1e9, Requests: 10, Connections: 1}})
	if err != nil {
		e.t.Fatal(err)
	}
	inv, err := e.st.RateMonth(ctx, ob, p, false)
	if err != nil {
		e.t.Fatal(err)
	}
	return client.Invoice{ID: inv.ID, Total: billing.FormatCents(inv.TotalCents), PeriodStart: inv.PeriodStart, PeriodEnd: inv.PeriodEnd}
}

// TestInvoicesCSVPages: a CSV page of invoices links to the next page
// with the same limit, and following the link gives the older invoice.
func TestInvoicesCSVPages(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := e.newTenant("paged")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "prod"}))
	e.usageAndInvoice(a.org.Organization.ID, cl.ID)
	ob, err := e.st.OrgBillingOf(ctx, a.org.Organization.ID)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation(ob.TimeZone)
	if _, err := e.st.RateMonth(ctx, ob, billing.MonthOf(time.Now().AddDate(0, -1, 0), loc), false); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (string, [][]string) {
		t.Helper()
		resp, err := e.raw().Do(authed(ctx, a, path, e.url))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		defer resp.Body.Close()
		rows, err := csv.NewReader(resp.Body).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Get("Link"), rows
	}
	link, first := get("/v1/billing/invoices?format=csv&limit=1")
	m := regexp.MustCompile(`^<(/v1/billing/invoices\?[^>]+)>; rel="next"$`).FindStringSubmatch(link)
	if len(first) != 2 || m == nil || !strings.Contains(m[1], "limit=1") || !strings.Contains(m[1], "format=csv") {
		t.Fatalf("first page %q, Link %q: want one invoice and a link to the next page of one", first, link)
	}
	link, second := get(m[1])
	if len(second) != 2 || second[1][0] == first[1][0] || second[1][1] >= first[1][1] || link != "" {
		t.Errorf("second page %q (Link %q) after %q: want the older invoice and no link", second, link, first)
	}
}

func TestBillingRoutes(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e.newTenant("billed")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "prod"}))
	inv := e.usageAndInvoice(a.org.Organization.ID, cl.ID)
	if inv.Total != "0.20" {
		t.Fatalf("rated total %s, want 0.20", inv.Total)
	}

	u := must[client.Usage](t)(a.admin.GetUsage(ctx, client.UsageQuery{Granularity: "month"}))
	got := map[string]string{}
	for _, it := range u.Items {
		got[it.Metric] = it.Quantity + " " + it.BaseUnit + " = " + it.Units + " " + it.Unit
	}
	if got["ingress"] != "3000000000 byte = 3.000000000 GB" || got["egress"] != "1000000000 byte = 1.000000000 GB" || got["requests"] != "10 request = 10.000000000 request" {
		t.Errorf("usage = %v", got)
	}
	u = must[client.Usage](t)(a.admin.GetUsage(ctx, client.UsageQuery{ClusterID: cl.ID, Metric: "egress", Granularity: "hour"}))
	if len(u.Items) != 1 || u.Items[0].End.Sub(u.Items[0].Start) != time.Hour {
		t.Errorf("hourly egress = %+v", u.Items)
	}

	full := must[client.Invoice](t)(a.admin.GetInvoice(ctx, inv.ID))
	if full.Status != "draft" || full.Subtotal != "0.20" || len(full.Lines) != 2 || full.Lines[0].Amount != "0.15" || full.Lines[0].ClusterName != "prod" {
		t.Errorf("invoice = %+v", full)
	}
	raw := must[[]byte](t)(a.admin.GetInvoiceCSV(ctx, inv.ID))
	rows, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	if err != nil || len(rows) != 1+2+4 || rows[1][5] != "ingress" || rows[len(rows)-1][5] != "total" || rows[len(rows)-1][10] != "0.20" {
		t.Errorf("invoice CSV (%v):\n%s", err, raw)
	}
	// The CSV is the JSON: its header, one row per line with the line's
	// fields, then the totals.
	if err == nil && len(rows) == 1+len(full.Lines)+4 {
		if got := strings.Join(rows[0], ","); got != "invoice,month,status,cluster_id,cluster_name,metric,unit,unit_price,units,billable_units,amount,currency" {
			t.Errorf("CSV header %s", got)
		}
		for i, l := range full.Lines {
			want := []string{full.ID, full.Month, full.Status, l.ClusterID, l.ClusterName, l.Metric, l.Unit, l.UnitPrice, l.Units, l.BillableUnits, l.Amount, full.Currency}
			if strings.Join(rows[1+i], "|") != strings.Join(want, "|") {
				t.Errorf("CSV line %d %q, want %q", i, rows[1+i], want)
			}
		}
		totals := rows[1+len(full.Lines):]
		for i, tt := range [][2]string{{"subtotal", full.Subtotal}, {"credits", full.Credits}, {"adjustments", full.Adjustments}, {"total", full.Total}} {
			if totals[i][5] != tt[0] || totals[i][10] != tt[1] {
				t.Errorf("CSV %s row %q, want %s", tt[0], totals[i], tt[1])
			}
		}
	}
	// ?format=csv works too, named for download; a bad format is a
	// validation problem.
	resp, err := e.raw().Do(authed(ctx, a, "/v1/billing/invoices/"+inv.ID+"?format=csv", e.url))
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="invoice-`+full.Month+`.csv"` {
		t.Errorf("?format=csv: %v %v", resp, err)
	}
	resp, err = e.raw().Do(authed(ctx, a, "/v1/billing/invoices?format=xml", e.url))
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("?format=xml: %v %v", resp, err)
	}

	est := must[client.Estimate](t)(a.admin.GetEstimate(ctx))
	mtd, _ := billing.ParseAmount(est.MonthToDate)
	proj, perr := billing.ParseAmount(est.Projected)
	if est.MonthToDate != "0.20" || est.Invoice.ID != inv.ID || perr != nil || proj < mtd {
		t.Errorf("estimate = %+v", est)
	}

	// Operator: settings and credits; the tenant may read but not change them.
	if _, err := a.admin.SetBillingSettings(ctx, a.org.Organization.ID, client.BillingSettings{Plan: "standard", TimeZone: "Europe/Paris"}); client.StatusOf(err) != 403 {
		t.Errorf("tenant changes its plan: %v", err)
	}
	if _, err := e.operator.SetBillingSettings(ctx, a.org.Organization.ID, client.BillingSettings{Plan: "standard", TimeZone: "Mars/Olympus"}); client.StatusOf(err) != 400 {
		t.Errorf("bad time zone: %v", err)
	}
	if _, err := e.operator.SetBillingSettings(ctx, a.org.Organization.ID, client.BillingSettings{Plan: "gold", TimeZone: "UTC"}); client.StatusOf(err) != 422 {
		t.Errorf("unknown plan: %v", err)
	}
	month := full.Month
	adj := must[client.Adjustment](t)(e.operator.CreateAdjustment(ctx, a.org.Organization.ID, client.CreateAdjustmentRequest{Month: month, Kind: "credit", Amount: "0.05", Description: "sorry"}))
	if adj.Amount != "0.05" {
		t.Errorf("adjustment = %+v", adj)
	}
	if _, err := a.admin.CreateAdjustment(ctx, a.org.Organization.ID, client.CreateAdjustmentRequest{Month: month, Kind: "credit", Amount: "100"}); client.StatusOf(err) != 403 {
		t.Errorf("tenant credits itself: %v", err)
	}
	if _, err := e.operator.CreateAdjustment(ctx, a.org.Organization.ID, client.CreateAdjustmentRequest{Month: month, Kind: "credit", Amount: "-1"}); client.StatusOf(err) != 400 {
		t.Errorf("negative credit: %v", err)
	}
	if est := must[client.Estimate](t)(a.admin.GetEstimate(ctx)); est.Invoice.Credits != "0.05" || est.MonthToDate != "0.15" {
		t.Errorf("estimate after a credit = %+v", est)
	}

	// Budget alerts.
	al := must[client.BudgetAlert](t)(a.admin.CreateBudgetAlert(ctx, client.CreateBudgetAlertRequest{Name: "monthly", Threshold: "100.50", WebhookURL: "https://hooks.example.com/eddy"}))
	if !strings.HasPrefix(al.Secret, "whsec_") || al.Threshold != "100.50" {
		t.Errorf("alert = %+v", al)
	}
	if got := must[client.BudgetAlert](t)(a.admin.GetBudgetAlert(ctx, al.ID)); got.Secret != "" {
		t.Error("the secret is shown again")
	}
	// Stored sealed to the alert, opening to the secret returned.
	if stored, err := e.st.BudgetAlert(ctx, a.org.Organization.ID, al.ID); err != nil || !seal.IsSealed([]byte(stored.Secret)) {
		t.Errorf("stored alert %+v, %v: the secret is not sealed", stored, err)
	} else if got, err := ledger.OpenSecret(e.secrets, al.ID, stored.Secret); got != al.Secret || err != nil {
		t.Errorf("the stored secret opens to %q, %v; want the one returned at creation", got, err)
	}
	for _, bad := range []client.CreateBudgetAlertRequest{
		{Name: "x", Threshold: "0", WebhookURL: "https://h/x"},
		{Name: "x", Threshold: "1.5", WebhookURL: "ftp://h/x"},
		{Name: "x", Threshold: "1.5", WebhookURL: "https://user:secret@h/x"},
	} {
		if _, err := a.admin.CreateBudgetAlert(ctx, bad); client.StatusOf(err) != 400 {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	// Server-side request forgery: webhook URLs may not reach the pool's
	// own network or a cloud metadata service.
	for _, hook := range []string{"http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data/",
		"http://[::1]/x", "http://10.0.0.5/x", "http://localhost:9092/x", "http://[::ffff:169.254.169.254]/x"} {
		_, err := a.admin.CreateBudgetAlert(ctx, client.CreateBudgetAlertRequest{Name: "x", Threshold: "1", WebhookURL: hook})
		if client.StatusOf(err) != 400 || !strings.Contains(err.Error(), "loopback, private") {
			t.Errorf("webhook %s: %v, want 400 naming the refused address kind", hook, err)
		}
	}
	if l := must[client.List[client.BudgetAlert]](t)(a.admin.ListBudgetAlerts(ctx, client.ListOptions{})); len(l.Items) != 1 {
		t.Errorf("alerts = %+v", l.Items)
	}
	// An organisation's alerts are bounded: past store.MaxBudgetAlerts, a
	// new one is refused naming the bound, until one is deleted.
	var extra []string
	for i := 1; i < store.MaxBudgetAlerts; i++ {
		x := must[client.BudgetAlert](t)(a.admin.CreateBudgetAlert(ctx, client.CreateBudgetAlertRequest{
			Name: fmt.Sprintf("a%d", i), Threshold: "1", WebhookURL: "https://hooks.example.com/eddy"}))
		extra = append(extra, x.ID)
	}
	over := client.CreateBudgetAlertRequest{Name: "over", Threshold: "1", WebhookURL: "https://hooks.example.com/eddy"}
	if _, err := a.admin.CreateBudgetAlert(ctx, over); client.StatusOf(err) != http.StatusUnprocessableEntity ||
		!strings.Contains(err.Error(), fmt.Sprintf("at most %d budget alerts", store.MaxBudgetAlerts)) {
		t.Errorf("alert %d: %v, want 422 naming the bound", store.MaxBudgetAlerts+1, err)
	}
	for _, id := range extra {
		if err := a.admin.DeleteBudgetAlert(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.admin.DeleteBudgetAlert(ctx, al.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin.GetBudgetAlert(ctx, al.ID); !client.IsNotFound(err) {
		t.Errorf("deleted alert: %v", err)
	}

	// Bad usage queries name their fields.
	for q, field := range map[string]string{
		"granularity=week": "granularity", "metric=cpu": "metric", "from=yesterday": "from",
		"from=2026-03-02&to=2026-03-01": "to", "from=2020-01-01&to=2026-01-01": "to",
	} {
		resp, err := e.raw().Do(authed(ctx, a, "/v1/billing/usage?"+q, e.url))
		if err != nil || resp.StatusCode != 400 {
			t.Errorf("?%s: %v %v", q, resp, err)
			continue
		}
		var p client.Problem
		decode(t, resp, &p)
		if len(p.Errors) == 0 || p.Errors[0].Field != field {
			t.Errorf("?%s: %+v", q, p)
		}
	}
}

// authed is a GET of path as tenant tn's admin.
func authed(ctx context.Context, tn tenant, path, base string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	req.SetBasicAuth(tn.keyID, tn.secret)
	return req
}

func decode(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
