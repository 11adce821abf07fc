package api

// Billing routes: usage, invoices (JSON or CSV), the running month's
// estimate and budget alerts, all inside the caller's organisation and
// refused to cluster-scoped credentials; and the operator's billing
// settings and adjustments under /v1/organizations/{org_id}/billing.

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/billing"
	"github.com/eddy-streams/eddy/control-plane/ledger"
	"github.com/eddy-streams/eddy/internal/egress"
	"github.com/eddy-streams/eddy/internal/store"
)

// maxUsageRange bounds one usage query.
const maxUsageRange = 366 * 24 * time.Hour

func money(n billing.Nanos) string {
	// Whole cents print with two decimals; anything finer with nine.
	if int64(n)%billing.NanosPerCent == 0 {
		return billing.FormatDecimal(n.Rat(), 2)
	}
	return n.String()
}

// units formats a base-unit integer quantity in the metric's pricing unit.
func units(m billing.Metric, base string) string {
	q, ok := new(big.Rat).SetString(base)
	if !ok {
		return base
	}
	return billing.FormatDecimal(m.ToUnits(q), 9)
}

func baseUnit(m billing.Metric) string {
	switch m {
	case billing.Ingress, billing.Egress:
		return "byte"
	case billing.Storage:
		return "byte-second"
	case billing.Partitions:
		return "partition-second"
	case billing.Clusters:
		return "cluster-second"
	}
	return m.Unit()
}

func (s *Server) orgLocation(c echo.Context) (store.OrgBilling, *time.Location, error) {
	ob, err := s.st.OrgBillingOf(c.Request().Context(), principal(c).OrgID)
	if err != nil {
		return ob, nil, storeError(err, "organisation")
	}
	loc, err := time.LoadLocation(ob.TimeZone)
	if err != nil {
		return ob, nil, err
	}
	return ob, loc, nil
}

func parseTime(fe *fieldErrors, field, v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		if d, derr := time.Parse(time.DateOnly, v); derr == nil {
			return d
		}
		fe.add(field, "must be an RFC 3339 time or a date (YYYY-MM-DD)")
	}
	return t
}

