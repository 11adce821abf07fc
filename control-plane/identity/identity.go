// Package identity issues and verifies the control plane's credentials:
// API key secrets (random 256-bit secrets, stored as SHA-256 hashes) and
// JWTs signed with ES256 keys kept in Postgres.
//
// Key rotation without downtime: Rotate adds a new key that signs from
// then on; the keys it replaces stop signing at once but stay in the JWKS
// (and keep verifying) until every token they signed has expired, plus
// Config.RotationGrace. Verifiers that cache the JWKS therefore always
// know the key of any unexpired token, as long as they refresh it on an
// unknown kid.
//
// Private keys are sealed (internal/seal) with the control plane's
// key-encryption key, bound to their kid, before they are stored; keys
// stored in plain before sealing existed are sealed by SealStored. A key
// is deleted (DeleteExpired) once it has been out of the JWKS for
// Config.RotationGrace.
//
// An Issuer is safe for concurrent use. Several control planes may share
// one database: they agree on the signing key through it.
package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eddy-streams/eddy/internal/scram"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/store"
)

// ErrInvalidToken wraps every reason a token is refused.
var ErrInvalidToken = errors.New("identity: invalid token")

// Alg is the only signing algorithm issued and accepted.
const Alg = "ES256"

// NewSecret returns a fresh API key secret and its hash for storage.
func NewSecret() (secret string, hash []byte) {
	var b [32]byte
	rand.Read(b[:])
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashSecret(secret)
}

// SCRAMCredentials derives the SCRAM-SHA-256/512 credentials of a secret
// in their stored (JSON) form, so keys can log in with SCRAM as well.
func SCRAMCredentials(secret string) []byte {
	cs, err := scram.NewCredentials(secret)
	if err != nil {
		panic("identity: derive SCRAM credentials: " + err.Error()) // only for invalid PBKDF2 parameters, which are constants
	}
	return cs.Marshal()
}

// HashSecret is the stored form of a secret. SHA-256 suffices because
// secrets are 256 random bits: there is nothing to guess with a dictionary.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CheckSecret reports whether secret hashes to hash, in constant time.
func CheckSecret(hash []byte, secret string) bool {
	return subtle.ConstantTimeCompare(hash, HashSecret(secret)) == 1
}

// Defaults of Config's zero fields; the REST API's flags start from them.
const (
	DefaultAudience = "eddy"
	DefaultTokenTTL = 15 * time.Minute
)

// Config configures the issuer. Zero fields take the defaults above.
type Config struct {
	// Issuer is the iss claim and the base URL of the OIDC discovery
	// document, e.g. https://api.eddy.example.
	Issuer string
	// Audience is the aud claim of every token and the only one accepted.
	Audience string
	// TokenTTL is how long an issued token is valid (default
	// DefaultTokenTTL).
	TokenTTL time.Duration
	// RotationGrace is how long a replaced key stays published beyond
	// TokenTTL, for clock skew and JWKS caches (0: 5m; negative: none),
	// and how long after that it is kept before DeleteExpired deletes it.
	RotationGrace time.Duration
	// Secrets seals the private keys in the database (required: nil
	// fails; seal.Plaintext stores them in plain, for development).
	Secrets *seal.Sealer
}

func (c *Config) defaults() {
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	switch {
	case c.RotationGrace == 0:
		c.RotationGrace = 5 * time.Minute
	case c.RotationGrace < 0:
		c.RotationGrace = 0
	}
}

// Claims are what a token says about its bearer.
type Claims struct {
	jwt.RegisteredClaims
	// Org is the organisation of the principal (sub, a service account id).
	Org string `json:"org"`
	// Cluster is the virtual cluster the token is scoped to; "" means the
	// whole organisation.
	Cluster string `json:"cluster,omitempty"`
	// Proxy marks a token the REST API mints to act for a caller on the
	// Kafka path (the records API), never one handed to a client.
	Proxy bool `json:"eddy_proxy,omitempty"`
}

