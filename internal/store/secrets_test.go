package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
)

// TestSealSecrets: SealSecrets replaces the rows not yet sealed, in the
// bytea and in the text column, each once when several callers race, and
// leaves sealed rows alone.
func TestSealSecrets(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	const prefix = "sealed:"
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
		var mu sync.Mutex
		seen := map[string]string{}
		seal := func(id string, plain []byte) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			seen[id] = string(plain)
			return []byte(prefix + id), nil
		}
		var wg sync.WaitGroup
		ns := make([]int, 4)
		for i := range ns {
			wg.Go(func() {
				n, err := st.SealSecrets(ctx, tc.col, prefix, seal)
				if err != nil {
					t.Error(err)
				}
				ns[i] = n
			})
		}
		wg.Wait()
		if total := ns[0] + ns[1] + ns[2] + ns[3]; total != 1 || len(seen) != 1 || seen[tc.id] != tc.plain {
			t.Fatalf("column %d: %v rows replaced, seal saw %q; want %s once, from %q", tc.col, ns, seen, tc.id, tc.plain)
		}
		if n, err := st.SealSecrets(ctx, tc.col, prefix, func(string, []byte) ([]byte, error) {
			return nil, errors.New("a sealed row was sealed again")
		}); n != 0 || err != nil {
			t.Fatalf("second pass: %d, %v", n, err)
		}
	}
	if k, err := st.SigningKey(ctx, "kid_a"); err != nil || string(k.PrivateKey) != prefix+"kid_a" {
		t.Fatalf("SigningKey = %+v, %v", k, err)
	}
	if a, err := st.BudgetAlert(ctx, org.ID, "ba_chosen"); err != nil || a.Secret != prefix+"ba_chosen" {
		t.Fatalf("BudgetAlert = %+v, %v", a, err)
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
