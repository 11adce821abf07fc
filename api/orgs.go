package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/store"
)

// pageParams reads ?limit= (1-1000, default 100) and ?cursor=.
func pageParams(c echo.Context) (store.Page, error) {
	var p store.Page
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return p, fieldError("limit", "must be an integer from 1 to 1000")
		}
		p.Limit = n
	}
	if v := c.QueryParam("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 || !strings.HasPrefix(string(b), "c1:") {
			return p, fieldError("cursor", "is not a cursor this API returned")
		}
		p.After = string(b[3:])
	}
	return p, nil
}

func cursor(next string) string {
	if next == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte("c1:" + next))
}

func list[S, T any](items []S, next string, conv func(S) T) client.List[T] {
	out := client.List[T]{Items: make([]T, 0, len(items)), NextCursor: cursor(next)}
	for _, it := range items {
		out.Items = append(out.Items, conv(it))
	}
	return out
}

// validName checks display names of organisations, clusters and service
// accounts: 1-64 characters of letters, digits, '-', '_' and '.',
// starting with a letter or digit.
func validName(fe *fieldErrors, field, name string) {
	if name == "" || len(name) > 64 {
		fe.add(field, "must be 1 to 64 characters long")
		return
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !ok && (i == 0 || r != '-' && r != '_' && r != '.') {
			fe.add(field, "must start with a letter or digit and hold only letters, digits, '-', '_' and '.'")
			return
		}
	}
}

func orgOut(o store.Org) client.Organization {
	return client.Organization{ID: o.ID, Name: o.Name, CreatedAt: o.CreatedAt}
}

func (s *Server) createOrg(c echo.Context) error {
	var req client.CreateOrganizationRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	validName(&fe, "name", req.Name)
	if err := fe.err(); err != nil {
		return err
	}
	secret, hash := identity.NewSecret()
	o, sa, k, err := s.st.CreateOrg(c.Request().Context(), req.Name, hash, identity.SCRAMCredentials(secret))
	if err != nil {
		return storeError(err, "organisation")
	}
	out := client.CreatedOrganization{Organization: orgOut(o), AdminServiceAccount: saOut(sa), AdminAPIKey: keyOut(k)}
	c.Set(replayBodyKey, mustJSON(out)) // recorded without the secret
	out.AdminAPIKey.Secret = secret
	c.Response().Header().Set(echo.HeaderLocation, "/v1/organizations/"+o.ID)
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) listOrgs(c echo.Context) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	orgs, next, err := s.st.Orgs(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(orgs, next, orgOut))
}

// visibleOrg: the operator sees every organisation, an org's own
// principals see theirs, nobody else sees it exists.
func visibleOrg(c echo.Context, id string) bool {
	p := principal(c)
	return p.Operator || p.OrgID == id
}

func (s *Server) getOrg(c echo.Context) error {
	id := c.Param("org_id")
	if !visibleOrg(c, id) {
		return errNotFound("organisation")
	}
	o, err := s.st.Org(c.Request().Context(), id)
	if err != nil {
		return storeError(err, "organisation")
	}
	return c.JSON(http.StatusOK, orgOut(o))
}

func (s *Server) deleteOrg(c echo.Context) error {
	id := c.Param("org_id")
	if !visibleOrg(c, id) {
		return errNotFound("organisation")
	}
	if !principal(c).Operator {
		return errForbidden("only the operator may delete an organisation")
	}
	if err := s.st.DeleteOrg(c.Request().Context(), id); err != nil {
		return storeError(err, "organisation")
	}
	return c.NoContent(http.StatusNoContent)
}
