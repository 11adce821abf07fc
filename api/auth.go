package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/store"
)

// Principal is who a request acts as.
type Principal struct {
	// Operator: the bootstrap admin token, which manages organisations
	// and nothing inside them.
	Operator bool
	// OrgID and Subject (a service account id) otherwise.
	OrgID   string
	Subject string
	// ClusterID limits the principal to one cluster ("" for the org).
	ClusterID string
	// OrgAdmin may manage everything in the organisation.
	OrgAdmin bool
}

type principalKey struct{}

// PrincipalFrom returns the request's authenticated principal, the one
// validating way handlers learn the tenant.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

func principal(c echo.Context) Principal {
	p, _ := PrincipalFrom(c.Request().Context())
	return p
}

func unauthorized(detail string) *problem {
	p := newProblem(http.StatusUnauthorized, client.ProblemUnauthorized, detail)
	p.header = http.Header{"Www-Authenticate": {`Basic realm="eddy"`, `Bearer realm="eddy"`}}
	return p
}

// authenticate is middleware: it resolves the Authorization header (API
// key as HTTP basic, or a bearer JWT, or the operator token) to a
// Principal in the request context, or answers 401.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := s.resolve(c.Request())
		if err != nil {
			return err
		}
		r := c.Request()
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		return next(c)
	}
}

func (s *Server) resolve(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "basic":
		id, secret, ok := r.BasicAuth()
		if !ok {
			return Principal{}, unauthorized("malformed basic credentials")
		}
		k, ok, err := s.checkKey(r.Context(), id, secret)
		if err != nil {
			return Principal{}, err
		}
		if !ok {
			return Principal{}, unauthorized("unknown API key or wrong secret")
		}
		return Principal{OrgID: k.OrgID, Subject: k.ServiceAccountID, ClusterID: k.ClusterID, OrgAdmin: k.OrgAdmin}, nil
	case "bearer":
		cred = strings.TrimSpace(cred)
		if pool := r.Header.Get(client.IdentityPoolHeader); pool != "" {
			return s.resolvePool(r.Context(), pool, cred)
		}
		if s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(cred), []byte(s.cfg.AdminToken)) == 1 {
			return Principal{Operator: true}, nil
		}
		claims, err := s.issuer.Verify(r.Context(), cred)
		if err != nil {
			if errors.Is(err, identity.ErrInvalidToken) {
				return Principal{}, unauthorized("invalid or expired token")
			}
			return Principal{}, err
		}
		// The service account may have been deleted or demoted since the
		// token was issued: its current row decides.
		sa, err := s.st.ServiceAccount(r.Context(), claims.Org, claims.Subject)
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, unauthorized("the token's service account no longer exists")
		}
		if err != nil {
			return Principal{}, err
		}
		return Principal{OrgID: claims.Org, Subject: claims.Subject, ClusterID: claims.Cluster, OrgAdmin: sa.OrgAdmin}, nil
	case "":
		return Principal{}, unauthorized("credentials are required: an API key (HTTP basic) or a bearer token")
	}
	return Principal{}, unauthorized("unsupported authorization scheme")
}

// checkKey looks an API key up and checks its secret. Basic credentials
// of the token endpoint may be form-encoded (RFC 6749 section 2.3.1).
func (s *Server) checkKey(ctx context.Context, id, secret string) (store.APIKey, bool, error) {
	if u, err := url.QueryUnescape(id); err == nil {
		id = u
	}
	if u, err := url.QueryUnescape(secret); err == nil {
		secret = u
	}
	if id == "" || secret == "" || len(id) > 64 {
		return store.APIKey{}, false, nil
	}
	k, err := s.st.KeyForAuth(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		identity.CheckSecret(make([]byte, 32), secret) // same work as a hit
		return k, false, nil
	}
	if err != nil {
		return k, false, err
	}
	return k, identity.CheckSecret(k.SecretHash, secret), nil
}

// tenantOnly is middleware for routes inside an organisation: the
// operator token and service accounts that are not org admins are refused.
// It builds on tenantMember so the operator check lives in one place.
func tenantOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return tenantMember(func(c echo.Context) error {
		if !principal(c).OrgAdmin {
			return errForbidden("only org admin service accounts may use the REST API")
		}
		return next(c)
	})
}

// orgWide refuses principals limited to one cluster on routes that span
// the organisation.
func orgWide(c echo.Context) error {
	if principal(c).ClusterID != "" {
		return errForbidden("this credential is limited to cluster " + principal(c).ClusterID)
	}
	return nil
}

// operatorOnly is middleware for the operator's routes: creating and
// listing organisations, plans, the broker pool and the autoscaler.
func operatorOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !principal(c).Operator {
			return errForbidden("only the operator may create or list organisations, manage plans, or see the broker pool and the autoscaler")
		}
		return next(c)
	}
}
