package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), pgtest.URL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func newSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	s, err := seal.New(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// roundTrip issues a token with i and verifies it with a fresh issuer
// (which reads the keys from Postgres).
func roundTrip(t *testing.T, i *Issuer, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	tok, _, err := i.Issue(ctx, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "sa_1"}, Org: "org_1", Cluster: "vc_1"})
	if err != nil {
		t.Fatal(err)
	}
	fresh := New(i.Config(), st)
	c, err := fresh.Verify(ctx, tok)
	if err == nil && c.Org != "org_1" {
		err = errors.New("wrong claims")
	}
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// TestKeysAreSealed: a new key is stored sealed to its kid: not as DER,
// and not usable in another key's row.
func TestKeysAreSealed(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	cfg := Config{Issuer: "http://eddy.test", Secrets: newSealer(t)}
	i := New(cfg, st)
	if err := i.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	ks, err := st.SigningKeys(ctx)
	if err != nil || len(ks) != 1 {
		t.Fatalf("keys %+v, %v", ks, err)
	}
	if !seal.IsSealed(ks[0].PrivateKey) {
		t.Fatalf("stored key is not sealed: %q", ks[0].PrivateKey[:16])
	}
	roundTrip(t, i, st)

	// Without the KEK, or with another, the keys do not load.
	for name, s := range map[string]*seal.Sealer{"none": nil, "plaintext": seal.Plaintext(), "another": newSealer(t)} {
		c := cfg
		c.Secrets = s
		if _, err := New(c, st).JWKS(ctx); err == nil {
			t.Errorf("KEK %s: keys loaded", name)
		}
	}
	// A sealed key copied into another row does not open there.
	if err := st.AddSigningKey(ctx, store.SigningKey{KID: "kid_copy", Alg: Alg, PrivateKey: ks[0].PrivateKey}, time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, st).JWKS(ctx); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("a key copied to another kid: %v, want %v", err, seal.ErrOpen)
	}
}

// TestSealStored: a key stored in plain DER before sealing existed is
// sealed in place by SealStored (once, however many control planes call
// it), and still signs, and verifies tokens it signed before.
func TestSealStored(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddSigningKey(ctx, store.SigningKey{KID: "kid_plain", Alg: Alg, PrivateKey: der}, time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Issuer: "http://eddy.test", Secrets: newSealer(t)}
	// A plain row loads as it is, so tokens keep working during an upgrade.
	i := New(cfg, st)
	before, _, err := i.Issue(ctx, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "sa_1"}, Org: "org_1"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := i.SealStored(ctx); n != 1 || err != nil {
		t.Fatalf("SealStored = %d, %v; want 1", n, err)
	}
	if n, err := New(cfg, st).SealStored(ctx); n != 0 || err != nil {
		t.Fatalf("second SealStored = %d, %v; want 0", n, err)
	}
	k, err := st.SigningKey(ctx, "kid_plain")
	if err != nil {
		t.Fatal(err)
	}
	if !seal.IsSealed(k.PrivateKey) || bytes.Contains(k.PrivateKey, der) {
		t.Fatalf("key after SealStored is not sealed: %q", k.PrivateKey)
	}
	if got, err := cfg.Secrets.Open(k.PrivateKey, aad("kid_plain")); err != nil || !bytes.Equal(got, der) {
		t.Fatalf("the sealed key opens to %x, %v", got, err)
	}
	fresh := New(cfg, st)
	if _, err := fresh.Verify(ctx, before); err != nil {
		t.Fatalf("a token signed before sealing: %v", err)
	}
	roundTrip(t, fresh, st)
	// Without a KEK there is nothing to seal with.
	if n, err := New(Config{Secrets: seal.Plaintext()}, st).SealStored(ctx); n != 0 || err != nil {
		t.Fatalf("plaintext SealStored = %d, %v", n, err)
	}
}

// TestDeleteExpired: a replaced key is deleted once it has been out of
// the JWKS for RotationGrace, not before; the signing key stays.
func TestDeleteExpired(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	const ttl, grace = 2 * time.Second, time.Second
	i := New(Config{Issuer: "http://eddy.test", TokenTTL: ttl, RotationGrace: grace, Secrets: newSealer(t)}, st)
	if err := i.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	old, err := i.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	if n, err := i.DeleteExpired(ctx); n != 0 || err != nil {
		t.Fatalf("deleted %d keys (%v) while the old one verifies", n, err)
	}
	// Out of the JWKS at ttl+grace, deleted grace later.
	time.Sleep(time.Until(rotated.Add(ttl + grace + 500*time.Millisecond)))
	if n, err := i.DeleteExpired(ctx); n != 0 || err != nil {
		t.Fatalf("deleted %d keys (%v) within the grace after leaving the JWKS", n, err)
	}
	time.Sleep(time.Until(rotated.Add(ttl + 2*grace + 500*time.Millisecond)))
	if n, err := i.DeleteExpired(ctx); n != 1 || err != nil {
		t.Fatalf("DeleteExpired = %d, %v; want the old key", n, err)
	}
	if _, err := st.SigningKey(ctx, old[0].Kid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old key: %v", err)
	}
	roundTrip(t, i, st)
}
