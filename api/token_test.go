package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eddy-streams/eddy/api"
	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/store"
)

type jwks struct {
	Keys []identity.JWK `json:"keys"`
}

func (e *env) fetchJWKS(t *testing.T) jwks {
	t.Helper()
	resp, err := e.raw().Get(e.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ks jwks
	if err := json.NewDecoder(resp.Body).Decode(&ks); err != nil {
		t.Fatal(err)
	}
	return ks
}

// verifyWithJWKS checks a token the way an outside verifier (a broker)
// would: only with the published JWKS and the discovery document.
func verifyWithJWKS(t *testing.T, ks jwks, issuer, token string) (*identity.Claims, error) {
	t.Helper()
	var c identity.Claims
	_, err := jwt.ParseWithClaims(token, &c, func(tok *jwt.Token) (any, error) {
		for _, k := range ks.Keys {
			if k.Kid == tok.Header["kid"] {
				x, _ := base64.RawURLEncoding.DecodeString(k.X)
				y, _ := base64.RawURLEncoding.DecodeString(k.Y)
				return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, nil
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(issuer), jwt.WithAudience("eddy"), jwt.WithExpirationRequired())
	return &c, err
}

// TestTokens: the token endpoint issues JWTs that verify against the
// JWKS and name org, cluster and principal; the REST API accepts them;
// forged, expired, alg=none, HS256-with-the-public-key and wrong-audience
// tokens are refused.
func TestTokens(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e.newTenant("acme")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c1"}))
	sa := must[client.ServiceAccount](t)(a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "app"}))
	k := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID, ClusterID: cl.ID}))

	// Discovery points at the JWKS and token endpoint.
	resp, err := e.raw().Get(e.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc map[string]any
	json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if disc["issuer"] != e.url || disc["jwks_uri"] != e.url+"/.well-known/jwks.json" || disc["token_endpoint"] != e.url+"/oauth2/token" {
		t.Fatalf("discovery = %v", disc)
	}

	// Client credentials in HTTP basic (via the client) ...
	tok := must[client.Token](t)(e.client().Token(ctx, k.ID, k.Secret))
	// Valid for the default lifetime (identity.DefaultTokenTTL), less the
	// moments the request took.
	if ttl := int(identity.DefaultTokenTTL.Seconds()); tok.TokenType != "Bearer" || tok.ExpiresIn < ttl-100 || tok.ExpiresIn > ttl {
		t.Fatalf("token = %+v", tok)
	}
	c, err := verifyWithJWKS(t, e.fetchJWKS(t), e.url, tok.AccessToken)
	if err != nil {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	if c.Org != a.org.Organization.ID || c.Cluster != cl.ID || c.Subject != sa.ID || c.ExpiresAt == nil {
		t.Fatalf("claims = %+v", c)
	}
	// ... and in the form body, as OAuth 2.0 also allows.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {a.keyID}, "client_secret": {a.secret}}
	resp, err = e.raw().Post(e.url+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	var adminTok client.Token
	json.NewDecoder(resp.Body).Decode(&adminTok)
	resp.Body.Close()
	if resp.StatusCode != 200 || adminTok.AccessToken == "" {
		t.Fatalf("form credentials: %d", resp.StatusCode)
	}
	// The admin's token works for REST.
	bearer := e.client(client.WithToken(adminTok.AccessToken))
	if _, err := bearer.GetCluster(ctx, cl.ID); err != nil {
		t.Fatalf("REST with bearer: %v", err)
	}

	// Token endpoint errors use OAuth's format.
	for _, tc := range []struct {
		form   url.Values
		ct     string
		status int
		code   string
	}{
		{url.Values{"grant_type": {"client_credentials"}, "client_id": {k.ID}, "client_secret": {"wrong"}}, "", 401, "invalid_client"},
		{url.Values{"grant_type": {"client_credentials"}, "client_id": {"key-nope"}, "client_secret": {k.Secret}}, "", 401, "invalid_client"},
		{url.Values{"grant_type": {"client_credentials"}}, "", 401, "invalid_client"},
		{url.Values{"grant_type": {"password"}, "client_id": {k.ID}, "client_secret": {k.Secret}}, "", 400, "unsupported_grant_type"},
		{url.Values{"grant_type": {"client_credentials"}, "client_id": {k.ID}, "client_secret": {k.Secret}}, "application/json", 400, "invalid_request"},
	} {
		ct := tc.ct
		if ct == "" {
			ct = "application/x-www-form-urlencoded"
		}
		resp, err := e.raw().Post(e.url+"/oauth2/token", ct, strings.NewReader(tc.form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		var oe struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&oe)
		resp.Body.Close()
		if resp.StatusCode != tc.status || oe.Error != tc.code {
			t.Errorf("%v: %d %q, want %d %q", tc.form, resp.StatusCode, oe.Error, tc.status, tc.code)
		}
	}

	// Refused tokens.
	restWith := func(token string) int {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/clusters", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := e.raw().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := restWith(adminTok.AccessToken); s != 200 {
		t.Fatalf("valid token: %d", s)
	}
	admin := identity.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: a.org.AdminServiceAccount.ID}, Org: a.org.Organization.ID}
	past := admin
	past.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	past.IssuedAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	expired, _, err := e.issuer.Issue(ctx, past)
	if err != nil {
		t.Fatal(err)
	}
	aud := admin
	aud.Audience = jwt.ClaimStrings{"someone-else"}
	wrongAud, _, _ := e.issuer.Issue(ctx, aud)
	iss := admin
	iss.Issuer = "https://evil.example"
	wrongIss, _, _ := e.issuer.Issue(ctx, iss)

	ks := e.fetchJWKS(t)
	kid := ks.Keys[0].Kid
	full := admin
	full.Issuer, full.Audience = e.url, jwt.ClaimStrings{"eddy"}
	full.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
	// Signed by a key of our own under the real kid.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := jwt.NewWithClaims(jwt.SigningMethodES256, full)
	forged.Header["kid"] = kid
	forgedS, _ := forged.SignedString(other)
	// alg=none.
	none := jwt.NewWithClaims(jwt.SigningMethodNone, full)
	none.Header["kid"] = kid
	noneS, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	// HS256 keyed with the public key in the forms an attacker would try.
	var hsTokens []string
	jwkJSON, _ := json.Marshal(ks.Keys[0])
	x, _ := base64.RawURLEncoding.DecodeString(ks.Keys[0].X)
	y, _ := base64.RawURLEncoding.DecodeString(ks.Keys[0].Y)
	for _, secret := range [][]byte{jwkJSON, append(append([]byte{4}, x...), y...), []byte(ks.Keys[0].X)} {
		hs := jwt.NewWithClaims(jwt.SigningMethodHS256, full)
		hs.Header["kid"] = kid
		s, _ := hs.SignedString(secret)
		hsTokens = append(hsTokens, s)
	}
	// A valid token with its payload altered.
	parts := strings.Split(adminTok.AccessToken, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+a.org.AdminServiceAccount.ID+`","org":"org-other","aud":"eddy","exp":9999999999}`)) + "." + parts[2]

	for name, tok := range map[string]string{
		"expired": expired, "wrong audience": wrongAud, "wrong issuer": wrongIss, "forged signature": forgedS,
		"alg none": noneS, "HS256 jwk": hsTokens[0], "HS256 point": hsTokens[1], "HS256 x": hsTokens[2],
		"tampered": tampered, "garbage": "a.b.c", "empty": "",
	} {
		if s := restWith(tok); s != 401 {
			t.Errorf("%s token: %d, want 401", name, s)
		}
		if name != "empty" {
			if _, err := e.issuer.Verify(ctx, tok); err == nil {
				t.Errorf("%s token verifies", name)
			}
		}
	}
	// A deleted service account's tokens stop working at once.
	saTok := must[client.Token](t)(e.client().Token(ctx, k.ID, k.Secret))
	if err := a.admin.DeleteServiceAccount(ctx, sa.ID); err != nil {
		t.Fatal(err)
	}
	if s := restWith(saTok.AccessToken); s != 401 {
		t.Errorf("token of a deleted service account: %d", s)
	}
}

