package store

// Billing: storage sampling, usage queries, rating into cost lines and
// invoices, credits and adjustments, budget alerts and their deliveries.
// Amounts are computed by package billing; this file only moves them in
// and out of Postgres. Numeric columns travel as text, so nothing passes
// through a float.

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/billing"
	"github.com/eddy-streams/eddy/internal/limits"
)

// ErrFinalized: the invoice (or month) is finalized and cannot change.
var ErrFinalized = errors.New("store: invoice finalized")

// SampleStorage records, for every organisation's cluster, the bytes its
// segments hold and its partition count, for the sampling window
// [start, start+seconds). A window already sampled is left alone, so any
// number of control planes may sample. It returns the rows written.
func (s *Store) SampleStorage(ctx context.Context, start time.Time, seconds int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO storage_samples (cluster_id, window_start, window_seconds, bytes, partitions)
		SELECT vc.id, $1::timestamptz, $2::int, coalesce(b.bytes, 0), coalesce(n.partitions, 0)
		FROM virtual_clusters vc
		LEFT JOIN (`+storedByClusterSQL+`) b ON b.cluster_id = vc.id
		LEFT JOIN (SELECT t.cluster_id, count(*) AS partitions FROM topics t JOIN partitions p ON p.topic_id = t.id
			GROUP BY t.cluster_id) n ON n.cluster_id = vc.id
		WHERE vc.org_id IS NOT NULL AND vc.created_at < $1::timestamptz + $2::int * interval '1 second'
		ON CONFLICT (cluster_id, window_start) DO NOTHING`, start, seconds)
	if err != nil {
		return 0, fmt.Errorf("store: sample storage: %w", err)
	}
	return tag.RowsAffected(), nil
}

// OrgBilling is an organisation's billing settings.
type OrgBilling struct {
	OrgID     string
	PlanID    string
	TimeZone  string
	CreatedAt time.Time // of the organisation
}

// BillingOrgs lists every organisation's billing settings.
func (s *Store) BillingOrgs(ctx context.Context) ([]OrgBilling, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, billing_plan_id, billing_time_zone, created_at FROM organizations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: billing orgs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrgBilling, error) {
		var o OrgBilling
		return o, r.Scan(&o.OrgID, &o.PlanID, &o.TimeZone, &o.CreatedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("store: billing orgs: %w", err)
	}
	return out, nil
}

// OrgBillingOf returns one organisation's billing settings.
func (s *Store) OrgBillingOf(ctx context.Context, orgID string) (OrgBilling, error) {
	o := OrgBilling{OrgID: orgID}
	err := s.pool.QueryRow(ctx, `SELECT billing_plan_id, billing_time_zone, created_at FROM organizations WHERE id = $1`, orgID).
		Scan(&o.PlanID, &o.TimeZone, &o.CreatedAt)
	if err != nil {
		return o, fmt.Errorf("store: org billing: %w", noRows(err))
	}
	return o, nil
}

// SetOrgBilling changes an organisation's plan and time zone (the time
// zone must be valid for time.LoadLocation; callers check).
func (s *Store) SetOrgBilling(ctx context.Context, o OrgBilling) error {
	tag, err := s.pool.Exec(ctx, `UPDATE organizations SET billing_plan_id = $2, billing_time_zone = $3 WHERE id = $1`,
		o.OrgID, o.PlanID, o.TimeZone)
	if isFKViolation(err) {
		return fmt.Errorf("%w: no plan %q", ErrInvalid, o.PlanID)
	}
	if err != nil {
		return fmt.Errorf("store: set org billing: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// PlanPrice is a price book entry to store.
type PlanPrice struct {
	Metric        billing.Metric
	EffectiveFrom time.Time
	UnitPrice     string // decimal
}

// PutPlan creates or replaces a plan: its currency, its whole price book
// and its included usage (decimal strings, pricing units).
func (s *Store) PutPlan(ctx context.Context, id, name, currency string, prices []PlanPrice, included map[billing.Metric]string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A new plan's ceilings are the widest; an existing plan keeps its
		// own (UpdateBillingPlan changes them).
		if _, err := tx.Exec(ctx, `
			INSERT INTO billing_plans (id, name, currency, `+limitCols+`) VALUES ($1, $2, $3, `+params(4, len(limitArgs(limits.Widest())))+`)
			ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, currency = EXCLUDED.currency`,
			append([]any{id, name, currency}, limitArgs(limits.Widest())...)...); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM billing_prices WHERE plan_id = $1`, id); err != nil {
			return err
		}
		for _, p := range prices {
			if _, err := tx.Exec(ctx, `INSERT INTO billing_prices (plan_id, metric, effective_from, unit_price) VALUES ($1, $2, $3, $4::numeric)`,
				id, string(p.Metric), p.EffectiveFrom, p.UnitPrice); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM billing_included WHERE plan_id = $1`, id); err != nil {
			return err
		}
		for m, q := range included {
			if _, err := tx.Exec(ctx, `INSERT INTO billing_included (plan_id, metric, quantity) VALUES ($1, $2, $3::numeric)`, id, string(m), q); err != nil {
				return err
			}
		}
		return nil
	})
	if isCheckViolation(err) {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err != nil {
		return fmt.Errorf("store: put plan: %w", err)
	}
	return nil
}

// Plan reads a plan with its price book.
func (s *Store) Plan(ctx context.Context, id string) (billing.Plan, error) {
	return plan(ctx, s.pool, id)
}

func plan(ctx context.Context, q querier, id string) (billing.Plan, error) {
	p := billing.Plan{ID: id, Included: map[billing.Metric]*big.Rat{}}
	if err := q.QueryRow(ctx, `SELECT currency FROM billing_plans WHERE id = $1`, id).Scan(&p.Currency); err != nil {
		return p, fmt.Errorf("store: plan %s: %w", id, noRows(err))
	}
	rows, err := q.Query(ctx, `SELECT metric, effective_from, unit_price::text FROM billing_prices WHERE plan_id = $1 ORDER BY metric, effective_from`, id)
	if err != nil {
		return p, fmt.Errorf("store: plan %s: %w", id, err)
	}
	p.Prices, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (billing.Price, error) {
		var (
			pr    billing.Price
			m, up string
		)
		if err := r.Scan(&m, &pr.EffectiveFrom, &up); err != nil {
			return pr, err
		}
		pr.Metric = billing.Metric(m)
		pr.UnitPrice, err = billing.ParseDecimal(up)
		return pr, err
	})
	if err != nil {
		return p, fmt.Errorf("store: plan %s: %w", id, err)
	}
	rows, err = q.Query(ctx, `SELECT metric, quantity::text FROM billing_included WHERE plan_id = $1`, id)
	if err != nil {
		return p, fmt.Errorf("store: plan %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m, qty string
		if err := rows.Scan(&m, &qty); err != nil {
			return p, err
		}
		r, err := billing.ParseDecimal(qty)
		if err != nil {
			return p, err
		}
		p.Included[billing.Metric(m)] = r
	}
	return p, rows.Err()
}

// orgUsage returns an organisation's priced usage with window starts in
// [from, to), summed per cluster, metric and 15-minute bucket.
func orgUsage(ctx context.Context, q querier, orgID string, from, to time.Time) ([]billing.Usage, error) {
	rows, err := q.Query(ctx, `
		SELECT u.cluster_id, u.metric, date_bin('15 minutes', u.window_start, 'epoch') AS bucket, sum(u.quantity)::text
		FROM usage_windows u JOIN billed_clusters bc ON bc.cluster_id = u.cluster_id
		WHERE bc.org_id = $1 AND u.window_start >= $2 AND u.window_start < $3
			AND u.metric IN ('ingress', 'egress', 'storage', 'partitions', 'clusters')
		GROUP BY 1, 2, 3`, orgID, from, to)
	if err != nil {
		return nil, fmt.Errorf("store: usage: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (billing.Usage, error) {
		var (
			u      billing.Usage
			m, qty string
		)
		if err := r.Scan(&u.Cluster, &m, &u.Start, &qty); err != nil {
			return u, err
		}
		u.Metric = billing.Metric(m)
		n, ok := new(big.Int).SetString(qty, 10)
		if !ok {
			return u, fmt.Errorf("store: usage quantity %q is not an integer", qty)
		}
		u.Quantity = n
		return u, nil
	})
}

// Invoice is a stored invoice.
type Invoice struct {
	ID          string
	OrgID       string
	Month       string // first day, YYYY-MM-DD
	TimeZone    string
	Currency    string
	PlanID      string
	Status      string // draft or finalized
	PeriodStart time.Time
	PeriodEnd   time.Time
	Subtotal    billing.Nanos
	Credits     billing.Nanos
	Adjustments billing.Nanos
	TotalCents  int64
	RatedAt     time.Time
	FinalizedAt *time.Time
	Lines       []InvoiceLine // filled by Invoice, not by Invoices
}

// InvoiceLine is one (cluster, metric, price) line of an invoice.
type InvoiceLine struct {
	ClusterID   string
	ClusterName string
	Metric      billing.Metric
	UnitPrice   string // decimal
	Quantity    string // base units (integer)
	Billable    string // base units (integer)
	Amount      billing.Nanos
}

const invoiceCols = `id, org_id, to_char(month, 'YYYY-MM-DD'), time_zone, currency, plan_id, status,
	period_start, period_end, subtotal_nanos, credits_nanos, adjustments_nanos, total_cents, rated_at, finalized_at`

func scanInvoice(r pgx.Row) (Invoice, error) {
	var i Invoice
	err := r.Scan(&i.ID, &i.OrgID, &i.Month, &i.TimeZone, &i.Currency, &i.PlanID, &i.Status,
		&i.PeriodStart, &i.PeriodEnd, &i.Subtotal, &i.Credits, &i.Adjustments, &i.TotalCents, &i.RatedAt, &i.FinalizedAt)
	return i, err
}

// RateMonth rates an organisation's usage in the billing month p (in the
// organisation's time zone and plan) and writes the month's daily cost
// lines and its draft invoice, credits and adjustments applied; with
// finalize it also finalizes the invoice, after which nothing of the
// month changes. It fires the organisation's budget alerts the month's
// total reached. Rating a finalized month returns its invoice unchanged.
// Runs for one organisation are serialised by an advisory lock.
func (s *Store) RateMonth(ctx context.Context, o OrgBilling, p billing.Period, finalize bool) (Invoice, error) {
	loc, err := time.LoadLocation(o.TimeZone)
	if err != nil {
		return Invoice{}, fmt.Errorf("store: org %s: time zone: %w", o.OrgID, err)
	}
	var inv Invoice
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockOrgBilling(ctx, tx, o.OrgID); err != nil {
			return err
		}
		existing, err := scanInvoice(tx.QueryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE org_id = $1 AND month = $2`, o.OrgID, p.Month))
		switch {
		case err == nil && existing.Status == "finalized":
			inv = existing
			return nil
		case err == nil:
		case errors.Is(err, pgx.ErrNoRows):
			existing = Invoice{ID: NewID("inv")}
		default:
			return err
		}
		pl, err := plan(ctx, tx, o.PlanID)
		if err != nil {
			return err
		}
		usage, err := orgUsage(ctx, tx, o.OrgID, p.Start, p.End)
		if err != nil {
			return err
		}
		lines, err := billing.Rate(pl, loc, usage)
		if err != nil {
			return err
		}
		adj, err := adjustments(ctx, tx, o.OrgID, p.Month)
		if err != nil {
			return err
		}
		sum := billing.Summarize(lines, adj)

		if _, err := tx.Exec(ctx, `DELETE FROM cost_lines WHERE org_id = $1 AND day >= $2::date AND day < ($2::date + interval '1 month')`, o.OrgID, p.Month); err != nil {
			return err
		}
		if len(lines) > 0 {
			var days, clusters, metrics, prices, qtys, bills []string
			var amounts []int64
			for _, l := range lines {
				days, clusters, metrics = append(days, l.Day), append(clusters, l.Cluster), append(metrics, string(l.Metric))
				prices = append(prices, billing.FormatDecimal(l.UnitPrice, decimals(l.UnitPrice)))
				qtys, bills = append(qtys, l.Quantity.String()), append(bills, l.Billable.String())
				amounts = append(amounts, int64(l.Amount))
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO cost_lines (org_id, day, cluster_id, metric, unit_price, quantity, billable, amount_nanos)
				SELECT $1, d::date, c, m, p::numeric, q::numeric, b::numeric, a
				FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[]) AS x(d, c, m, p, q, b, a)`,
				o.OrgID, days, clusters, metrics, prices, qtys, bills, amounts); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO invoices (id, org_id, month, time_zone, currency, plan_id, period_start, period_end,
				subtotal_nanos, credits_nanos, adjustments_nanos, total_cents, rated_at)
			VALUES ($1, $2, $3::date, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
			ON CONFLICT (org_id, month) DO UPDATE SET time_zone = EXCLUDED.time_zone, currency = EXCLUDED.currency,
				plan_id = EXCLUDED.plan_id, period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
				subtotal_nanos = EXCLUDED.subtotal_nanos, credits_nanos = EXCLUDED.credits_nanos,
				adjustments_nanos = EXCLUDED.adjustments_nanos, total_cents = EXCLUDED.total_cents, rated_at = now()`,
			existing.ID, o.OrgID, p.Month, o.TimeZone, pl.Currency, pl.ID, p.Start, p.End,
			int64(sum.Subtotal), int64(sum.Credits), int64(sum.Adjustments), sum.TotalCents); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM invoice_lines WHERE invoice_id = $1`, existing.ID); err != nil {
			return err
		}
		if n := len(sum.Lines); n > 0 {
			// One statement for every line, like the cost lines above.
			lc, lm, lp, lq, lb := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			la := make([]int64, n)
			for i, l := range sum.Lines {
				lc[i], lm[i] = l.Cluster, string(l.Metric)
				lp[i] = billing.FormatDecimal(l.UnitPrice, decimals(l.UnitPrice))
				lq[i], lb[i], la[i] = l.Quantity.String(), l.Billable.String(), int64(l.Amount)
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO invoice_lines (invoice_id, cluster_id, metric, unit_price, quantity, billable, amount_nanos)
				SELECT $1, c, m, p::numeric, q::numeric, b::numeric, a
				FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[]) WITH ORDINALITY AS x(c, m, p, q, b, a, i)
				ORDER BY i`,
				existing.ID, lc, lm, lp, lq, lb, la); err != nil {
				return err
			}
		}
		if finalize {
			if _, err := tx.Exec(ctx, `UPDATE invoices SET status = 'finalized', finalized_at = now() WHERE id = $1`, existing.ID); err != nil {
				return err
			}
		}
		// Budget alerts: one event per alert and month, when the month's
		// total reaches the threshold.
		if _, err := tx.Exec(ctx, `
			INSERT INTO budget_alert_events (alert_id, month, org_id, amount_nanos)
			SELECT id, $2::date, org_id, $3 FROM budget_alerts WHERE org_id = $1 AND threshold_nanos <= $3
			ON CONFLICT (alert_id, month) DO NOTHING`, o.OrgID, p.Month, int64(sum.Total)); err != nil {
			return err
		}
		inv, err = scanInvoice(tx.QueryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE id = $1`, existing.ID))
		return err
	})
	if err != nil {
		return Invoice{}, fmt.Errorf("store: rate %s %s: %w", o.OrgID, p.Month, err)
	}
	return inv, nil
}

// decimals is how many decimal places r needs (it is a finite decimal:
// prices come from numeric columns); at most 30.
func decimals(r *big.Rat) int {
	for d := 0; d < 30; d++ {
		x := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil)))
		if x.IsInt() {
			return d
		}
	}
	return 30
}

func lockOrgBilling(ctx context.Context, tx pgx.Tx, orgID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('eddy-billing:' || $1))`, orgID)
	return err
}

