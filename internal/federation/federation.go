// Package federation verifies tokens of the identity providers
// organisations register (internal/store's identity providers and pools):
// a workload of a company's own OIDC issuer (Okta, Entra ID, Keycloak, a
// Kubernetes or GitHub Actions issuer) acts as one of the organisation's
// service accounts in one cluster, without an Eddy secret.
//
// The client names the identity pool (the OAUTHBEARER extension
// identityPoolId, or REST's Eddy-Identity-Pool header); the token must be
// signed by a key of the pool's provider (its JWKS, fetched through the
// egress policy, since its URL is the tenant's choice; asymmetric
// algorithms only), carry the provider's issuer and audience and an exp
// not passed, and pass the pool's claim filter and filter expression
// (expr.go), each when the pool has one. Anything else is
// ErrRejected with a short reason that holds no secret.
package federation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eddy-streams/eddy/internal/egress"
	"github.com/eddy-streams/eddy/internal/jwks"
	"github.com/eddy-streams/eddy/internal/store"
)

// ErrRejected is returned (wrapped) for a token or pool that does not
// authenticate.
var ErrRejected = errors.New("federated token rejected")

// Identity is who a verified token acts as.
type Identity struct {
	Org, Cluster, ServiceAccount string
	Subject                      string // the token's sub, for logs and audits
	Pool                         string
	Expires                      time.Time
}

// Verifier verifies federated tokens. Its methods are safe for concurrent
// use.
type Verifier struct {
	st     *store.Store
	hc     *http.Client
	leeway time.Duration

	mu   sync.Mutex
	sets map[string]*keySet // by provider id
}

type keySet struct {
	url  string
	set  *jwks.Set
	used time.Time
}

// maxSets bounds the key sets cached (one per provider in use).
const maxSets = 1000

// New returns a verifier reading pools from st and fetching key sets
// through policy.
func New(st *store.Store, policy egress.Policy) *Verifier {
	return &Verifier{st: st, hc: policy.Client(5 * time.Second), leeway: 30 * time.Second, sets: map[string]*keySet{}}
}

// Verify checks token for the identity pool poolID.
func (v *Verifier) Verify(ctx context.Context, poolID, token string) (Identity, error) {
	if poolID == "" || len(poolID) > 64 {
		return Identity{}, fmt.Errorf("%w: no identity pool named", ErrRejected)
	}
	pool, prov, err := v.st.IdentityPoolWithProvider(ctx, poolID)
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, fmt.Errorf("%w: unknown identity pool", ErrRejected)
	}
	if err != nil {
		return Identity{}, err
	}
	claims := jwt.MapClaims{}
	p := jwt.NewParser(jwt.WithValidMethods(jwks.Methods), jwt.WithIssuer(prov.Issuer), jwt.WithAudience(prov.Audience),
		jwt.WithExpirationRequired(), jwt.WithLeeway(v.leeway))
	if _, err := p.ParseWithClaims(token, claims, v.keys(prov).Keyfunc(ctx)); err != nil {
		return Identity{}, fmt.Errorf("%w: %s", ErrRejected, jwks.Reason(err))
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil || !exp.After(time.Now()) {
		return Identity{}, fmt.Errorf("%w: expired", ErrRejected)
	}
	if !Admits(pool.Filter, pool.FilterExpression, claims) {
		return Identity{}, fmt.Errorf("%w: the token's claims do not pass the identity pool's filter", ErrRejected)
	}
	sub, _ := claims.GetSubject()
	return Identity{Org: pool.OrgID, Cluster: pool.ClusterID, ServiceAccount: pool.ServiceAccountID,
		Subject: sub, Pool: pool.ID, Expires: exp.Time}, nil
}

// keys returns the provider's cached key set (a new one when its URL
// changed), evicting the least recently used beyond maxSets.
func (v *Verifier) keys(prov store.IdentityProvider) *jwks.Set {
	v.mu.Lock()
	defer v.mu.Unlock()
	ks := v.sets[prov.ID]
	if ks == nil || ks.url != prov.JWKSURL {
		if len(v.sets) >= maxSets {
			var oldest string
			for id, s := range v.sets {
				if oldest == "" || s.used.Before(v.sets[oldest].used) {
					oldest = id
				}
			}
			delete(v.sets, oldest)
		}
		ks = &keySet{url: prov.JWKSURL, set: &jwks.Set{URL: prov.JWKSURL, HTTP: v.hc}}
		v.sets[prov.ID] = ks
	}
	ks.used = time.Now()
	return ks.set
}

// Matches reports whether claims pass filter: every claim it names must
// be a string among its values, or a list holding one of them. An empty
// filter matches nothing (a pool must say whom it admits).
func Matches(filter map[string][]string, claims map[string]any) bool {
	if len(filter) == 0 {
		return false
	}
	for name, want := range filter {
		switch c := claims[name].(type) {
		case string:
			if !slices.Contains(want, c) {
				return false
			}
		case []any:
			found := false
			for _, e := range c {
				if s, ok := e.(string); ok && slices.Contains(want, s) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// Admits reports whether claims pass a pool's claim filter and filter
// expression, each when set; a pool with neither admits nothing. An
// expression that no longer parses (it was checked when stored) admits
// nothing.
func Admits(filter map[string][]string, expr string, claims map[string]any) bool {
	if len(filter) == 0 && expr == "" {
		return false
	}
	if len(filter) > 0 && !Matches(filter, claims) {
		return false
	}
	if expr != "" {
		e, err := ParseExpr(expr)
		if err != nil || !e.Eval(claims) {
			return false
		}
	}
	return true
}

// CheckPool validates a pool's claim filter and filter expression: at
// least one of them, each valid. It returns the request field at fault.
func CheckPool(filter map[string][]string, expr string) (field string, err error) {
	if filter == nil && expr == "" {
		return "filter", errors.New("give a claim filter or a filter_expression (or both): a pool must say whom it admits")
	}
	if filter != nil {
		if err := CheckFilter(filter); err != nil {
			return "filter", err
		}
	}
	if expr != "" {
		if _, err := ParseExpr(expr); err != nil {
			return "filter_expression", err
		}
	}
	return "", nil
}

// MaxFilterClaims and MaxFilterValues bound a pool's filter.
const (
	MaxFilterClaims = 16
	MaxFilterValues = 64
)

// CheckFilter validates a pool's filter.
func CheckFilter(filter map[string][]string) error {
	if len(filter) == 0 {
		return errors.New("must name at least one claim (e.g. sub)")
	}
	if len(filter) > MaxFilterClaims {
		return fmt.Errorf("at most %d claims", MaxFilterClaims)
	}
	for name, vals := range filter {
		if name == "" || len(name) > 128 {
			return errors.New("claim names must be 1 to 128 characters")
		}
		if len(vals) == 0 || len(vals) > MaxFilterValues {
			return fmt.Errorf("claim %q must list 1 to %d values", name, MaxFilterValues)
		}
		for _, s := range vals {
			if len(s) > 1024 {
				return fmt.Errorf("claim %q: values must be at most 1024 characters", name)
			}
		}
	}
	return nil
}
