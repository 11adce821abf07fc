// Package sasl authenticates Kafka connections: it parses the SASL
// mechanisms Eddy accepts and turns credentials into a Principal naming the
// organisation, virtual cluster and service account a connection acts as.
//
//   - PLAIN (RFC 4616): username = API key id, password = its secret. The
//     authorization identity, or a username of the form "<key>@<cluster>",
//     names the cluster for keys scoped to a whole organisation.
//   - SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, KIP-84): the same API keys
//     (username = key id, or "<key>@<cluster>"; the authzid may name the
//     cluster), checked against the credentials the control plane derived
//     from the secret when it made the key (internal/scram). Two round trips.
//   - OAUTHBEARER (RFC 7628, KIP-255/KIP-342): a JWT issued by Eddy's control
//     plane, verified offline against its JWKS, whose subject (a service
//     account) must still exist (Authenticator.Accounts). The logicalCluster
//     extension may name the cluster and must agree with the token's cluster
//     claim.
//
// Errors are ErrAuthentication (wrong or unknown credentials; its message is
// safe to show the client and never echoes a secret), ErrMechanism and
// ErrMalformed. Everything here is safe for concurrent use.
package sasl

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"

	"errors"
	"fmt"
	"github.com/eddy-streams/eddy/internal/scram"
	"slices"
	"strings"
	"time"
)

var (
	// ErrAuthentication: the credentials are wrong, unknown, expired or
	// revoked (SASL_AUTHENTICATION_FAILED).
	ErrAuthentication = errors.New("sasl: authentication failed")
	// ErrMechanism: the mechanism is not offered (UNSUPPORTED_SASL_MECHANISM).
	ErrMechanism = errors.New("sasl: unsupported mechanism")
	// ErrMalformed: the client's message does not follow the mechanism's
	// grammar (also SASL_AUTHENTICATION_FAILED).
	ErrMalformed = errors.New("sasl: malformed message")
)

// Principal is who a connection acts as.
type Principal struct {
	Org            string
	Cluster        string
	ServiceAccount string
	// Via is the API key id or the token id (jti), for logs and audits.
	Via       string
	Mechanism string
	// Expires is when the credential stops being valid (zero: never, as for
	// API keys); brokers close connections that do not re-authenticate by
	// then (KIP-368).
	Expires time.Time
	// Proxied: the control plane's records API acting for the principal
	// (its own short-lived token, claim eddy_proxy, which only the
	// control plane signs); the API checked the caller's address against
	// the cluster's allow-list, so the broker does not check its own.
	Proxied bool
}

// Mechanism names.
const (
	Plain       = "PLAIN"
	OAuthBearer = "OAUTHBEARER"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Authenticator verifies credentials. Keys and Tokens may be nil, which
// disables their mechanisms; SCRAM needs Keys to be a SCRAMVerifier.
type Authenticator struct {
	Keys   KeyVerifier
	Tokens TokenVerifier
	// Pools, when set, verifies OAUTHBEARER tokens of the identity
	// providers organisations register, for a client that names an
	// identity pool (extension identityPoolId).
	Pools PoolVerifier
	// Accounts, when set, must confirm that a token's subject (its service
	// account) still exists: a token outlives the deletion of its account
	// otherwise, until it expires.
	Accounts AccountChecker
	// Offer lists the mechanisms offered, in order; nil offers every
	// mechanism Keys and Tokens allow. A mechanism they do not allow is
	// not offered even when listed.
	Offer []string
	// FakeSalt keys the salts SCRAM shows for unknown keys (see
	// internal/scram); random per process when nil.
	FakeSalt []byte

	fakeOnce sync.Once
}

// PoolVerifier verifies a token of an organisation's own identity
// provider for the identity pool the client named (internal/federation):
// the principal is the pool's service account in the pool's cluster.
// Errors wrap ErrAuthentication unless the check itself failed.
type PoolVerifier interface {
	VerifyPoolToken(ctx context.Context, pool, token string) (Principal, error)
}

// SCRAMVerifier finds an API key's SCRAM credential for a mechanism; known
// is false for unknown keys and keys without one.
type SCRAMVerifier interface {
	SCRAMCredential(ctx context.Context, id, mechanism string) (cred scram.Credential, p Principal, known bool, err error)
}

// KeyVerifier checks an API key's secret. It returns ErrAuthentication
// for unknown keys and wrong secrets alike.
type KeyVerifier interface {
	VerifyKey(ctx context.Context, id, secret string) (Principal, error)
}

// TokenVerifier checks a bearer token.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (Principal, error)
}