func adjustments(ctx context.Context, q querier, orgID, month string) ([]billing.Adjustment, error) {
	rows, err := q.Query(ctx, `SELECT kind, amount_nanos FROM billing_adjustments WHERE org_id = $1 AND month = $2::date`, orgID, month)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (billing.Adjustment, error) {
		var (
			a    billing.Adjustment
			kind string
		)
		err := r.Scan(&kind, &a.Amount)
		a.Credit = kind == "credit"
		return a, err
	})
}

// Invoices lists an organisation's invoices, newest month first. The
// cursor is the month.
func (s *Store) Invoices(ctx context.Context, orgID string, p Page) ([]Invoice, string, error) {
	after := p.After
	if after == "" {
		after = "9999-12-01"
	}
	rows, err := s.pool.Query(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE org_id = $1 AND month < $2::date
		ORDER BY month DESC LIMIT $3`, orgID, after, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store: invoices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invoice, error) { return scanInvoice(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: invoices: %w", err)
	}
	out, next := page(out, p.limit(), func(i Invoice) string { return i.Month })
	return out, next, nil
}

// Invoice returns one of an organisation's invoices with its lines.
func (s *Store) Invoice(ctx context.Context, orgID, id string) (Invoice, error) {
	inv, err := scanInvoice(s.pool.QueryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE org_id = $1 AND id = $2`, orgID, id))
	if err != nil {
		return Invoice{}, fmt.Errorf("store: invoice: %w", noRows(err))
	}
	inv.Lines, err = s.InvoiceLines(ctx, id)
	return inv, err
}