func (s *Server) getUsage(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	ob, loc, err := s.orgLocation(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	var fe fieldErrors
	f := store.UsageFilter{ClusterID: q.Get("cluster_id"), Metric: q.Get("metric"), Granularity: q.Get("granularity"), TimeZone: ob.TimeZone}
	if f.Granularity == "" {
		f.Granularity = "day"
	}
	if f.Granularity != "hour" && f.Granularity != "day" && f.Granularity != "month" {
		fe.add("granularity", "must be hour, day or month")
	}
	if f.Metric != "" {
		if _, err := billing.ParseMetric(f.Metric); err != nil {
			fe.add("metric", "must be one of ingress, egress, storage, partitions, clusters, requests, connections")
		}
	}
	// Dates without a time are midnight in the organisation's zone.
	inZone := func(field, v string) time.Time {
		if d, err := time.ParseInLocation(time.DateOnly, v, loc); err == nil {
			return d
		}
		return parseTime(&fe, field, v)
	}
	month := billing.MonthOf(time.Now(), loc)
	f.From, f.To = month.Start, month.End
	if v := q.Get("from"); v != "" {
		f.From = inZone("from", v)
	}
	if v := q.Get("to"); v != "" {
		f.To = inZone("to", v)
	}
	if len(fe) == 0 && !f.To.After(f.From) {
		fe.add("to", "must be after from")
	}
	if len(fe) == 0 && f.To.Sub(f.From) > maxUsageRange {
		fe.add("to", "the range may span at most 366 days")
	}
	if err := fe.err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if f.ClusterID != "" {
		ok, err := s.st.BilledCluster(ctx, ob.OrgID, f.ClusterID)
		if err != nil {
			return err
		}
		if !ok {
			return errNotFound("cluster")
		}
	}
	rows, err := s.st.Usage(ctx, ob.OrgID, f)
	if err != nil {
		return storeError(err, "usage")
	}
	out := client.Usage{TimeZone: ob.TimeZone, Granularity: f.Granularity, From: f.From.UTC(), To: f.To.UTC(), Items: []client.UsageItem{}}
	for _, r := range rows {
		out.Items = append(out.Items, client.UsageItem{ClusterID: r.ClusterID, Metric: string(r.Metric), Start: r.Start.UTC(), End: r.End.UTC(),
			Quantity: r.Quantity, BaseUnit: baseUnit(r.Metric), Units: units(r.Metric, r.Quantity), Unit: r.Metric.Unit()})
	}
	return c.JSON(http.StatusOK, out)
}

func invoiceOut(i store.Invoice) client.Invoice {
	out := client.Invoice{
		ID: i.ID, Month: i.Month[:7], Status: i.Status, Currency: i.Currency, TimeZone: i.TimeZone, Plan: i.PlanID,
		PeriodStart: i.PeriodStart.UTC(), PeriodEnd: i.PeriodEnd.UTC(),
		Subtotal: money(i.Subtotal), Credits: money(i.Credits), Adjustments: money(i.Adjustments),
		Total: billing.FormatCents(i.TotalCents), RatedAt: i.RatedAt.UTC(), FinalizedAt: i.FinalizedAt,
	}
	for _, l := range i.Lines {
		out.Lines = append(out.Lines, client.InvoiceLine{ClusterID: l.ClusterID, ClusterName: l.ClusterName, Metric: string(l.Metric),
			Unit: l.Metric.Unit(), UnitPrice: l.UnitPrice, Units: units(l.Metric, l.Quantity), BillableUnits: units(l.Metric, l.Billable),
			Amount: money(l.Amount)})
	}
	return out
}

// wantsCSV: ?format=csv, or an Accept header preferring text/csv.
func wantsCSV(c echo.Context) (bool, error) {
	switch c.QueryParam("format") {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
	default:
		return false, fieldError("format", "must be json or csv")
	}
	for _, part := range strings.Split(c.Request().Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/csv":
			return true, nil
		case "application/json", "*/*", "application/*":
			return false, nil
		}
	}
	return false, nil
}

func writeCSV(c echo.Context, filename string, rows [][]string) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", b.Bytes())
}

func (s *Server) listInvoices(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	asCSV, err := wantsCSV(c)
	if err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	invs, next, err := s.st.Invoices(c.Request().Context(), principal(c).OrgID, p)
	if err != nil {
		return err
	}
	if asCSV {
		rows := [][]string{{"id", "month", "status", "currency", "subtotal", "credits", "adjustments", "total"}}
		for _, i := range invs {
			o := invoiceOut(i)
			rows = append(rows, []string{o.ID, o.Month, o.Status, o.Currency, o.Subtotal, o.Credits, o.Adjustments, o.Total})
		}
		if next != "" {
			// The next page as this one was asked for: CSV, the same limit.
			q := url.Values{"format": {"csv"}, "cursor": {cursor(next)}}
			if l := c.QueryParam("limit"); l != "" {
				q.Set("limit", l)
			}
			c.Response().Header().Set("Link", `</v1/billing/invoices?`+q.Encode()+`>; rel="next"`)
		}
		return writeCSV(c, "invoices.csv", rows)
	}
	return c.JSON(http.StatusOK, list(invs, next, invoiceOut))
}

