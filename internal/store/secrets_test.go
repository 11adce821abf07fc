package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
)

// TestReplaceSecret: PlainSecrets finds the rows not yet sealed, in the
// bytea and in the text column, and ReplaceSecret swaps a value only
// while the row still holds the old one.
func TestReplaceSecret(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	const sealed = "sealed:"
	if err := st.AddSigningKey(ctx, store.SigningKey{KID: "kid_a", Alg: "ES256", PrivateKey: []byte{0x30, 0x81, 1}}, time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	org, _, _, err := st.CreateOrg(ctx, "acme", []byte("h"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := st.CreateBudgetAlert(ctx, store.BudgetAlert{ID: "ba_chosen", OrgID: org.ID, Name: "a", Threshold: 1, WebhookURL: "https://example.com", Secret: "whsec_1"})
	if err != nil || a.ID != "ba_chosen" {
		t.Fatalf("alert %+v, %v: want the id the caller chose", a, err)
	}
	for _, tc := range []struct {
		col       store.SecretColumn
		id, plain string
	}{
		{store.SigningKeySecrets, "kid_a", "\x30\x81\x01"},
		{store.BudgetAlertSecrets, "ba_chosen", "whsec_1"},
	} {
		got, err := st.PlainSecrets(ctx, tc.col, sealed)
		if err != nil || len(got) != 1 || got[0].ID != tc.id || string(got[0].Value) != tc.plain {
			t.Fatalf("PlainSecrets(%d) = %+v, %v", tc.col, got, err)
		}
		if ok, err := st.ReplaceSecret(ctx, tc.col, tc.id, []byte("other"), []byte(sealed+"x")); ok || err != nil {
			t.Fatalf("replaced a value that was not the old one: %v %v", ok, err)
		}
		if ok, err := st.ReplaceSecret(ctx, tc.col, tc.id, []byte(tc.plain), []byte(sealed+"x")); !ok || err != nil {
			t.Fatalf("ReplaceSecret = %v, %v", ok, err)
		}
		if ok, _ := st.ReplaceSecret(ctx, tc.col, tc.id, []byte(tc.plain), []byte(sealed+"y")); ok {
			t.Fatal("replaced twice")
		}
		if got, err := st.PlainSecrets(ctx, tc.col, sealed); err != nil || len(got) != 0 {
			t.Fatalf("PlainSecrets after sealing = %+v, %v", got, err)
		}
	}
	if k, err := st.SigningKey(ctx, "kid_a"); err != nil || string(k.PrivateKey) != sealed+"x" {
		t.Fatalf("SigningKey = %+v, %v", k, err)
	}
}

// TestDeleteSigningKeys: a key is deleted once it left the JWKS longer
// ago than asked, and not before.
func TestDeleteSigningKeys(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	add := func(kid string) {
		t.Helper()
		if err := st.AddSigningKey(ctx, store.SigningKey{KID: kid, Alg: "ES256", PrivateKey: []byte{0x30}}, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	add("kid_old")
	add("kid_new") // kid_old leaves the JWKS now
	time.Sleep(10 * time.Millisecond)
	if n, err := st.DeleteSigningKeys(ctx, time.Hour); n != 0 || err != nil {
		t.Fatalf("deleted %d (%v) within the hour", n, err)
	}
	if n, err := st.DeleteSigningKeys(ctx, 0); n != 1 || err != nil {
		t.Fatalf("deleted %d, %v; want kid_old", n, err)
	}
	if _, err := st.SigningKey(ctx, "kid_old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("kid_old: %v", err)
	}
	if _, err := st.SigningKey(ctx, "kid_new"); err != nil {
		t.Fatalf("the signing key went too: %v", err)
	}
}