// InvoiceForMonth returns an organisation's invoice of a month (its first
// day, YYYY-MM-DD) with its lines.
func (s *Store) InvoiceForMonth(ctx context.Context, orgID, month string) (Invoice, error) {
	inv, err := scanInvoice(s.pool.QueryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE org_id = $1 AND month = $2::date`, orgID, month))
	if err != nil {
		return Invoice{}, fmt.Errorf("store: invoice: %w", noRows(err))
	}
	inv.Lines, err = s.InvoiceLines(ctx, inv.ID)
	return inv, err
}

// InvoiceLines returns the lines of invoice id.
func (s *Store) InvoiceLines(ctx context.Context, id string) ([]InvoiceLine, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT l.cluster_id, COALESCE(bc.name, ''), l.metric, l.unit_price::text, l.quantity::text, l.billable::text, l.amount_nanos
		FROM invoice_lines l LEFT JOIN billed_clusters bc ON bc.cluster_id = l.cluster_id
		WHERE l.invoice_id = $1 ORDER BY l.cluster_id,
			array_position(ARRAY['ingress','egress','storage','partitions','clusters'], l.metric), l.unit_price`, id)
	if err != nil {
		return nil, fmt.Errorf("store: invoice lines: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (InvoiceLine, error) {
		var (
			l InvoiceLine
			m string
		)
		err := r.Scan(&l.ClusterID, &l.ClusterName, &m, &l.UnitPrice, &l.Quantity, &l.Billable, &l.Amount)
		l.Metric = billing.Metric(m)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: invoice lines: %w", err)
	}
	return out, nil
}

// CostLineSum is the sum of an organisation's daily cost lines for a
// month: what its invoice subtotal must equal.
func (s *Store) CostLineSum(ctx context.Context, orgID, month string) (billing.Nanos, error) {
	var n billing.Nanos
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(sum(amount_nanos), 0)::bigint FROM cost_lines
		WHERE org_id = $1 AND day >= $2::date AND day < ($2::date + interval '1 month')`, orgID, month).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: cost lines: %w", err)
	}
	return n, nil
}

// AddAdjustment records a credit (positive amount) or a signed adjustment
// on an organisation's month; ErrFinalized if that month's invoice is
// finalized.
func (s *Store) AddAdjustment(ctx context.Context, orgID, month string, credit bool, amount billing.Nanos, description string) (string, error) {
	id := NewID("adj")
	kind := "adjustment"
	if credit {
		kind = "credit"
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockOrgBilling(ctx, tx, orgID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO billing_adjustments (id, org_id, month, kind, amount_nanos, description)
			VALUES ($1, $2, $3::date, $4, $5, $6)`, id, orgID, month, kind, int64(amount), description)
		return err
	})
	if isCheckViolation(err) {
		if strings.Contains(err.Error(), "finalized") {
			return "", ErrFinalized
		}
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err != nil {
		return "", fmt.Errorf("store: add adjustment: %w", err)
	}
	return id, nil
}

