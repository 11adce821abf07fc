package sasl

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestParsePlain(t *testing.T) {
	for _, tc := range []struct {
		name, msg           string
		authz, user, secret string
		ok                  bool
	}{
		{"plain", "\x00key-1\x00s3cret", "", "key-1", "s3cret", true},
		{"with authzid", "vc-1\x00key-1\x00s3cret", "vc-1", "key-1", "s3cret", true},
		{"no password", "\x00key-1\x00", "", "", "", false},
		{"no separators", "key-1", "", "", "", false},
		{"too many parts", "a\x00b\x00c\x00d", "", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, u, s, err := ParsePlain([]byte(tc.msg))
			if !tc.ok {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("want ErrMalformed, got %v", err)
				}
				return
			}
			if err != nil || a != tc.authz || u != tc.user || s != tc.secret {
				t.Fatalf("got %q %q %q %v", a, u, s, err)
			}
		})
	}
}

func TestParseOAuthBearer(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		token     string
		ext       map[string]string
		ok        bool
	}{
		{"kafka client", "n,,\x01auth=Bearer abc.def.ghi\x01\x01", "abc.def.ghi", map[string]string{}, true},
		{"extensions", "n,,\x01auth=Bearer t\x01logicalCluster=vc-1\x01\x01", "t", map[string]string{"logicalCluster": "vc-1"}, true},
		{"authzid", "n,a=user,\x01auth=Bearer t\x01\x01", "t", map[string]string{}, true},
		{"no gs2", "auth=Bearer t\x01\x01", "", nil, false},
		{"no token", "n,,\x01\x01", "", nil, false},
		{"basic scheme", "n,,\x01auth=Basic dXNlcg==\x01\x01", "", nil, false},
		{"unterminated", "n,,\x01auth=Bearer t", "", nil, false},
		{"bad pair", "n,,\x01auth=Bearer t\x01junk\x01\x01", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, ext, err := ParseOAuthBearer([]byte(tc.msg))
			if !tc.ok {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("want ErrMalformed, got %v (token %q)", err, tok)
				}
				return
			}
			if err != nil || tok != tc.token || len(ext) != len(tc.ext) || ext["logicalCluster"] != tc.ext["logicalCluster"] {
				t.Fatalf("got %q %v %v", tok, ext, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("n,,\x01auth=Bearer abc\x01logicalCluster=vc\x01\x01"))
	f.Add([]byte("\x00key\x00secret"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if tok, _, err := ParseOAuthBearer(b); err == nil && tok == "" {
			t.Fatal("accepted a message without a token")
		}
		if _, u, s, err := ParsePlain(b); err == nil && (u == "" || s == "") {
			t.Fatal("accepted PLAIN without username or password")
		}
	})
}

// issuer is a test JWKS endpoint with one or more ES256 keys.
type issuer struct {
	srv     *httptest.Server
	keys    map[string]*ecdsa.PrivateKey
	fetches atomic.Int32
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{keys: map[string]*ecdsa.PrivateKey{}}
	is.add(t, "k1")
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		is.fetches.Add(1)
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range is.keys {
			set.Keys = append(set.Keys, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid,
				"x": base64.RawURLEncoding.EncodeToString(k.PublicKey.X.FillBytes(make([]byte, 32))),
				"y": base64.RawURLEncoding.EncodeToString(k.PublicKey.Y.FillBytes(make([]byte, 32)))})
		}
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) add(t *testing.T, kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is.keys[kid] = k
}

