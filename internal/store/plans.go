package store

// Plans as the operator manages them: a billing plan's name, currency and
// ceilings (migration 0016). Its price book is Plan and PutPlan's. An
// organisation's plan is OrgBilling.PlanID; its clusters' effective limits
// are their own capped by the plan's ceilings (withPlan, ClusterLimits).

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/internal/limits"
)

// BillingPlan is a plan's name, currency and ceilings.
type BillingPlan struct {
	ID        string
	Name      string
	Currency  string
	Ceilings  limits.Limits
	CreatedAt time.Time
	UpdatedAt time.Time
}

const billingPlanCols = `id, name, currency, ` + limitCols + `, created_at, updated_at`

func scanBillingPlan(r pgx.CollectableRow) (BillingPlan, error) {
	var p BillingPlan
	dest := append([]any{&p.ID, &p.Name, &p.Currency}, limitDests(&p.Ceilings)...)
	return p, r.Scan(append(dest, &p.CreatedAt, &p.UpdatedAt)...)
}

// CreateBillingPlan creates plan p with the price book and included usage
// of DefaultPlan, which the operator may change afterwards (PutPlan): a
// plan without prices would rate usage at nothing. A taken id is
// ErrExists.
func (s *Store) CreateBillingPlan(ctx context.Context, p BillingPlan) (BillingPlan, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO billing_plans (id, name, currency, `+limitCols+`) VALUES ($1, $2, $3, `+
			params(4, len(limitArgs(p.Ceilings)))+`)`, append([]any{p.ID, p.Name, p.Currency}, limitArgs(p.Ceilings)...)...); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO billing_prices (plan_id, metric, effective_from, unit_price)
			SELECT $1, metric, effective_from, unit_price FROM billing_prices WHERE plan_id = $2`, p.ID, DefaultPlan); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO billing_included (plan_id, metric, quantity)
			SELECT $1, metric, quantity FROM billing_included WHERE plan_id = $2`, p.ID, DefaultPlan)
		return err
	})
	switch {
	case isUniqueViolation(err):
		return BillingPlan{}, fmt.Errorf("%w: plan %q", ErrExists, p.ID)
	case isCheckViolation(err):
		return BillingPlan{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	case err != nil:
		return BillingPlan{}, fmt.Errorf("store: create plan: %w", err)
	}
	return s.BillingPlan(ctx, p.ID)
}

// BillingPlan returns one plan.
func (s *Store) BillingPlan(ctx context.Context, id string) (BillingPlan, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+billingPlanCols+` FROM billing_plans WHERE id = $1`, id)
	p, err := pgx.CollectExactlyOneRow(rows, scanBillingPlan)
	if err != nil {
		return p, fmt.Errorf("store: plan %s: %w", id, noRows(err))
	}
	return p, nil
}

// BillingPlans lists the plans by id.
func (s *Store) BillingPlans(ctx context.Context, p Page) ([]BillingPlan, string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+billingPlanCols+` FROM billing_plans WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.limit()+1)
	out, err := pgx.CollectRows(rows, scanBillingPlan)
	if err != nil {
		return nil, "", fmt.Errorf("store: plans: %w", err)
	}
	out, next := page(out, p.limit(), func(p BillingPlan) string { return p.ID })
	return out, next, nil
}

// UpdateBillingPlan applies change to a plan under its row lock and
// writes back its name, currency and ceilings. Brokers pick up new
// ceilings with their next read of the clusters' limits; a ceiling below
// a cluster's own limit caps it from then on without changing it.
func (s *Store) UpdateBillingPlan(ctx context.Context, id string, change func(*BillingPlan) error) (BillingPlan, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+billingPlanCols+` FROM billing_plans WHERE id = $1 FOR UPDATE`, id)
		p, err := pgx.CollectExactlyOneRow(rows, scanBillingPlan)
		if err != nil {
			return noRows(err)
		}
		if err := change(&p); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE billing_plans SET name = $2, currency = $3, updated_at = now(),
			(`+limitCols+`) = (`+params(4, len(limitArgs(p.Ceilings)))+`) WHERE id = $1`,
			append([]any{id, p.Name, p.Currency}, limitArgs(p.Ceilings)...)...)
		return err
	})
	if isCheckViolation(err) {
		return BillingPlan{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err != nil {
		return BillingPlan{}, fmt.Errorf("store: update plan: %w", err)
	}
	return s.BillingPlan(ctx, id)
}

// OrgCeilings returns the plan of organisation orgID and its ceilings,
// which a cluster created in it is checked against.
func (s *Store) OrgCeilings(ctx context.Context, orgID string) (string, limits.Limits, error) {
	var (
		id   string
		ceil limits.Limits
	)
	err := s.pool.QueryRow(ctx, `SELECT p.id, `+limitColsOf("p")+` FROM organizations o JOIN billing_plans p ON p.id = o.billing_plan_id
		WHERE o.id = $1`, orgID).Scan(append([]any{&id}, limitDests(&ceil)...)...)
	if err != nil {
		return "", ceil, fmt.Errorf("store: ceilings of %s: %w", orgID, noRows(err))
	}
	return id, ceil, nil
}
