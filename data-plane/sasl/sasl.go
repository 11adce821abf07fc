// Package sasl authenticates Kafka connections: it parses the SASL
// mechanisms Eddy accepts and turns credentials into a Principal naming the
// organisation, virtual cluster and service account a connection acts as.
//
//   - PLAIN (RFC 4616): username = API key id, password = its secret. The
//     authorization identity, or a username of the form "<key>@<cluster>",
//     names the cluster for keys scoped to a whole organisation.
//   - OAUTHBEARER (RFC 7628, KIP-255/KIP-342): a JWT issued by Eddy's control
//     plane, verified offline against its JWKS. The logicalCluster extension
//     may name the cluster and must agree with the token's cluster claim.
//
// Errors are ErrAuthentication (wrong or unknown credentials; its message is
// safe to show the client and never echoes a secret), ErrMechanism and
// ErrMalformed. Everything here is safe for concurrent use.
package sasl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
}

// Mechanism names.
const (
	Plain       = "PLAIN"
	OAuthBearer = "OAUTHBEARER"
)

// Authenticator verifies credentials. Keys and Tokens may be nil, which
// disables the mechanism.
type Authenticator struct {
	Keys   KeyVerifier
	Tokens TokenVerifier
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
	var out []string
	if a.Keys != nil {
		out = append(out, Plain)
	}
	if a.Tokens != nil {
		out = append(out, OAuthBearer)
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

// Authenticate verifies the client's single SASL message for mechanism
// (both mechanisms complete in one round trip when they succeed).
func (a *Authenticator) Authenticate(ctx context.Context, mechanism string, msg []byte) (Principal, error) {
	if !a.Supports(mechanism) {
		return Principal{}, fmt.Errorf("%w: %q (offered: %s)", ErrMechanism, mechanism, strings.Join(a.Mechanisms(), ", "))
	}
	switch mechanism {
	case Plain:
		authz, user, pass, err := ParsePlain(msg)
		if err != nil {
			return Principal{}, err
		}
		cluster := authz
		if at := strings.LastIndexByte(user, '@'); at > 0 {
			user, cluster = user[:at], user[at+1:]
		}
		p, err := a.Keys.VerifyKey(ctx, user, pass)
		if err != nil {
			return Principal{}, err
		}
		p.Mechanism = Plain
		return choose(p, cluster)
	default:
		token, ext, err := ParseOAuthBearer(msg)
		if err != nil {
			return Principal{}, err
		}
		p, err := a.Tokens.VerifyToken(ctx, token)
		if err != nil {
			return Principal{}, err
		}
		p.Mechanism = OAuthBearer
		return choose(p, ext["logicalCluster"])
	}
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