// Mechanisms lists the enabled mechanisms, as SaslHandshake reports them.
func (a *Authenticator) Mechanisms() []string {
	var can []string
	if a.Keys != nil {
		can = append(can, Plain)
		if _, ok := a.Keys.(SCRAMVerifier); ok {
			can = append(can, ScramSHA256, ScramSHA512)
		}
	}
	if a.Tokens != nil {
		can = append(can, OAuthBearer)
	}
	if a.Offer == nil {
		return can
	}
	var out []string
	for _, m := range a.Offer {
		if slices.Contains(can, m) {
			out = append(out, m)
		}
	}
	return out
}

// Supports reports whether mechanism is enabled.
func (a *Authenticator) Supports(mechanism string) bool {
	for _, m := range a.Mechanisms() {
		if m == mechanism {
			return true
		}
	}
	return false
}

// Exchange is one authentication in progress: the client's messages go to
// Next until it reports done. Not safe for concurrent use.
type Exchange struct {
	a         *Authenticator
	mechanism string

	// SCRAM state between the two round trips.
	conv    *scram.Conversation
	p       Principal
	cluster string
}

// Begin starts authenticating with mechanism.
func (a *Authenticator) Begin(mechanism string) (*Exchange, error) {
	if !a.Supports(mechanism) {
		return nil, fmt.Errorf("%w: %q (offered: %s)", ErrMechanism, mechanism, strings.Join(a.Mechanisms(), ", "))
	}
	return &Exchange{a: a, mechanism: mechanism}, nil
}

// Authenticate verifies a single-message mechanism (PLAIN, OAUTHBEARER).
func (a *Authenticator) Authenticate(ctx context.Context, mechanism string, msg []byte) (Principal, error) {
	x, err := a.Begin(mechanism)
	if err != nil {
		return Principal{}, err
	}
	_, p, done, err := x.Next(ctx, msg)
	if err == nil && !done {
		err = fmt.Errorf("%w: %s takes more than one message", ErrMechanism, mechanism)
	}
	return p, err
}

// Next takes the client's next message and returns the server's reply;
// done reports that authentication finished, successfully when err is nil.
// After an error the exchange is over.
func (x *Exchange) Next(ctx context.Context, msg []byte) (reply []byte, p Principal, done bool, err error) {
	switch x.mechanism {
	case Plain:
		authz, user, pass, err := ParsePlain(msg)
		if err != nil {
			return nil, Principal{}, true, err
		}
		cluster := authz
		user, cluster = splitCluster(user, cluster)
		p, err := x.a.Keys.VerifyKey(ctx, user, pass)
		if err != nil {
			return nil, Principal{}, true, err
		}
		p.Mechanism = Plain
		p, err = choose(p, cluster)
		return nil, p, true, err
	case OAuthBearer:
		token, ext, err := ParseOAuthBearer(msg)
		if err != nil {
			return nil, Principal{}, true, err
		}
		var p Principal
		if pool, ok := ext["identityPoolId"]; ok {
			if x.a.Pools == nil {
				return nil, Principal{}, true, fmt.Errorf("%w: identity federation is not enabled on this broker", ErrAuthentication)
			}
			p, err = x.a.Pools.VerifyPoolToken(ctx, pool, token)
		} else {
			p, err = x.a.Tokens.VerifyToken(ctx, token)
		}
		if err != nil {
			return nil, Principal{}, true, err
		}
		if err := x.a.checkAccount(ctx, p.ServiceAccount); err != nil {
			return nil, Principal{}, true, err
		}
		p.Mechanism = OAuthBearer
		p, err = choose(p, ext["logicalCluster"])
		return nil, p, true, err
	default:
		return x.scram(ctx, msg)
	}
}

