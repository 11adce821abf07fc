package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Billing wire types. Money is a decimal string in the invoice's currency
// ("12.34"; sub-cent amounts carry nine decimals); quantities are decimal
// strings too, so nothing passes through a float.

// UsageQuery selects usage for GetUsage. Zero values: the running month,
// daily granularity, every cluster and metric.
type UsageQuery struct {
	ClusterID   string
	Metric      string // ingress, egress, storage, partitions, clusters, requests, connections
	Granularity string // hour, day or month
	From, To    time.Time
}

// UsageItem is one cluster's use of one metric in one period.
type UsageItem struct {
	ClusterID string    `json:"cluster_id"`
	Metric    string    `json:"metric"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	// Quantity is in base units (bytes, byte-seconds, partition-seconds,
	// cluster-seconds, requests, connections), an integer.
	Quantity string `json:"quantity"`
	BaseUnit string `json:"base_unit"`
	// Units is Quantity in the pricing unit (GB, GB-month, ...), rounded
	// to nine decimals.
	Units string `json:"units"`
	Unit  string `json:"unit"`
}

// Usage answers GET /v1/billing/usage.
type Usage struct {
	TimeZone    string      `json:"time_zone"`
	Granularity string      `json:"granularity"`
	From        time.Time   `json:"from"`
	To          time.Time   `json:"to"`
	Items       []UsageItem `json:"items"`
}

// InvoiceLine is an invoice's charge for one cluster, metric and price.
type InvoiceLine struct {
	ClusterID     string `json:"cluster_id"`
	ClusterName   string `json:"cluster_name"`
	Metric        string `json:"metric"`
	Unit          string `json:"unit"`
	UnitPrice     string `json:"unit_price"`
	Units         string `json:"units"`          // used, in pricing units (rounded to nine decimals)
	BillableUnits string `json:"billable_units"` // after included usage
	Amount        string `json:"amount"`
}

// Invoice is a month's bill. Status is draft while the month runs and
// finalized (immutable) after it ended.
type Invoice struct {
	ID          string        `json:"id"`
	Month       string        `json:"month"` // YYYY-MM
	Status      string        `json:"status"`
	Currency    string        `json:"currency"`
	TimeZone    string        `json:"time_zone"`
	Plan        string        `json:"plan"`
	PeriodStart time.Time     `json:"period_start"`
	PeriodEnd   time.Time     `json:"period_end"`
	Subtotal    string        `json:"subtotal"`
	Credits     string        `json:"credits"`
	Adjustments string        `json:"adjustments"`
	Total       string        `json:"total"` // rounded to cents
	RatedAt     time.Time     `json:"rated_at"`
	FinalizedAt *time.Time    `json:"finalized_at,omitempty"`
	Lines       []InvoiceLine `json:"lines,omitempty"` // in GetInvoice only
}

// Estimate answers GET /v1/billing/estimate: the running month's draft
// invoice and a projection to the month's end at the current rate.
type Estimate struct {
	Month       string    `json:"month"`
	Currency    string    `json:"currency"`
	TimeZone    string    `json:"time_zone"`
	AsOf        time.Time `json:"as_of"`
	MonthToDate string    `json:"month_to_date"`
	Projected   string    `json:"projected"`
	Invoice     Invoice   `json:"invoice"`
}

// BudgetAlert POSTs an event to WebhookURL when a month's charges reach
// Threshold.
type BudgetAlert struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Threshold  string       `json:"threshold"`
	WebhookURL string       `json:"webhook_url"`
	Secret     string       `json:"secret,omitempty"` // signing secret, only when created
	CreatedAt  time.Time    `json:"created_at"`
	Events     []AlertEvent `json:"events,omitempty"` // in GetBudgetAlert only
}

// AlertEvent is an alert's firing for one month and its delivery.
type AlertEvent struct {
	Month       string     `json:"month"`
	Amount      string     `json:"amount"`
	Attempts    int        `json:"attempts"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	FailedAt    *time.Time `json:"failed_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// CreateBudgetAlertRequest is the body of POST /v1/billing/budget-alerts.
type CreateBudgetAlertRequest struct {
	Name       string `json:"name"`
	Threshold  string `json:"threshold"`
	WebhookURL string `json:"webhook_url"`
}

// BillingSettings are an organisation's plan and billing time zone.
type BillingSettings struct {
	Plan     string `json:"plan"`
	TimeZone string `json:"time_zone"`
}

// CreateAdjustmentRequest is the body of POST
// /v1/organizations/{org_id}/billing/adjustments (operator only).
type CreateAdjustmentRequest struct {
	Month       string `json:"month"` // YYYY-MM
	Kind        string `json:"kind"`  // credit or adjustment
	Amount      string `json:"amount"`
	Description string `json:"description,omitempty"`
}

// Adjustment is a recorded credit or adjustment.
type Adjustment struct {
	ID          string `json:"id"`
	Month       string `json:"month"`
	Kind        string `json:"kind"`
	Amount      string `json:"amount"`
	Description string `json:"description"`
}

func (q UsageQuery) query() string {
	v := url.Values{}
	if q.ClusterID != "" {
		v.Set("cluster_id", q.ClusterID)
	}
	if q.Metric != "" {
		v.Set("metric", q.Metric)
	}
	if q.Granularity != "" {
		v.Set("granularity", q.Granularity)
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// Billing.

func (c *Client) GetUsage(ctx context.Context, q UsageQuery) (Usage, error) {
	var out Usage
	_, err := c.do(ctx, http.MethodGet, "/v1/billing/usage"+q.query(), nil, &out)
	return out, err
}

func (c *Client) ListInvoices(ctx context.Context, o ListOptions) (List[Invoice], error) {
	var out List[Invoice]
	_, err := c.do(ctx, http.MethodGet, "/v1/billing/invoices"+o.query(), nil, &out)
	return out, err
}

func (c *Client) GetInvoice(ctx context.Context, id string) (Invoice, error) {
	var out Invoice
	_, err := c.do(ctx, http.MethodGet, "/v1/billing/invoices/"+esc(id), nil, &out)
	return out, err
}

// GetInvoiceCSV returns an invoice as CSV (one row per line, then the
// subtotal, credits, adjustments and total).
func (c *Client) GetInvoiceCSV(ctx context.Context, id string) ([]byte, error) {
	return c.csv(ctx, "/v1/billing/invoices/"+esc(id))
}

// ListInvoicesCSV returns one page of invoices as CSV.
func (c *Client) ListInvoicesCSV(ctx context.Context, o ListOptions) ([]byte, error) {
	return c.csv(ctx, "/v1/billing/invoices"+o.query())
}

func (c *Client) csv(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/csv")
	req.Header.Set("User-Agent", c.ua)
	c.auth(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if json.Unmarshal(b, p) != nil {
			p.Detail = strings.TrimSpace(string(b))
		}
		p.Status = resp.StatusCode
		return nil, p
	}
	return b, nil
}

func (c *Client) GetEstimate(ctx context.Context) (Estimate, error) {
	var out Estimate
	_, err := c.do(ctx, http.MethodGet, "/v1/billing/estimate", nil, &out)
	return out, err
}

func (c *Client) CreateBudgetAlert(ctx context.Context, req CreateBudgetAlertRequest, opts ...CallOption) (BudgetAlert, error) {
	var out BudgetAlert
	_, err := c.do(ctx, http.MethodPost, "/v1/billing/budget-alerts", req, &out, opts...)
	return out, err
}

func (c *Client) ListBudgetAlerts(ctx context.Context, o ListOptions) (List[BudgetAlert], error) {
	var out List[BudgetAlert]
	_, err := c.do(ctx, http.MethodGet, "/v1/billing/budget-alerts"+o.query(), nil, &out)
	return out, err
}

func (c *Client) GetBudgetAlert(ctx context.Context, id string) (BudgetAlert, error) {
	var out BudgetAlert
	_, err := c.do(ctx, http.MethodGet, "/v1/billing/budget-alerts/"+esc(id), nil, &out)
	return out, err
}

func (c *Client) DeleteBudgetAlert(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/billing/budget-alerts/"+esc(id), nil, nil)
	return err
}

func (c *Client) GetBillingSettings(ctx context.Context, org string) (BillingSettings, error) {
	var out BillingSettings
	_, err := c.do(ctx, http.MethodGet, "/v1/organizations/"+esc(org)+"/billing", nil, &out)
	return out, err
}

// SetBillingSettings changes an organisation's plan and time zone
// (operator only).
func (c *Client) SetBillingSettings(ctx context.Context, org string, s BillingSettings) (BillingSettings, error) {
	var out BillingSettings
	_, err := c.do(ctx, http.MethodPut, "/v1/organizations/"+esc(org)+"/billing", s, &out)
	return out, err
}

// CreateAdjustment records a credit or adjustment (operator only).
func (c *Client) CreateAdjustment(ctx context.Context, org string, req CreateAdjustmentRequest, opts ...CallOption) (Adjustment, error) {
	var out Adjustment
	_, err := c.do(ctx, http.MethodPost, "/v1/organizations/"+esc(org)+"/billing/adjustments", req, &out, opts...)
	return out, err
}