func (s *Server) getInvoice(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	asCSV, err := wantsCSV(c)
	if err != nil {
		return err
	}
	inv, err := s.st.Invoice(c.Request().Context(), principal(c).OrgID, c.Param("invoice_id"))
	if err != nil {
		return storeError(err, "invoice")
	}
	o := invoiceOut(inv)
	if !asCSV {
		return c.JSON(http.StatusOK, o)
	}
	rows := [][]string{{"invoice", "month", "status", "cluster_id", "cluster_name", "metric", "unit", "unit_price", "units", "billable_units", "amount", "currency"}}
	for _, l := range o.Lines {
		rows = append(rows, []string{o.ID, o.Month, o.Status, l.ClusterID, l.ClusterName, l.Metric, l.Unit, l.UnitPrice, l.Units, l.BillableUnits, l.Amount, o.Currency})
	}
	for _, t := range [][2]string{{"subtotal", o.Subtotal}, {"credits", o.Credits}, {"adjustments", o.Adjustments}, {"total", o.Total}} {
		rows = append(rows, []string{o.ID, o.Month, o.Status, "", "", t[0], "", "", "", "", t[1], o.Currency})
	}
	return writeCSV(c, "invoice-"+o.Month+".csv", rows)
}

func (s *Server) getEstimate(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	ob, loc, err := s.orgLocation(c)
	if err != nil {
		return err
	}
	now := time.Now()
	p := billing.MonthOf(now, loc)
	ctx := c.Request().Context()
	// Rate now, so the estimate includes usage up to the last report.
	inv, err := s.st.RateMonth(ctx, ob, p, false)
	if err != nil {
		return err
	}
	if inv.Lines, err = s.st.InvoiceLines(ctx, inv.ID); err != nil {
		return err
	}
	projected := billing.Estimate(inv.Subtotal, p, now) - inv.Credits + inv.Adjustments
	return c.JSON(http.StatusOK, client.Estimate{
		Month: p.Month[:7], Currency: inv.Currency, TimeZone: ob.TimeZone, AsOf: now.UTC(),
		MonthToDate: billing.FormatCents(inv.TotalCents), Projected: billing.FormatCents(max(projected, 0).Cents()),
		Invoice: invoiceOut(inv),
	})
}

func alertOut(a store.BudgetAlert) client.BudgetAlert {
	return client.BudgetAlert{ID: a.ID, Name: a.Name, Threshold: money(a.Threshold), WebhookURL: a.WebhookURL, CreatedAt: a.CreatedAt.UTC()}
}

func (s *Server) createBudgetAlert(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	var req client.CreateBudgetAlertRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	validName(&fe, "name", req.Name)
	threshold, err := billing.ParseAmount(req.Threshold)
	if err != nil || threshold <= 0 {
		fe.add("threshold", "must be a positive decimal amount with at most nine decimals")
	}
	if len(req.WebhookURL) > 2048 {
		fe.add("webhook_url", "must be an absolute http(s) URL of at most 2048 characters")
	} else if err := s.cfg.Webhooks.CheckURL(c.Request().Context(), req.WebhookURL); errors.Is(err, egress.ErrForbidden) {
		fe.add("webhook_url", "must not reach a loopback, private, link-local or cloud-metadata address")
	} else if err != nil {
		fe.add("webhook_url", "must be an absolute http(s) URL of at most 2048 characters without credentials")
	}
	if err := fe.err(); err != nil {
		return err
	}
	var b [32]byte
	rand.Read(b[:])
	secret := "whsec_" + hex.EncodeToString(b[:])
	id := store.NewID("ba")
	sealed, err := ledger.SealSecret(s.cfg.Secrets, id, secret)
	if err != nil {
		return err
	}
	a, err := s.st.CreateBudgetAlert(c.Request().Context(), store.BudgetAlert{ID: id, OrgID: principal(c).OrgID, Name: req.Name,
		Threshold: threshold, WebhookURL: req.WebhookURL, Secret: sealed})
	if err != nil {
		return storeError(err, "organisation")
	}
	out := alertOut(a)
	c.Set(replayBodyKey, mustJSON(out)) // recorded without the secret
	out.Secret = secret
	c.Response().Header().Set(echo.HeaderLocation, "/v1/billing/budget-alerts/"+a.ID)
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) listBudgetAlerts(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	as, next, err := s.st.BudgetAlerts(c.Request().Context(), principal(c).OrgID, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(as, next, alertOut))
}