func (x *Exchange) scram(ctx context.Context, msg []byte) ([]byte, Principal, bool, error) {
	if x.conv == nil {
		m, _ := scram.Lookup(x.mechanism)
		x.conv = m.NewConversation(x.a.fakeSalt())
		user, authz, err := x.conv.ParseFirst(msg)
		if err != nil {
			return nil, Principal{}, true, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		var id string
		id, x.cluster = splitCluster(user, authz)
		cred, p, known, err := x.a.Keys.(SCRAMVerifier).SCRAMCredential(ctx, id, x.mechanism)
		if err != nil {
			return nil, Principal{}, true, err
		}
		x.p = p
		return x.conv.Challenge(cred, known), Principal{}, false, nil
	}
	final, err := x.conv.Final(msg)
	switch {
	case errors.Is(err, scram.ErrProof):
		return nil, Principal{}, true, fmt.Errorf("%w: unknown API key or wrong secret (SCRAM needs a key created since SCRAM support; PLAIN works for older keys)", ErrAuthentication)
	case err != nil:
		return nil, Principal{}, true, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	x.p.Mechanism = x.mechanism
	p, err := choose(x.p, x.cluster)
	return final, p, true, err
}

// checkAccount refuses a token whose service account was deleted.
func (a *Authenticator) checkAccount(ctx context.Context, id string) error {
	if a.Accounts == nil {
		return nil
	}
	ok, err := a.Accounts.AccountExists(ctx, id)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%w: the token's service account no longer exists", ErrAuthentication)
	}
	return nil
}

// splitCluster takes a cluster named in a username "<key>@<cluster>"; the
// authorization identity names it otherwise.
func splitCluster(user, authz string) (id, cluster string) {
	if at := strings.LastIndexByte(user, '@'); at > 0 {
		return user[:at], user[at+1:]
	}
	return user, authz
}

func (a *Authenticator) fakeSalt() []byte {
	a.fakeOnce.Do(func() {
		if a.FakeSalt == nil {
			a.FakeSalt = make([]byte, 32)
			rand.Read(a.FakeSalt)
		}
	})
	return a.FakeSalt
}

// choose settles the cluster: a credential scoped to a cluster fixes it
// (and a named cluster must agree); an organisation-wide one needs the
// client to name a cluster, whose membership the caller checks.
func choose(p Principal, named string) (Principal, error) {
	switch {
	case p.Cluster != "" && named != "" && named != p.Cluster:
		return Principal{}, fmt.Errorf("%w: the credential is scoped to another cluster than %q", ErrAuthentication, named)
	case p.Cluster == "" && named == "":
		return Principal{}, fmt.Errorf("%w: the credential is valid for the whole organisation; name the cluster (PLAIN: username <key>@<cluster>; OAUTHBEARER: extension logicalCluster=<cluster>)", ErrAuthentication)
	case p.Cluster == "":
		p.Cluster = named
	}
	return p, nil
}

// ParsePlain splits a PLAIN message: authzid NUL authcid NUL passwd.
func ParsePlain(msg []byte) (authz, user, pass string, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", fmt.Errorf("%w: PLAIN wants authzid NUL username NUL password", ErrMalformed)
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}

// ParseOAuthBearer parses an OAUTHBEARER initial client response:
//
//	gs2-header ^A "auth=Bearer " token ^A *(key "=" value ^A) ^A
//
// where gs2-header is "n," [ "a=" authzid ] ",". It returns the token and
// the extensions (KIP-342).
func ParseOAuthBearer(msg []byte) (string, map[string]string, error) {
	s := string(msg)
	gs2, rest, ok := strings.Cut(s, "\x01")
	if !ok || !strings.HasPrefix(gs2, "n,") && !strings.HasPrefix(gs2, "y,") || !strings.HasSuffix(gs2, ",") {
		return "", nil, fmt.Errorf("%w: OAUTHBEARER message must start with a GS2 header such as \"n,,\"", ErrMalformed)
	}
	if !strings.HasSuffix(rest, "\x01\x01") && rest != "\x01" {
		return "", nil, fmt.Errorf("%w: OAUTHBEARER message must end with two ^A separators", ErrMalformed)
	}
	ext := map[string]string{}
	token := ""
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "\x01\x01"), "\x01") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return "", nil, fmt.Errorf("%w: OAUTHBEARER key/value pair without '='", ErrMalformed)
		}
		if k == "auth" {
			scheme, tok, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
				return "", nil, fmt.Errorf("%w: OAUTHBEARER auth must be \"Bearer <token>\"", ErrMalformed)
			}
			token = tok
			continue
		}
		ext[k] = v
	}
	if token == "" {
		return "", nil, fmt.Errorf("%w: OAUTHBEARER message carries no token", ErrMalformed)
	}
	return token, ext, nil
}
