// Package jwks fetches and caches a JSON Web Key Set, the public keys an
// OIDC issuer signs its tokens with: Eddy's own control plane (the
// brokers' OAUTHBEARER) and the identity providers organisations register
// (internal/federation). Keys are fetched when a token names an unknown
// kid, at most once per MinRefresh, so a flood of tokens with made-up kids
// costs one fetch per interval; a set is read up to 1 MiB. Only EC (P-256,
// P-384) and RSA keys are kept.
package jwks

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

// Methods are the signing algorithms accepted: asymmetric only, so
// alg=none and HS256-signed-with-the-public-key tokens fail.
var Methods = []string{"ES256", "ES384", "RS256", "PS256"}

// Set is one issuer's key set. Its methods are safe for concurrent use.
type Set struct {
	URL        string
	HTTP       *http.Client  // default: a client with a 5 s timeout
	MinRefresh time.Duration // default 10s

	mu      sync.Mutex
	keys    map[string]any
	fetched time.Time
}

// Keyfunc is jwt's key function over the set: the token must name a kid.
func (s *Set) Keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		return s.Key(ctx, kid)
	}
}

// Key returns the public key for kid, fetching the JWKS when it is not
// cached and the last fetch is old enough.
func (s *Set) Key(ctx context.Context, kid string) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	minRefresh := s.MinRefresh
	if minRefresh <= 0 {
		minRefresh = 10 * time.Second
	}
	if time.Since(s.fetched) < minRefresh {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	keys, err := s.fetch(ctx)
	s.fetched = time.Now()
	if err != nil {
		return nil, err
	}
	s.keys = keys
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("unknown kid %q", kid)
}

type jwk struct {
	Kty, Kid, Crv, X, Y, N, E string
}

func (s *Set) fetch(ctx context.Context) (map[string]any, error) {
	hc := s.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: fetch: %s", resp.Status)
	}
	var set struct{ Keys []jwk }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
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

// Reason turns jwt's errors into a short, secret-free explanation.
func Reason(err error) string {
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