// keyStore is the part of store.Store the issuer uses.
type keyStore interface {
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	AddSigningKey(ctx context.Context, k store.SigningKey, keep, replaceOlderThan time.Duration) error
	SealSecrets(ctx context.Context, c store.SecretColumn, sealedPrefix string, seal func(id string, plain []byte) ([]byte, error)) (int, error)
	DeleteSigningKeys(ctx context.Context, after time.Duration) (int64, error)
}

// aad binds a sealed private key to its kid.
func aad(kid string) []byte { return []byte("signing_key/" + kid) }

type key struct {
	kid     string
	priv    *ecdsa.PrivateKey
	signing bool
}

// Issuer signs and verifies tokens.
type Issuer struct {
	cfg Config
	st  keyStore

	mu       sync.Mutex
	keys     []key // newest first
	loadedAt time.Time
	forcedAt time.Time // last reload forced by an unknown kid
}

// minForced bounds reloads forced by unknown kids, so a stream of forged
// tokens cannot turn into a stream of database queries.
const minForced = time.Second

// cacheFor bounds how stale the key cache may be; an unknown kid forces a
// reload regardless.
const cacheFor = 10 * time.Second

// New returns an issuer; call Ensure before issuing.
func New(cfg Config, st keyStore) *Issuer {
	cfg.defaults()
	return &Issuer{cfg: cfg, st: st}
}

// Config returns the effective configuration.
func (i *Issuer) Config() Config { return i.cfg }

// Ensure creates a signing key if the database has none.
func (i *Issuer) Ensure(ctx context.Context) error {
	return i.add(ctx, math.MaxInt64)
}

// Rotate makes a new key the signing key; see the package doc.
func (i *Issuer) Rotate(ctx context.Context) error {
	return i.add(ctx, 0)
}

// RotateIfOlder rotates unless the signing key is younger than age. Control
// planes sharing a database may all call it: one of them rotates.
func (i *Issuer) RotateIfOlder(ctx context.Context, age time.Duration) error {
	return i.add(ctx, age)
}

func (i *Issuer) add(ctx context.Context, replaceOlderThan time.Duration) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	kid := store.NewID("kid")
	sealed, err := i.cfg.Secrets.Seal(der, aad(kid))
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	k := store.SigningKey{KID: kid, Alg: Alg, PrivateKey: sealed}
	if err := i.st.AddSigningKey(ctx, k, i.cfg.TokenTTL+i.cfg.RotationGrace, replaceOlderThan); err != nil {
		return err
	}
	return i.reload(ctx)
}

func (i *Issuer) reload(ctx context.Context) error {
	sks, err := i.st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	keys := make([]key, 0, len(sks))
	signing := false
	for _, sk := range sks {
		if sk.Alg != Alg {
			continue
		}
		der, err := i.cfg.Secrets.Open(sk.PrivateKey, aad(sk.KID))
		if err != nil {
			return fmt.Errorf("identity: key %s: %w", sk.KID, err)
		}
		p, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("identity: key %s: %w", sk.KID, err)
		}
		ec, ok := p.(*ecdsa.PrivateKey)
		if !ok {
			return fmt.Errorf("identity: key %s is not ECDSA", sk.KID)
		}
		k := key{kid: sk.KID, priv: ec}
		if sk.RetiredAt == nil && !signing {
			k.signing, signing = true, true
		}
		keys = append(keys, k)
	}
	i.mu.Lock()
	i.keys, i.loadedAt = keys, time.Now()
	i.mu.Unlock()
	return nil
}

// SealStored seals the private keys stored in plain (before sealing
// existed), one UPDATE each; control planes starting together may all
// call it. It does nothing without a key-encryption key.
func (i *Issuer) SealStored(ctx context.Context) (int, error) {
	if !i.cfg.Secrets.Keyed() {
		return 0, nil
	}
	n, err := i.st.SealSecrets(ctx, store.SigningKeySecrets, seal.Prefix, func(kid string, der []byte) ([]byte, error) {
		return i.cfg.Secrets.Seal(der, aad(kid))
	})
	if err != nil {
		return n, fmt.Errorf("identity: sealing stored keys: %w", err)
	}
	return n, nil
}