// UsageFilter selects usage for Usage.
type UsageFilter struct {
	ClusterID   string // "" for all of the organisation's clusters
	Metric      string // "" for every metric
	Granularity string // hour, day or month
	TimeZone    string // where days and months begin
	From, To    time.Time
}

// UsageRow is a metric's quantity (base units) for a cluster in a period.
type UsageRow struct {
	ClusterID  string
	Metric     billing.Metric
	Start, End time.Time
	Quantity   string // base units, integer
}

// Usage sums an organisation's metered usage by cluster, metric and
// period (hour, day or month in filter.TimeZone), for windows starting in
// [From, To). A cluster of another organisation yields nothing.
func (s *Store) Usage(ctx context.Context, orgID string, f UsageFilter) ([]UsageRow, error) {
	unit := map[string]string{"hour": "hour", "day": "day", "month": "month"}[f.Granularity]
	if unit == "" {
		return nil, fmt.Errorf("%w: granularity %q", ErrInvalid, f.Granularity)
	}
	rows, err := s.pool.Query(ctx, `
		WITH b AS (
			SELECT u.cluster_id, u.metric,
				date_trunc($5, u.window_start AT TIME ZONE $4) AS local_start, u.quantity
			FROM usage_windows u JOIN billed_clusters bc ON bc.cluster_id = u.cluster_id
			WHERE bc.org_id = $1 AND ($2 = '' OR u.cluster_id = $2) AND ($3 = '' OR u.metric = $3)
				AND u.window_start >= $6 AND u.window_start < $7)
		SELECT cluster_id, metric, local_start AT TIME ZONE $4,
			(local_start + ('1 ' || $5)::interval) AT TIME ZONE $4, sum(quantity)::text
		FROM b GROUP BY cluster_id, metric, local_start
		ORDER BY local_start, cluster_id, metric`,
		orgID, f.ClusterID, f.Metric, f.TimeZone, unit, f.From, f.To)
	if err != nil {
		return nil, fmt.Errorf("store: usage: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsageRow, error) {
		var (
			u UsageRow
			m string
		)
		err := r.Scan(&u.ClusterID, &m, &u.Start, &u.End, &u.Quantity)
		u.Metric = billing.Metric(m)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: usage: %w", err)
	}
	return out, nil
}

// BilledCluster reports whether cluster id bills (or billed) to orgID.
func (s *Store) BilledCluster(ctx context.Context, orgID, id string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM billed_clusters WHERE org_id = $1 AND cluster_id = $2)`, orgID, id).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: billed cluster: %w", err)
	}
	return ok, nil
}

// BudgetAlert notifies a webhook when a month's charges reach Threshold.
type BudgetAlert struct {
	ID         string
	OrgID      string
	Name       string
	Threshold  billing.Nanos
	WebhookURL string
	Secret     string // HMAC-SHA256 key of the signature header, as the ledger sealed it (see SecretColumn)
	CreatedAt  time.Time
}

const alertCols = `id, org_id, name, threshold_nanos, webhook_url, secret, created_at`

func scanAlert(r pgx.Row) (BudgetAlert, error) {
	var a BudgetAlert
	err := r.Scan(&a.ID, &a.OrgID, &a.Name, &a.Threshold, &a.WebhookURL, &a.Secret, &a.CreatedAt)
	return a, err
}

// MaxBudgetAlerts bounds an organisation's budget alerts: each is
// evaluated at every rating and may send a webhook, so their number is
// the tenant's to choose only within a bound.
const MaxBudgetAlerts = 25

// CreateBudgetAlert stores a new alert; a.CreatedAt is set, and a.ID
// unless the caller chose it (with NewID("ba")) to seal the secret to it.
// An organisation that has MaxBudgetAlerts already is ErrLimit (counted
// under its row's lock, so concurrent creations do not pass the bound).
func (s *Store) CreateBudgetAlert(ctx context.Context, a BudgetAlert) (BudgetAlert, error) {
	if a.ID == "" {
		a.ID = NewID("ba")
	}
	var out BudgetAlert
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `
			SELECT count(b.id) FROM (SELECT id FROM organizations WHERE id = $1 FOR UPDATE) o
			LEFT JOIN budget_alerts b ON b.org_id = o.id GROUP BY o.id`, a.OrgID).Scan(&n); err != nil {
			return noRows(err)
		}
		if n >= MaxBudgetAlerts {
			return fmt.Errorf("%w: an organisation has at most %d budget alerts; it has %d", ErrLimit, MaxBudgetAlerts, n)
		}
		var err error
		out, err = scanAlert(tx.QueryRow(ctx, `
			INSERT INTO budget_alerts (id, org_id, name, threshold_nanos, webhook_url, secret)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+alertCols,
			a.ID, a.OrgID, a.Name, int64(a.Threshold), a.WebhookURL, a.Secret))
		return err
	})
	if isFKViolation(err) || errors.Is(err, ErrNotFound) {
		return BudgetAlert{}, ErrNotFound
	}
	if errors.Is(err, ErrLimit) {
		return BudgetAlert{}, err
	}
	if err != nil {
		return BudgetAlert{}, fmt.Errorf("store: create budget alert: %w", err)
	}
	return out, nil
}

