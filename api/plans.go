package api

// Plans: the operator's billing plans and the ceilings they set on the
// limits of their organisations' clusters. Only the operator token may
// read or change them; an organisation is put on a plan with PUT
// /v1/organizations/{org_id}/billing, and a tenant sees its plan and
// ceilings on its clusters.

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/store"
)

// operatorPlan is middleware for the routes of one plan: to anyone but
// the operator a plan is not found, as another organisation's resources
// are, so plan ids do not leak.
func operatorPlan(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !principal(c).Operator {
			return errNotFound("plan")
		}
		return next(c)
	}
}

func planOut(p store.BillingPlan) client.Plan {
	return client.Plan{ID: p.ID, Name: p.Name, Currency: p.Currency, Ceilings: p.Ceilings,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// validPlanID: plan ids are chosen by the operator and appear on invoices
// ("standard"), so they are slugs: 1-64 lower-case letters, digits and
// '-', starting with a letter.
func validPlanID(fe *fieldErrors, id string) {
	ok := len(id) >= 1 && len(id) <= 64 && id[0] >= 'a' && id[0] <= 'z'
	for _, r := range id {
		ok = ok && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}
	if !ok {
		fe.add("id", "must be 1 to 64 lower-case letters, digits and '-', starting with a letter")
	}
}

// patchCeilings decodes a request's ceilings object (absent: no change)
// onto c and adds every ceiling it changes out of Validate's range to fe
// as ceilings.<field>: a plan may allow at most what Validate allows.
func patchCeilings(fe *fieldErrors, raw json.RawMessage, c *limits.Limits) {
	before := *c
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, c) // cannot fail: decodePatchBody decoded it into a Limits
	}
	var errs limits.FieldErrors
	if errors.As(c.ValidateChange(before), &errs) {
		for _, e := range errs {
			fe.add("ceilings."+e.Field, "%s", e.Msg)
		}
	}
}

func (s *Server) createPlan(c echo.Context) error {
	var req client.CreatePlanRequest
	rawCeilings, err := decodePatchBody(c, s.cfg.MaxBodyBytes, &req, "ceilings")
	if err != nil {
		return err
	}
	var fe fieldErrors
	validPlanID(&fe, req.ID)
	validName(&fe, "name", req.Name)
	if req.Currency == "" {
		req.Currency = "USD"
	}
	if len(req.Currency) != 3 {
		fe.add("currency", "must be an ISO 4217 code such as USD")
	}
	ceilings := limits.Widest()
	patchCeilings(&fe, rawCeilings, &ceilings)
	if err := fe.err(); err != nil {
		return err
	}
	p, err := s.st.CreateBillingPlan(c.Request().Context(), store.BillingPlan{ID: req.ID, Name: req.Name, Currency: req.Currency, Ceilings: ceilings})
	if err != nil {
		return storeError(err, "plan")
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/plans/"+p.ID)
	return c.JSON(http.StatusCreated, planOut(p))
}

func (s *Server) listPlans(c echo.Context) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	plans, next, err := s.st.BillingPlans(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(plans, next, planOut))
}

func (s *Server) getPlan(c echo.Context) error {
	p, err := s.st.BillingPlan(c.Request().Context(), c.Param("plan_id"))
	if err != nil {
		return storeError(err, "plan")
	}
	return c.JSON(http.StatusOK, planOut(p))
}

// updatePlan changes a plan's name and ceilings. Lowering a ceiling below
// a cluster's limit does not change the cluster: its effective limit is
// the lower of the two from the brokers' next read of the limits on.
func (s *Server) updatePlan(c echo.Context) error {
	var req client.UpdatePlanRequest
	rawCeilings, err := decodePatchBody(c, s.cfg.MaxBodyBytes, &req, "ceilings")
	if err != nil {
		return err
	}
	var fe fieldErrors
	if req.Name != nil {
		validName(&fe, "name", *req.Name)
	}
	// Checked on the locked row, so a ceiling the body leaves out keeps
	// what a concurrent update wrote.
	if err := fe.err(); err != nil {
		return err
	}
	p, err := s.st.UpdateBillingPlan(c.Request().Context(), c.Param("plan_id"), func(p *store.BillingPlan) error {
		if req.Name != nil {
			p.Name = *req.Name
		}
		var fe fieldErrors
		patchCeilings(&fe, rawCeilings, &p.Ceilings)
		return fe.err()
	})
	if err != nil {
		return storeError(err, "plan")
	}
	return c.JSON(http.StatusOK, planOut(p))
}