// DeleteExpired deletes the keys that left the JWKS more than
// RotationGrace ago: no token they signed is valid any more, and no
// verifier should still trust them.
func (i *Issuer) DeleteExpired(ctx context.Context) (int64, error) {
	n, err := i.st.DeleteSigningKeys(ctx, i.cfg.RotationGrace)
	if err != nil {
		return n, fmt.Errorf("identity: %w", err)
	}
	return n, nil
}

// current returns the cached keys, reloading them if stale or force.
func (i *Issuer) current(ctx context.Context, force bool) ([]key, error) {
	i.mu.Lock()
	keys, fresh := i.keys, time.Since(i.loadedAt) < cacheFor
	if force && time.Since(i.forcedAt) < minForced {
		force = false
	}
	if force {
		i.forcedAt = time.Now()
	}
	i.mu.Unlock()
	if fresh && !force {
		return keys, nil
	}
	if err := i.reload(ctx); err != nil {
		return nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys, nil
}

// Issue signs a token for c. Unset iss, aud, iat, exp and jti are filled
// in; exp defaults to now + TokenTTL.
func (i *Issuer) Issue(ctx context.Context, c Claims) (string, time.Time, error) {
	keys, err := i.current(ctx, false)
	if err != nil {
		return "", time.Time{}, err
	}
	var signer *key
	for j := range keys {
		if keys[j].signing {
			signer = &keys[j]
			break
		}
	}
	if signer == nil {
		return "", time.Time{}, errors.New("identity: no signing key (Ensure was not called)")
	}
	now := time.Now()
	if c.Issuer == "" {
		c.Issuer = i.cfg.Issuer
	}
	if len(c.Audience) == 0 {
		c.Audience = jwt.ClaimStrings{i.cfg.Audience}
	}
	if c.IssuedAt == nil {
		c.IssuedAt = jwt.NewNumericDate(now)
	}
	if c.ExpiresAt == nil {
		c.ExpiresAt = jwt.NewNumericDate(now.Add(i.cfg.TokenTTL))
	}
	if c.ID == "" {
		c.ID = store.NewID("jti")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = signer.kid
	s, err := t.SignedString(signer.priv)
	return s, c.ExpiresAt.Time, err
}

// Verify checks a token's signature (ES256 only, by kid), issuer,
// audience and expiry, and returns its claims.
func (i *Issuer) Verify(ctx context.Context, token string) (*Claims, error) {
	var c Claims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{Alg}),
		jwt.WithAudience(i.cfg.Audience),
		jwt.WithIssuer(i.cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		for _, force := range []bool{false, true} {
			keys, err := i.current(ctx, force)
			if err != nil {
				return nil, err
			}
			for _, k := range keys {
				if k.kid == kid {
					return &k.priv.PublicKey, nil
				}
			}
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Subject == "" || c.Org == "" {
		return nil, fmt.Errorf("%w: no subject or organisation", ErrInvalidToken)
	}
	return &c, nil
}

// JWK is one public key in a JWKS (RFC 7517/7518).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS returns the published public keys, newest first.
func (i *Issuer) JWKS(ctx context.Context) ([]JWK, error) {
	keys, err := i.current(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]JWK, 0, len(keys))
	for _, k := range keys {
		b, err := k.priv.PublicKey.Bytes() // 0x04 || X || Y
		if err != nil || len(b) != 65 {
			return nil, fmt.Errorf("identity: key %s: bad public key", k.kid)
		}
		x, y := b[1:33], b[33:]
		out = append(out, JWK{Kty: "EC", Crv: "P-256", X: base64.RawURLEncoding.EncodeToString(x),
			Y: base64.RawURLEncoding.EncodeToString(y), Kid: k.kid, Use: "sig", Alg: Alg})
	}
	return out, nil
}
