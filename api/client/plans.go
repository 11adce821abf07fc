package client

import (
	"context"
	"net/http"
	"time"

	"github.com/eddy-streams/eddy/internal/limits"
)

// Plan is a billing plan with the ceilings it sets on the limits of its
// organisations' clusters. Organisations are put on a plan with
// SetBillingSettings.
type Plan struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Currency  string        `json:"currency"`
	Ceilings  limits.Limits `json:"ceilings"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// CreatePlanRequest is the body of POST /v1/plans (operator only).
// Ceilings left zero (or nil) are the widest limits allows
// (limits.Widest); Currency defaults to USD.
type CreatePlanRequest struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	Currency string         `json:"currency,omitempty"`
	Ceilings *limits.Limits `json:"ceilings,omitempty"`
}

// UpdatePlanRequest is the body of PATCH /v1/plans/{id} (operator only);
// nil fields, and ceilings left zero, are left as they are.
type UpdatePlanRequest struct {
	Name     *string        `json:"name,omitempty"`
	Ceilings *limits.Limits `json:"ceilings,omitempty"`
}

func (c *Client) CreatePlan(ctx context.Context, req CreatePlanRequest, opts ...CallOption) (Plan, error) {
	var out Plan
	_, err := c.do(ctx, http.MethodPost, "/v1/plans", req, &out, opts...)
	return out, err
}

func (c *Client) ListPlans(ctx context.Context, o ListOptions) (List[Plan], error) {
	var out List[Plan]
	_, err := c.do(ctx, http.MethodGet, "/v1/plans"+o.query(), nil, &out)
	return out, err
}

func (c *Client) GetPlan(ctx context.Context, id string) (Plan, error) {
	var out Plan
	_, err := c.do(ctx, http.MethodGet, "/v1/plans/"+esc(id), nil, &out)
	return out, err
}

func (c *Client) UpdatePlan(ctx context.Context, id string, req UpdatePlanRequest) (Plan, error) {
	var out Plan
	_, err := c.do(ctx, http.MethodPatch, "/v1/plans/"+esc(id), req, &out)
	return out, err
}