func (is *issuer) sign(t *testing.T, kid string, mod func(*tokenClaims)) string {
	c := tokenClaims{Org: "org-a", Cluster: "vc-a"}
	c.Issuer, c.Subject, c.Audience, c.ID = "https://eddy.test", "sa-1", jwt.ClaimStrings{"eddy"}, "tok-1"
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
	if mod != nil {
		mod(&c)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(is.keys[kid])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWKS(t *testing.T) {
	ctx := context.Background()
	is := newIssuer(t)
	v := &JWKS{URL: is.srv.URL, Issuer: "https://eddy.test", Audience: "eddy", MinRefresh: time.Nanosecond}

	p, err := v.VerifyToken(ctx, is.sign(t, "k1", nil))
	if err != nil || p.Org != "org-a" || p.Cluster != "vc-a" || p.ServiceAccount != "sa-1" || p.Expires.IsZero() {
		t.Fatalf("valid token: %+v %v", p, err)
	}

	pub, _ := x509.MarshalPKIXPublicKey(&is.keys["k1"].PublicKey)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "https://eddy.test", "aud": "eddy", "sub": "sa-1", "org": "org-a", "exp": time.Now().Add(time.Hour).Unix()})
	hs.Header["kid"] = "k1"
	hsTok, _ := hs.SignedString(pub)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": "https://eddy.test", "aud": "eddy", "sub": "sa-1", "org": "org-a", "exp": time.Now().Add(time.Hour).Unix()})
	none.Header["kid"] = "k1"
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)

	other := newIssuer(t) // same kid, different key: a forged signature
	for _, tc := range []struct{ name, token, why string }{
		{"expired", is.sign(t, "k1", func(c *tokenClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }), "expired"},
		{"not yet valid", is.sign(t, "k1", func(c *tokenClaims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), "not valid yet"},
		{"wrong audience", is.sign(t, "k1", func(c *tokenClaims) { c.Audience = jwt.ClaimStrings{"someone-else"} }), "wrong audience"},
		{"foreign issuer", is.sign(t, "k1", func(c *tokenClaims) { c.Issuer = "https://evil.test" }), "foreign issuer"},
		{"no expiry", is.sign(t, "k1", func(c *tokenClaims) { c.ExpiresAt = nil }), "invalid"},
		{"wrongly signed", other.sign(t, "k1", nil), "bad signature"},
		{"alg none", noneTok, "bad signature"},
		{"HS256 with the public key", hsTok, "bad signature"},
		{"garbage", "not-a-jwt", "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.VerifyToken(ctx, tc.token)
			if !errors.Is(err, ErrAuthentication) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("got %v, want ErrAuthentication mentioning %q", err, tc.why)
			}
		})
	}

	// Rotation: a token signed by a new key is accepted after a refresh,
	// and tokens of the old key stay valid.
	is.add(t, "k2")
	if _, err := v.VerifyToken(ctx, is.sign(t, "k2", nil)); err != nil {
		t.Fatalf("token of a new key: %v", err)
	}
	if _, err := v.VerifyToken(ctx, is.sign(t, "k1", nil)); err != nil {
		t.Fatalf("token of the old key after rotation: %v", err)
	}

	// Unknown kids do not hammer the issuer.
	slow := &JWKS{URL: is.srv.URL, Issuer: "https://eddy.test", Audience: "eddy", MinRefresh: time.Hour}
	slow.VerifyToken(ctx, is.sign(t, "k1", nil))
	before := is.fetches.Load()
	other.add(t, "k9")
	for range 20 {
		slow.VerifyToken(ctx, other.sign(t, "k9", nil))
	}
	if n := is.fetches.Load() - before; n > 0 {
		t.Fatalf("%d JWKS fetches for unknown kids within MinRefresh", n)
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	hash := sha256.Sum256([]byte("Zq9-right"))
	lookups := 0
	keys := map[string]StoredKey{
		"key-c": {Org: "org-a", Cluster: "vc-a", ServiceAccount: "sa-1", SecretHash: hash[:]},
		"key-o": {Org: "org-a", ServiceAccount: "sa-2", SecretHash: hash[:]},
	}
	cache := &KeyCache{TTL: time.Hour, Lookup: func(_ context.Context, id string) (StoredKey, error) {
		lookups++
		k, ok := keys[id]
		if !ok {
			return StoredKey{}, ErrNoKey
		}
		return k, nil
	}}
	a := &Authenticator{Keys: cache}
	for _, tc := range []struct {
		name, mech, msg, cluster string
		err                      error
	}{
		{"cluster key", Plain, "\x00key-c\x00Zq9-right", "vc-a", nil},
		{"wrong secret", Plain, "\x00key-c\x00Xk2-bad", "", ErrAuthentication},
		{"unknown key", Plain, "\x00key-x\x00Zq9-right", "", ErrAuthentication},
		{"org key names the cluster", Plain, "\x00key-o@vc-b\x00Zq9-right", "vc-b", nil},
		{"org key via authzid", Plain, "vc-b\x00key-o\x00Zq9-right", "vc-b", nil},
		{"org key without a cluster", Plain, "\x00key-o\x00Zq9-right", "", ErrAuthentication},
		{"cluster key naming another cluster", Plain, "vc-b\x00key-c\x00Zq9-right", "", ErrAuthentication},
		{"disabled mechanism", OAuthBearer, "n,,\x01auth=Bearer t\x01\x01", "", ErrMechanism},
		{"unknown mechanism", "GSSAPI", "x", "", ErrMechanism},
		{"malformed", Plain, "nonsense", "", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(ctx, tc.mech, []byte(tc.msg))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("got %v, want %v", err, tc.err)
				}
				if strings.Contains(err.Error(), "Zq9") || strings.Contains(err.Error(), "Xk2") {
					t.Fatalf("error echoes the secret: %v", err)
				}
				return
			}
			if err != nil || p.Cluster != tc.cluster || p.Org != "org-a" {
				t.Fatalf("got %+v %v", p, err)
			}
		})
	}
	if lookups > 3 {
		t.Errorf("%d lookups for 3 distinct keys: the cache does not cache", lookups)
	}
}

// TestDeletedAccount: a valid token whose service account was deleted is
// refused; the account cache remembers answers until told to forget.
func TestDeletedAccount(t *testing.T) {
	ctx := context.Background()
	is := newIssuer(t)
	exists, lookups := true, 0
	accounts := &AccountCache{TTL: time.Hour, Exists: func(_ context.Context, id string) (bool, error) {
		lookups++
		return exists && id == "sa-1", nil
	}}
	a := &Authenticator{Tokens: &JWKS{URL: is.srv.URL, Issuer: "https://eddy.test", Audience: "eddy"}, Accounts: accounts}
	msg := []byte("n,,\x01auth=Bearer " + is.sign(t, "k1", nil) + "\x01\x01")
	if _, err := a.Authenticate(ctx, OAuthBearer, msg); err != nil {
		t.Fatalf("token of an existing account: %v", err)
	}
	exists = false
	if _, err := a.Authenticate(ctx, OAuthBearer, msg); err != nil || lookups != 1 {
		t.Fatalf("cached answer: %v after %d lookups", err, lookups)
	}
	accounts.Forget("sa-1")
	if _, err := a.Authenticate(ctx, OAuthBearer, msg); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("token of a deleted account: %v, want ErrAuthentication", err)
	}
}
