package sasl

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
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

	mu      sync.Mutex
	keys    map[string]any
	fetched time.Time
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
		jwt.WithValidMethods([]string{"ES256", "ES384", "RS256", "PS256"}),
		jwt.WithIssuer(j.Issuer), jwt.WithAudience(j.Audience),
		jwt.WithExpirationRequired(), jwt.WithLeeway(j.leeway()))
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		return j.key(ctx, kid)
	})
	if err != nil {
		return Principal{}, fmt.Errorf("%w: token rejected: %s", ErrAuthentication, reason(err))
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

// reason turns jwt's errors into a short, secret-free explanation.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "foreign issuer"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "bad signature or unknown signing key"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	default:
		return "invalid"
	}
}

func (j *JWKS) leeway() time.Duration {
	if j.Leeway > 0 {
		return j.Leeway
	}
	return 30 * time.Second
}

// key returns the public key for kid, fetching the JWKS when it is not
// cached and the last fetch is old enough.
func (j *JWKS) key(ctx context.Context, kid string) (any, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if k, ok := j.keys[kid]; ok {
		return k, nil
	}
	minRefresh := j.MinRefresh
	if minRefresh <= 0 {
		minRefresh = 10 * time.Second
	}
	if time.Since(j.fetched) < minRefresh {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	keys, err := j.fetch(ctx)
	j.fetched = time.Now()
	if err != nil {
		return nil, err
	}
	j.keys = keys
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("unknown kid %q", kid)
}

type jwk struct {
	Kty, Kid, Crv, X, Y, N, E string
}

func (j *JWKS) fetch(ctx context.Context) (map[string]any, error) {
	hc := j.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sasl: fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sasl: fetch jwks: %s", resp.Status)
	}
	var set struct{ Keys []jwk }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("sasl: jwks: %w", err)
	}
	out := map[string]any{}
	for _, k := range set.Keys {
		if pub, err := k.public(); err == nil && k.Kid != "" {
			out[k.Kid] = pub
		}
	}
	return out, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

func (k jwk) public() (any, error) {
	switch k.Kty {
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return nil, fmt.Errorf("curve %q", k.Crv)
		}
		x, err := b64int(k.X)
		if err != nil {
			return nil, err
		}
		y, err := b64int(k.Y)
		if err != nil {
			return nil, err
		}
		if !curve.IsOnCurve(x, y) {
			return nil, errors.New("point not on curve")
		}
		return &ecdsa.PublicKey{Curve: curve, X: x, Y: y}, nil
	case "RSA":
		n, err := b64int(k.N)
		if err != nil {
			return nil, err
		}
		e, err := b64int(k.E)
		if err != nil || !e.IsInt64() {
			return nil, errors.New("bad exponent")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	}
	return nil, fmt.Errorf("key type %q", k.Kty)
}