// BudgetAlert returns one of an organisation's alerts.
func (s *Store) BudgetAlert(ctx context.Context, orgID, id string) (BudgetAlert, error) {
	a, err := scanAlert(s.pool.QueryRow(ctx, `SELECT `+alertCols+` FROM budget_alerts WHERE org_id = $1 AND id = $2`, orgID, id))
	if err != nil {
		return a, fmt.Errorf("store: budget alert: %w", noRows(err))
	}
	return a, nil
}

// BudgetAlerts lists an organisation's alerts by id.
func (s *Store) BudgetAlerts(ctx context.Context, orgID string, p Page) ([]BudgetAlert, string, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+alertCols+` FROM budget_alerts WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		orgID, p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store: budget alerts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BudgetAlert, error) { return scanAlert(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: budget alerts: %w", err)
	}
	out, next := page(out, p.limit(), func(a BudgetAlert) string { return a.ID })
	return out, next, nil
}

// DeleteBudgetAlert deletes an alert and its pending deliveries.
func (s *Store) DeleteBudgetAlert(ctx context.Context, orgID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM budget_alerts WHERE org_id = $1 AND id = $2`, orgID, id)
	if err != nil {
		return fmt.Errorf("store: delete budget alert: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// AlertDelivery is a budget alert event to deliver.
type AlertDelivery struct {
	Alert    BudgetAlert
	Month    string
	Amount   billing.Nanos
	FiredAt  time.Time
	Attempts int // before this one
}

// ClaimAlertDelivery takes the most overdue undelivered event and hides
// it from other claimers for lease (its next attempt moves to now+lease).
func (s *Store) ClaimAlertDelivery(ctx context.Context, lease time.Duration) (AlertDelivery, bool, error) {
	var d AlertDelivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var alertID string
		err := tx.QueryRow(ctx, `
			SELECT alert_id, to_char(month, 'YYYY-MM-DD'), amount_nanos, fired_at, attempts FROM budget_alert_events
			WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&alertID, &d.Month, &d.Amount, &d.FiredAt, &d.Attempts)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE budget_alert_events SET next_attempt_at = now() + $3::interval
			WHERE alert_id = $1 AND month = $2::date`, alertID, d.Month, lease.String()); err != nil {
			return err
		}
		d.Alert, err = scanAlert(tx.QueryRow(ctx, `SELECT `+alertCols+` FROM budget_alerts WHERE id = $1`, alertID))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("store: claim alert delivery: %w", err)
	}
	return d, true, nil
}

// FinishAlertDelivery records an attempt: delivered (deliveryErr nil),
// retried after retryIn, or given up (retryIn <= 0).
func (s *Store) FinishAlertDelivery(ctx context.Context, d AlertDelivery, deliveryErr error, retryIn time.Duration) error {
	var err error
	switch {
	case deliveryErr == nil:
		_, err = s.pool.Exec(ctx, `UPDATE budget_alert_events SET attempts = attempts + 1, delivered_at = now(), last_error = NULL
			WHERE alert_id = $1 AND month = $2::date`, d.Alert.ID, d.Month)
	case retryIn > 0:
		_, err = s.pool.Exec(ctx, `UPDATE budget_alert_events SET attempts = attempts + 1, last_error = $3,
			next_attempt_at = now() + $4::interval WHERE alert_id = $1 AND month = $2::date`,
			d.Alert.ID, d.Month, deliveryErr.Error(), retryIn.String())
	default:
		_, err = s.pool.Exec(ctx, `UPDATE budget_alert_events SET attempts = attempts + 1, last_error = $3, failed_at = now()
			WHERE alert_id = $1 AND month = $2::date`, d.Alert.ID, d.Month, deliveryErr.Error())
	}
	if err != nil {
		return fmt.Errorf("store: finish alert delivery: %w", err)
	}
	return nil
}

// AlertEvent is the state of a budget alert's event for a month.
type AlertEvent struct {
	Month       string
	Amount      billing.Nanos
	Attempts    int
	DeliveredAt *time.Time
	FailedAt    *time.Time
	LastError   string
}

// AlertEvents lists an alert's events, newest month first.
func (s *Store) AlertEvents(ctx context.Context, orgID, alertID string) ([]AlertEvent, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT to_char(month, 'YYYY-MM-DD'), amount_nanos, attempts, delivered_at, failed_at, COALESCE(last_error, '')
		FROM budget_alert_events WHERE org_id = $1 AND alert_id = $2 ORDER BY month DESC`, orgID, alertID)
	if err != nil {
		return nil, fmt.Errorf("store: alert events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AlertEvent, error) {
		var e AlertEvent
		return e, r.Scan(&e.Month, &e.Amount, &e.Attempts, &e.DeliveredAt, &e.FailedAt, &e.LastError)
	})
	if err != nil {
		return nil, fmt.Errorf("store: alert events: %w", err)
	}
	return out, nil
}

// DraftMonths lists the months with draft invoices of an organisation,
// oldest first.
func (s *Store) DraftMonths(ctx context.Context, orgID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT to_char(month, 'YYYY-MM-DD') FROM invoices WHERE org_id = $1 AND status = 'draft' ORDER BY month`, orgID)
	if err != nil {
		return nil, fmt.Errorf("store: draft months: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: draft months: %w", err)
	}
	return out, nil
}