func (s *Server) getBudgetAlert(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	ctx := c.Request().Context()
	a, err := s.st.BudgetAlert(ctx, principal(c).OrgID, c.Param("alert_id"))
	if err != nil {
		return storeError(err, "budget alert")
	}
	evs, err := s.st.AlertEvents(ctx, principal(c).OrgID, a.ID)
	if err != nil {
		return err
	}
	out := alertOut(a)
	for _, e := range evs {
		out.Events = append(out.Events, client.AlertEvent{Month: e.Month[:7], Amount: money(e.Amount), Attempts: e.Attempts,
			DeliveredAt: e.DeliveredAt, FailedAt: e.FailedAt, LastError: e.LastError})
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) deleteBudgetAlert(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	if err := s.st.DeleteBudgetAlert(c.Request().Context(), principal(c).OrgID, c.Param("alert_id")); err != nil {
		return storeError(err, "budget alert")
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) getBillingSettings(c echo.Context) error {
	id := c.Param("org_id")
	if !visibleOrg(c, id) {
		return errNotFound("organisation")
	}
	ob, err := s.st.OrgBillingOf(c.Request().Context(), id)
	if err != nil {
		return storeError(err, "organisation")
	}
	return c.JSON(http.StatusOK, client.BillingSettings{Plan: ob.PlanID, TimeZone: ob.TimeZone})
}

func (s *Server) putBillingSettings(c echo.Context) error {
	id := c.Param("org_id")
	if !visibleOrg(c, id) {
		return errNotFound("organisation")
	}
	if !principal(c).Operator {
		return errForbidden("only the operator may change an organisation's plan or billing time zone")
	}
	var req client.BillingSettings
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if req.Plan == "" {
		fe.add("plan", "is required")
	}
	// Only IANA zone names: "Local" would mean the server's zone.
	if _, err := time.LoadLocation(req.TimeZone); err != nil || req.TimeZone == "" || req.TimeZone == "Local" {
		fe.add("time_zone", "must be an IANA time zone name such as UTC or Europe/Paris")
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := s.st.SetOrgBilling(c.Request().Context(), store.OrgBilling{OrgID: id, PlanID: req.Plan, TimeZone: req.TimeZone}); err != nil {
		return storeError(err, "organisation")
	}
	return c.JSON(http.StatusOK, req)
}

func (s *Server) createAdjustment(c echo.Context) error {
	id := c.Param("org_id")
	if !visibleOrg(c, id) {
		return errNotFound("organisation")
	}
	if !principal(c).Operator {
		return errForbidden("only the operator may credit or adjust an invoice")
	}
	var req client.CreateAdjustmentRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	month, err := time.Parse("2006-01", req.Month)
	if err != nil {
		fe.add("month", "must be YYYY-MM")
	}
	amount, err := billing.ParseAmount(req.Amount)
	switch {
	case err != nil:
		fe.add("amount", "must be a decimal amount with at most nine decimals")
	case req.Kind == "credit" && amount <= 0:
		fe.add("amount", "a credit must be positive")
	case amount == 0:
		fe.add("amount", "must not be zero")
	}
	if req.Kind != "credit" && req.Kind != "adjustment" {
		fe.add("kind", "must be credit or adjustment")
	}
	if len(req.Description) > 256 {
		fe.add("description", "must be at most 256 characters")
	}
	if err := fe.err(); err != nil {
		return err
	}
	if _, err := s.st.Org(c.Request().Context(), id); err != nil {
		return storeError(err, "organisation")
	}
	adjID, err := s.st.AddAdjustment(c.Request().Context(), id, month.Format(time.DateOnly), req.Kind == "credit", amount, req.Description)
	if errors.Is(err, store.ErrFinalized) {
		return newProblem(http.StatusConflict, client.ProblemConflict, "the invoice of "+req.Month+" is finalized; adjust a later month")
	}
	if err != nil {
		return storeError(err, "organisation")
	}
	return c.JSON(http.StatusCreated, client.Adjustment{ID: adjID, Month: req.Month, Kind: req.Kind, Amount: money(amount), Description: req.Description})
}
