package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/control-plane/ledger"
	"github.com/eddy-streams/eddy/internal/freeport"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
)

// TestControlPlaneSealsPlainSecrets: a database written before sealing
// existed (a signing key in plain DER, a webhook secret in plain) is
// sealed when eddy control-plane starts with a key-encryption key, and
// the plain key keeps serving: it is in the JWKS and its secret opens.
func TestControlPlaneSealsPlainSecrets(t *testing.T) {
	dbURL := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, dbURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Stored in plain as before sealing existed (or as with
	// --insecure-plaintext-secrets).
	if err := identity.New(identity.Config{Secrets: seal.Plaintext()}, st).Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	plain, err := st.SigningKeys(ctx)
	if err != nil || len(plain) != 1 || seal.IsSealed(plain[0].PrivateKey) {
		t.Fatalf("plain keys %+v, %v", plain, err)
	}
	kid := plain[0].KID
	org, _, _, err := st.CreateOrg(ctx, "acme", []byte("h"), nil)
	if err != nil {
		t.Fatal(err)
	}
	alert, err := st.CreateBudgetAlert(ctx, store.BudgetAlert{OrgID: org.ID, Name: "a", Threshold: 1, WebhookURL: "https://example.com", Secret: "whsec_plain"})
	if err != nil {
		t.Fatal(err)
	}

	port, err := freeport.One()
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultControlPlaneConfig()
	cfg.databaseURL, cfg.api.Listen = dbURL, "127.0.0.1:"+strconv.Itoa(port)
	if cfg.secrets.KeyFile, err = devSecretsKey(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runControlPlane(runCtx, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("control plane: %v", err)
		}
	}()
	var jwks struct{ Keys []identity.JWK }
	if !stack.WaitFor(ctx, func() bool {
		resp, err := http.Get("http://" + cfg.api.Listen + "/.well-known/jwks.json")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && json.Unmarshal(b, &jwks) == nil
	}) {
		t.Fatal("the REST API did not start")
	}
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kid != kid {
		t.Fatalf("JWKS = %+v, want the key stored in plain", jwks)
	}

	// cfg is a copy: Validate ran on runControlPlane's, so read the key again.
	if err := cfg.secrets.Validate(); err != nil {
		t.Fatal(err)
	}
	k, err := st.SigningKey(ctx, kid)
	if err != nil || !seal.IsSealed(k.PrivateKey) {
		t.Fatalf("signing key after start: %v, sealed %v", err, seal.IsSealed(k.PrivateKey))
	}
	a, err := st.BudgetAlert(ctx, org.ID, alert.ID)
	if err != nil || !seal.IsSealed([]byte(a.Secret)) {
		t.Fatalf("webhook secret after start: %v, %q", err, a.Secret)
	}
	if s, err := ledger.OpenSecret(cfg.secrets.Sealer(), a.ID, a.Secret); s != "whsec_plain" || err != nil {
		t.Fatalf("the sealed webhook secret opens to %q, %v", s, err)
	}
}
