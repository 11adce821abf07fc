package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
)

// oidcIssuer is an identity provider of the tenant's own, independent of
// Eddy: its own keys, its own JWKS endpoint.
type oidcIssuer struct {
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	audience string
}

func newOIDCIssuer(t *testing.T) *oidcIssuer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &oidcIssuer{key: k, audience: "eddy-kafka"}
	b := func(v []byte) string { return base64.RawURLEncoding.EncodeToString(v) }
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		x, y := make([]byte, 32), make([]byte, 32)
		k.X.FillBytes(x)
		k.Y.FillBytes(y)
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": "corp-1", "use": "sig", "x": b(x), "y": b(y)}}})
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// token signs claims for sub valid for ttl (negative: expired) with key.
func (is *oidcIssuer) token(t *testing.T, key *ecdsa.PrivateKey, sub string, ttl time.Duration) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": is.srv.URL, "aud": is.audience, "sub": sub, "groups": []string{"payments", "devs"},
		"exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Add(-time.Minute).Unix(),
	})
	tok.Header["kid"] = "corp-1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFederation (issue 24, acceptance 3): an organisation registers its
// own OIDC issuer and an identity pool whose filter admits one subject; a
// kgo client with that issuer's token produces as the pool's service
// account; a token for another subject, an expired token and a token
// signed by an unregistered key are each refused with
// SASL_AUTHENTICATION_FAILED, and over REST with 401.
func TestFederation(t *testing.T) {
	url, ts := tenants(t, "fed")
	a := ts[0]
	ctx := context.Background()
	allowLoopback := []string{"--oidc-allow-private-addresses"}
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1, API: true,
		BrokerArgs:       append([]string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN,OAUTHBEARER", "--oauth-issuer={api}"}, allowLoopback...),
		ControlPlaneArgs: allowLoopback,
		ClientOpts:       []kgo.Opt{kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())}})
	rest := client.New(s.APIURL(), client.WithAPIKey(a.keyID, a.secret))
	createTopic(t, newClient(t, s, kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())), "payments", 1, nil)

	// The org-wide admin key registers; a is scoped to its cluster, so
	// make one for the organisation.
	st := openStore(t, url)
	orgKey := orgAdminKey(t, st, a)
	admin := client.New(s.APIURL(), client.WithAPIKey(orgKey.id, orgKey.secret))
	is := newOIDCIssuer(t)
	prov := mustREST[client.IdentityProvider](t)(admin.CreateIdentityProvider(ctx, client.CreateIdentityProviderRequest{
		Name: "corp", Issuer: is.srv.URL, JWKSURL: is.srv.URL + "/jwks", Audience: is.audience}))
	app := mustREST[client.ServiceAccount](t)(admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "payments-app"}))
	mustREST[client.RoleBinding](t)(rest.CreateRoleBinding(ctx, a.cluster, client.CreateRoleBindingRequest{ServiceAccountID: app.ID, Role: client.RoleDeveloperWrite}))
	pool := mustREST[client.IdentityPool](t)(admin.CreateIdentityPool(ctx, client.CreateIdentityPoolRequest{
		Name: "payments-prod", ProviderID: prov.ID, ClusterID: a.cluster, ServiceAccountID: app.ID,
		Filter: map[string][]string{"sub": {"system:serviceaccount:prod:payments"}, "groups": {"payments"}}}))

	produceIn := func(poolID, token string) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), kgo.DisableIdempotentWrite(), kgo.RecordRetries(1),
			kgo.SASL(oauth.Auth{Token: token, Extensions: map[string]string{"identityPoolId": poolID}}.AsMechanism()))
		if err != nil {
			return err
		}
		defer cl.Close()
		return produceErr(ctx, cl, "payments")
	}
	produce := func(token string) error { return produceIn(pool.ID, token) }
	good := is.token(t, is.key, "system:serviceaccount:prod:payments", 10*time.Minute)
	if err := produce(good); err != nil {
		t.Fatalf("a produce with the admitted subject's token: %v", err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, token := range map[string]string{
		"another subject":     is.token(t, is.key, "system:serviceaccount:prod:intruder", 10*time.Minute),
		"an expired token":    is.token(t, is.key, "system:serviceaccount:prod:payments", -2*time.Minute),
		"an unregistered key": is.token(t, otherKey, "system:serviceaccount:prod:payments", 10*time.Minute),
	} {
		if err := produce(token); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
		if _, err := client.New(s.APIURL(), client.WithPoolToken(pool.ID, token)).ListTopics(ctx, a.cluster, client.ListOptions{}); client.StatusOf(err) != 401 {
			t.Errorf("%s over REST: %v, want 401", name, err)
		}
	}
	// Over REST the admitted token acts as the pool's service account:
	// it may list the cluster's topics only if that account may use the
	// REST API (org admins); a developer-write account is refused, not
	// unauthenticated.
	if _, err := client.New(s.APIURL(), client.WithPoolToken(pool.ID, good)).ListTopics(ctx, a.cluster, client.ListOptions{}); client.StatusOf(err) != 403 {
		t.Errorf("the admitted token over REST: %v, want 403 (authenticated as a non-admin service account)", err)
	}
	if _, err := client.New(s.APIURL(), client.WithPoolToken("pool-nope", good)).ListTopics(ctx, a.cluster, client.ListOptions{}); client.StatusOf(err) != 401 {
		t.Errorf("an unknown pool over REST: %v, want 401", err)
	}

	// A pool with a filter expression instead of a claim filter admits
	// the subjects it describes and refuses the others; an expression
	// that does not parse is a 400 naming where.
	exprPool := mustREST[client.IdentityPool](t)(admin.CreateIdentityPool(ctx, client.CreateIdentityPoolRequest{
		Name: "payments-expr", ProviderID: prov.ID, ClusterID: a.cluster, ServiceAccountID: app.ID,
		FilterExpression: `claims.sub.startsWith("system:serviceaccount:prod:") && "payments" in claims.groups && claims.sub != "system:serviceaccount:prod:intruder"`}))
	if err := produceIn(exprPool.ID, good); err != nil {
		t.Errorf("a produce through the expression's pool: %v", err)
	}
	if err := produceIn(exprPool.ID, is.token(t, is.key, "system:serviceaccount:prod:intruder", 10*time.Minute)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("a subject the expression excludes: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if err := produceIn(exprPool.ID, is.token(t, is.key, "system:serviceaccount:staging:payments", 10*time.Minute)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("a subject outside the expression's prefix: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	_, err := admin.CreateIdentityPool(ctx, client.CreateIdentityPoolRequest{Name: "bad-expr", ProviderID: prov.ID,
		ClusterID: a.cluster, ServiceAccountID: app.ID, FilterExpression: `claims.sub = "x"`})
	if client.StatusOf(err) != 400 || !strings.Contains(err.Error(), "at character 12") {
		t.Errorf("an expression that does not parse: %v, want 400 naming character 12", err)
	}
}

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

type apiKey struct{ id, secret string }

// orgAdminKey makes an organisation-wide key for tn's org admin service
// account (tn's own key is scoped to its cluster).
func orgAdminKey(t *testing.T, st *store.Store, tn tenant) apiKey {
	t.Helper()
	secret := "secret-" + strings.ToLower(rand.Text())
	k, err := st.CreateAPIKey(context.Background(), tn.org, tn.sa, "", "org", identity.HashSecret(secret), identity.SCRAMCredentials(secret))
	if err != nil {
		t.Fatal(err)
	}
	return apiKey{k.ID, secret}
}
