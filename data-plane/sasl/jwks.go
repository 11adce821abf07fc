package sasl

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eddy-streams/eddy/internal/jwks"
)

// JWKS verifies Eddy's control-plane tokens offline: signatures against the
// issuer's published keys (cached; fetched again when a token names an
// unknown kid, at most once per MinRefresh), iss, aud, exp and nbf. Only
// asymmetric algorithms are accepted, so alg=none and HS256-signed-with-
// the-public-key tokens fail.
type JWKS struct {
	URL        string // e.g. https://api.eddy.example/.well-known/jwks.json
	Issuer     string
	Audience   string
	HTTP       *http.Client
	MinRefresh time.Duration // default 10s
	Leeway     time.Duration // clock skew allowed on exp/nbf (default 30s)

	once sync.Once
	set  *jwks.Set
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Org     string `json:"org"`
	Cluster string `json:"cluster,omitempty"`
	Proxy   bool   `json:"eddy_proxy,omitempty"`
}

// VerifyToken implements TokenVerifier.
func (j *JWKS) VerifyToken(ctx context.Context, token string) (Principal, error) {
	var c tokenClaims
	p := jwt.NewParser(
		jwt.WithValidMethods(jwks.Methods),
		jwt.WithIssuer(j.Issuer), jwt.WithAudience(j.Audience),
		jwt.WithExpirationRequired(), jwt.WithLeeway(j.leeway()))
	j.once.Do(func() { j.set = &jwks.Set{URL: j.URL, HTTP: j.HTTP, MinRefresh: j.MinRefresh} })
	_, err := p.ParseWithClaims(token, &c, j.set.Keyfunc(ctx))
	if err != nil {
		return Principal{}, fmt.Errorf("%w: token rejected: %s", ErrAuthentication, jwks.Reason(err))
	}
	// The leeway is for clocks that disagree about nbf/iat; a token past its
	// exp has no session left to give (KIP-368), so it is refused outright.
	if !c.ExpiresAt.After(time.Now()) {
		return Principal{}, fmt.Errorf("%w: token rejected: expired", ErrAuthentication)
	}
	if c.Subject == "" || c.Org == "" {
		return Principal{}, fmt.Errorf("%w: token rejected: it names no principal or organisation", ErrAuthentication)
	}
	return Principal{Org: c.Org, Cluster: c.Cluster, ServiceAccount: c.Subject, Via: c.ID, Expires: c.ExpiresAt.Time, Proxied: c.Proxy}, nil
}

func (j *JWKS) leeway() time.Duration {
	if j.Leeway > 0 {
		return j.Leeway
	}
	return 30 * time.Second
}
