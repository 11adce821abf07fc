package api

// Identity federation over REST: an organisation's identity providers and
// pools (internal/store), and bearer tokens of those providers, which
// name their pool in the Eddy-Identity-Pool header (internal/federation).

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/egress"
	"github.com/eddy-streams/eddy/internal/federation"
	"github.com/eddy-streams/eddy/internal/store"
)

// resolvePool authenticates a bearer token of an organisation's own
// identity provider for the pool the request names.
func (s *Server) resolvePool(ctx context.Context, pool, token string) (Principal, error) {
	id, err := s.federation.Verify(ctx, pool, token)
	if errors.Is(err, federation.ErrRejected) {
		return Principal{}, unauthorized(err.Error())
	}
	if err != nil {
		return Principal{}, err
	}
	sa, err := s.st.ServiceAccount(ctx, id.Org, id.ServiceAccount)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, unauthorized("the identity pool's service account no longer exists")
	}
	if err != nil {
		return Principal{}, err
	}
	return Principal{OrgID: id.Org, Subject: id.ServiceAccount, ClusterID: id.Cluster, OrgAdmin: sa.OrgAdmin}, nil
}

func providerOut(p store.IdentityProvider) client.IdentityProvider {
	return client.IdentityProvider{ID: p.ID, Name: p.Name, Issuer: p.Issuer, JWKSURL: p.JWKSURL, Audience: p.Audience, CreatedAt: p.CreatedAt}
}

func poolOut(p store.IdentityPool) client.IdentityPool {
	return client.IdentityPool{ID: p.ID, Name: p.Name, ProviderID: p.ProviderID, ClusterID: p.ClusterID,
		ServiceAccountID: p.ServiceAccountID, Filter: p.Filter, FilterExpression: p.FilterExpression, CreatedAt: p.CreatedAt}
}

func (s *Server) createIdentityProvider(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	var req client.CreateIdentityProviderRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	validName(&fe, "name", req.Name)
	if u, err := url.Parse(req.Issuer); err != nil || len(req.Issuer) > 512 || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		fe.add("issuer", "must be the issuer's absolute http(s) URL (its iss claim), at most 512 characters")
	}
	if len(req.JWKSURL) > 2048 {
		fe.add("jwks_url", "must be an absolute http(s) URL of at most 2048 characters")
	} else if err := s.cfg.Federation.CheckURL(c.Request().Context(), req.JWKSURL); errors.Is(err, egress.ErrForbidden) {
		fe.add("jwks_url", "must not reach a loopback, private, link-local or cloud-metadata address")
	} else if err != nil {
		fe.add("jwks_url", "must be an absolute http(s) URL of at most 2048 characters without credentials")
	}
	if req.Audience == "" || len(req.Audience) > 256 {
		fe.add("audience", "must be the aud the provider's tokens carry for Eddy, 1 to 256 characters")
	}
	if err := fe.err(); err != nil {
		return err
	}
	p, err := s.st.CreateIdentityProvider(c.Request().Context(), store.IdentityProvider{OrgID: principal(c).OrgID,
		Name: req.Name, Issuer: req.Issuer, JWKSURL: req.JWKSURL, Audience: req.Audience})
	if err != nil {
		return storeError(err, "identity provider")
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/identity-providers/"+p.ID)
	return c.JSON(http.StatusCreated, providerOut(p))
}

func (s *Server) listIdentityProviders(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	pg, err := pageParams(c)
	if err != nil {
		return err
	}
	ps, next, err := s.st.IdentityProviders(c.Request().Context(), principal(c).OrgID, pg)
	if err != nil {
		return storeError(err, "identity provider")
	}
	return c.JSON(http.StatusOK, list(ps, next, providerOut))
}

func (s *Server) deleteIdentityProvider(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	if err := s.st.DeleteIdentityProvider(c.Request().Context(), principal(c).OrgID, c.Param("provider_id")); err != nil {
		return storeError(err, "identity provider")
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) createIdentityPool(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	var req client.CreateIdentityPoolRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	validName(&fe, "name", req.Name)
	for field, v := range map[string]string{"provider_id": req.ProviderID, "cluster_id": req.ClusterID, "service_account_id": req.ServiceAccountID} {
		if v == "" || len(v) > 64 {
			fe.add(field, "is required")
		}
	}
	if field, err := federation.CheckPool(req.Filter, req.FilterExpression); err != nil {
		fe.add(field, "%s", err)
	}
	if err := fe.err(); err != nil {
		return err
	}
	p, err := s.st.CreateIdentityPool(c.Request().Context(), store.IdentityPool{OrgID: principal(c).OrgID, Name: req.Name,
		ProviderID: req.ProviderID, ClusterID: req.ClusterID, ServiceAccountID: req.ServiceAccountID, Filter: req.Filter, FilterExpression: req.FilterExpression})
	if err != nil {
		return storeError(err, "identity pool")
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/identity-pools/"+p.ID)
	return c.JSON(http.StatusCreated, poolOut(p))
}

func (s *Server) listIdentityPools(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	pg, err := pageParams(c)
	if err != nil {
		return err
	}
	ps, next, err := s.st.IdentityPools(c.Request().Context(), principal(c).OrgID, pg)
	if err != nil {
		return storeError(err, "identity pool")
	}
	return c.JSON(http.StatusOK, list(ps, next, poolOut))
}

func (s *Server) deleteIdentityPool(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	if err := s.st.DeleteIdentityPool(c.Request().Context(), principal(c).OrgID, c.Param("pool_id")); err != nil {
		return storeError(err, "identity pool")
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) getIdentityProvider(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	p, err := s.st.IdentityProvider(c.Request().Context(), principal(c).OrgID, c.Param("provider_id"))
	if err != nil {
		return storeError(err, "identity provider")
	}
	return c.JSON(http.StatusOK, providerOut(p))
}

func (s *Server) getIdentityPool(c echo.Context) error {
	if err := orgWide(c); err != nil {
		return err
	}
	p, err := s.st.IdentityPool(c.Request().Context(), principal(c).OrgID, c.Param("pool_id"))
	if err != nil {
		return storeError(err, "identity pool")
	}
	return c.JSON(http.StatusOK, poolOut(p))
}