// TestKeyRotation: after a rotation new tokens carry the new kid, tokens
// signed by the old key keep verifying (and the old key stays in the
// JWKS) until they expire, and then the old key leaves the JWKS.
func TestKeyRotation(t *testing.T) {
	const ttl = 8 * time.Second
	e := newEnv(t, func(_ *api.Config, ic *identity.Config) { ic.TokenTTL, ic.RotationGrace = ttl, -1 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e.newTenant("acme")
	cl := e.client()
	old := must[client.Token](t)(cl.Token(ctx, a.keyID, a.secret))
	before := e.fetchJWKS(t)
	if len(before.Keys) != 1 {
		t.Fatalf("JWKS = %+v", before)
	}
	if err := e.issuer.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rotatedAt := time.Now()
	// Rotation by age does nothing while the signing key is young (so
	// control planes sharing a database rotate once between them).
	if err := e.issuer.RotateIfOlder(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	fresh := must[client.Token](t)(cl.Token(ctx, a.keyID, a.secret))
	after := e.fetchJWKS(t)
	if len(after.Keys) != 2 || after.Keys[1].Kid != before.Keys[0].Kid {
		t.Fatalf("JWKS after rotation = %+v", after)
	}
	kidOf := func(tok string) string {
		p, _, _ := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
		return p.Header["kid"].(string)
	}
	if kidOf(old.AccessToken) != before.Keys[0].Kid || kidOf(fresh.AccessToken) != after.Keys[0].Kid {
		t.Fatal("tokens not signed by the expected keys")
	}
	for _, tok := range []string{old.AccessToken, fresh.AccessToken} {
		if _, err := verifyWithJWKS(t, after, e.url, tok); err != nil {
			t.Errorf("JWKS verification after rotation: %v", err)
		}
		if _, err := e.client(client.WithToken(tok)).ListClusters(ctx, client.ListOptions{}); err != nil {
			t.Errorf("REST after rotation: %v", err)
		}
	}
	// Once every token of the old key has expired, it is withdrawn.
	time.Sleep(time.Until(rotatedAt.Add(ttl + 1500*time.Millisecond)))
	// The issuer caches keys for a few seconds; a fresh one reads Postgres.
	i2 := identity.New(e.issuer.Config(), e.st)
	ks, err := i2.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 1 || ks[0].Kid != after.Keys[0].Kid {
		t.Fatalf("JWKS once old tokens expired = %+v", ks)
	}
	if _, err := i2.Verify(ctx, old.AccessToken); err == nil {
		t.Fatal("old token still verifies")
	}
}

// TestUpkeepDeletesExpiredKeys: the API's upkeep loop (Server.Run, which
// also rotates the key) deletes a replaced key once no token it signed is
// valid and it left the JWKS, and keeps the signing key.
func TestUpkeepDeletesExpiredKeys(t *testing.T) {
	const ttl = 2 * time.Second
	e := newEnv(t, func(_ *api.Config, ic *identity.Config) { ic.TokenTTL, ic.RotationGrace = ttl, -1 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old := e.fetchJWKS(t).Keys[0].Kid
	if err := e.issuer.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 500*time.Millisecond)
	if _, err := e.st.SigningKey(ctx, old); err != nil {
		t.Fatalf("the replaced key is gone before the upkeep ran: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.srv.Run(runCtx) }()
	defer func() { stop(); <-done }()
	for {
		_, err := e.st.SigningKey(ctx, old)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the upkeep did not delete the replaced key: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The issuer caches keys for a few seconds; a fresh one reads Postgres.
	if ks, err := identity.New(e.issuer.Config(), e.st).JWKS(ctx); err != nil || len(ks) != 1 || ks[0].Kid == old {
		t.Fatalf("JWKS = %+v, %v; want the signing key only", ks, err)
	}
}
