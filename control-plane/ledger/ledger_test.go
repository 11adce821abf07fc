package ledger

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/eddy-streams/eddy/internal/egress"
	"github.com/eddy-streams/eddy/internal/limits"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type env struct {
	st      *store.Store
	org     store.OrgBilling
	cl      string
	secrets *seal.Sealer // the ledger's key-encryption key
}

func newEnv(t *testing.T, tz string) *env {
	t.Helper()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	o, _, _, err := st.CreateOrg(ctx, "acme", []byte("h"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := st.CreateCluster(ctx, o.ID, "prod", limits.Limits{IngressMBps: 1, EgressMBps: 1, MaxRequestsPerSec: 10_000, MaxConnections: 1000, MaxPartitions: 10, MaxStorageGB: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetOrgBilling(ctx, store.OrgBilling{OrgID: o.ID, PlanID: "standard", TimeZone: tz}); err != nil {
		t.Fatal(err)
	}
	ob, err := st.OrgBillingOf(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := seal.New(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, org: ob, cl: cl.ID, secrets: secrets}
}

// newLedger returns a ledger with fast rounds. Its webhooks may reach
// loopback (the tests' receivers), unless a policy is given.
func newLedger(t *testing.T, e *env, now func() time.Time, policy ...egress.Policy) *Ledger {
	t.Helper()
	webhooks := egress.Policy{AllowPrivate: true}
	if len(policy) > 0 {
		webhooks = policy[0]
	}
	l, err := New(Config{SampleInterval: time.Second, RateInterval: time.Second, FinalizeGrace: time.Hour,
		RetryBase: 20 * time.Millisecond, MaxAttempts: 4, WebhookTimeout: 5 * time.Second, Webhooks: webhooks, Secrets: e.secrets}, e.st, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.now = now
	return l
}

// TestFinalizeAfterGrace: a month's invoice stays a draft until the grace
// period after the month's end (in the organisation's zone) has passed.
func TestFinalizeAfterGrace(t *testing.T) {
	e := newEnv(t, "Asia/Tokyo")
	ctx := context.Background()
	// 20 GB out on March 31st 23:30 in Tokyo (14:30 UTC): March's invoice.
	if err := e.st.InsertUsage(ctx, []store.UsageReport{{BrokerID: 1, BootID: "b", Cluster: e.cl,
		WindowStart: time.Date(2026, 3, 31, 14, 30, 0, 0, time.UTC), WindowEnd: time.Date(2026, 3, 31, 14, 31, 0, 0, time.UTC), BytesOut: 20e9}}); err != nil {
		t.Fatal(err)
	}
	org := e.org
	org.CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // as if it existed then
	marchEnd := time.Date(2026, 3, 31, 15, 0, 0, 0, time.UTC)   // April 1st 00:00 in Tokyo
	for _, tc := range []struct {
		now    time.Time
		status string
	}{
		{marchEnd.Add(-time.Minute), "draft"},
		{marchEnd.Add(59 * time.Minute), "draft"}, // April, but within the grace
		{marchEnd.Add(time.Hour), "finalized"},
	} {
		l := newLedger(t, e, func() time.Time { return tc.now })
		if err := l.RateOrg(ctx, org); err != nil {
			t.Fatal(err)
		}
		inv, err := e.st.InvoiceForMonth(ctx, e.org.OrgID, "2026-03-01")
		if err != nil {
			t.Fatal(err)
		}
		if inv.Status != tc.status || inv.TotalCents != 100 {
			t.Fatalf("at %s: %s invoice of %d cents, want %s of 100", tc.now, inv.Status, inv.TotalCents, tc.status)
		}
	}
	// April's draft exists and March stays finalized on later rounds.
	if inv, err := e.st.InvoiceForMonth(ctx, e.org.OrgID, "2026-04-01"); err != nil || inv.Status != "draft" {
		t.Fatalf("April: %+v %v", inv, err)
	}
}

// TestWebhookToPrivateAddressRefused: with the default policy a webhook
// whose URL names a loopback receiver is never delivered (a URL stored
// before the registration check, or a name that resolves there later):
// the dialer refuses it, the attempts fail, and the receiver is not hit.
func TestWebhookToPrivateAddressRefused(t *testing.T) {
	e := newEnv(t, "UTC")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer hook.Close()
	a, err := e.st.CreateBudgetAlert(ctx, store.BudgetAlert{OrgID: e.org.OrgID, Name: "ssrf", Threshold: 1e9, WebhookURL: hook.URL, Secret: "whsec_test"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := e.st.InsertUsage(ctx, []store.UsageReport{{BrokerID: 1, BootID: "b", Cluster: e.cl,
		WindowStart: now.Truncate(time.Minute), WindowEnd: now, BytesIn: 30e9}}); err != nil {
		t.Fatal(err)
	}
	l := newLedger(t, e, time.Now, egress.Policy{})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); l.Run(runCtx) }()
	defer func() { stop(); <-done }()

	deadline := time.Now().Add(45 * time.Second)
	for {
		evs, err := e.st.AlertEvents(ctx, e.org.OrgID, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 && evs[0].FailedAt != nil {
			if evs[0].DeliveredAt != nil || !strings.Contains(evs[0].LastError, "not allowed") {
				t.Fatalf("event = %+v, want a failure naming the refused address", evs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery never gave up: events %+v", evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback receiver was reached %d times", n)
	}
}

// TestWebhookSignedAndRetried: the alert's event reaches a real HTTP
// endpoint signed with HMAC-SHA256, after failed attempts are retried.
func TestWebhookSignedAndRetried(t *testing.T) {
	e := newEnv(t, "UTC")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		attempts int
		bodies   [][]byte
		sigs     []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		bodies, sigs = append(bodies, b), append(sigs, r.Header.Get("Eddy-Signature"))
	}))
	defer hook.Close()
	// Stored as the REST API stores it: sealed to the alert.
	id := store.NewID("ba")
	sealed, err := SealSecret(e.secrets, id, "whsec_test")
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.st.CreateBudgetAlert(ctx, store.BudgetAlert{ID: id, OrgID: e.org.OrgID, Name: "one-dollar", Threshold: 1e9, WebhookURL: hook.URL, Secret: sealed})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := e.st.InsertUsage(ctx, []store.UsageReport{{BrokerID: 1, BootID: "b", Cluster: e.cl,
		WindowStart: now.Truncate(time.Minute), WindowEnd: now, BytesIn: 30e9}}); err != nil { // 1.50
		t.Fatal(err)
	}
	l := newLedger(t, e, time.Now)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); l.Run(runCtx) }()
	defer func() { stop(); <-done }()

	deadline := time.Now().Add(45 * time.Second)
	for {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery after %d attempts", attempts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	body, sig := bodies[0], sigs[0]
	mu.Unlock()
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.AlertID != a.ID || ev.Amount != "1.50" || ev.Threshold != "1.00" || ev.Type != "budget_alert.threshold_reached" {
		t.Errorf("event = %+v", ev)
	}
	// Verify as a receiver would, without Sign: "t=<unix>,v1=<hex>" where
	// v1 is HMAC-SHA256(secret, "<unix>.<body>").
	ts, v1, ok := strings.Cut(strings.TrimPrefix(sig, "t="), ",v1=")
	if _, err := strconv.ParseInt(ts, 10, 64); !ok || err != nil {
		t.Fatalf("signature %q is not t=<unix>,v1=<hex>", sig)
	}
	mac := func(secret string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(ts + "."))
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}
	if want := mac("whsec_test"); !hmac.Equal([]byte(v1), []byte(want)) || v1 == mac("wrong") {
		t.Errorf("signature %q, want v1=%s", sig, want)
	}
	// Recorded as delivered on the third attempt, once.
	evs, err := e.st.AlertEvents(ctx, e.org.OrgID, a.ID)
	for err == nil && (len(evs) != 1 || evs[0].DeliveredAt == nil) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		evs, err = e.st.AlertEvents(ctx, e.org.OrgID, a.ID)
	}
	if err != nil || len(evs) != 1 || evs[0].Attempts != 3 || evs[0].DeliveredAt == nil {
		t.Fatalf("events = %+v %v", evs, err)
	}
}

// TestPlainSecretSealedAtStart: a webhook secret stored in plain (before
// sealing existed) signs deliveries as it is, is sealed to its alert by
// SealStored, and then signs them the same; a sealed secret copied to
// another alert, or opened with another key, signs nothing.
func TestPlainSecretSealedAtStart(t *testing.T) {
	e := newEnv(t, "UTC")
	ctx := context.Background()
	var sig atomic.Value
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig.Store(r.Header.Get("Eddy-Signature"))
	}))
	defer hook.Close()
	a, err := e.st.CreateBudgetAlert(ctx, store.BudgetAlert{OrgID: e.org.OrgID, Name: "old", Threshold: 1e9, WebhookURL: hook.URL, Secret: "whsec_plain"})
	if err != nil {
		t.Fatal(err)
	}
	l := newLedger(t, e, func() time.Time { return time.Unix(1700000000, 0) })
	signedWith := func(l *Ledger, a store.BudgetAlert) (string, error) {
		t.Helper()
		sig.Store("")
		d := store.AlertDelivery{Alert: a, Month: "2026-01-01", Amount: 2e9, FiredAt: time.Unix(1700000000, 0)}
		if err := l.deliver(ctx, d); err != nil {
			return "", err
		}
		got := sig.Load().(string)
		for _, s := range []string{"whsec_plain", "whsec_other"} {
			ev, _ := json.Marshal(Event{Type: "budget_alert.threshold_reached", ID: a.ID + "/" + d.Month, AlertID: a.ID,
				AlertName: a.Name, OrganizationID: a.OrgID, Month: d.Month, Threshold: "1.00", Amount: "2.00", FiredAt: d.FiredAt.UTC()})
			if got == Sign(s, l.now(), ev) {
				return s, nil
			}
		}
		return "", errors.New("signed with no known secret: " + got)
	}
	if s, err := signedWith(l, a); s != "whsec_plain" {
		t.Fatalf("plain row: signed with %q, %v", s, err)
	}
	if n, err := l.SealStored(ctx); n != 1 || err != nil {
		t.Fatalf("SealStored = %d, %v; want 1", n, err)
	}
	if n, err := l.SealStored(ctx); n != 0 || err != nil {
		t.Fatalf("second SealStored = %d, %v; want 0", n, err)
	}
	stored, err := e.st.BudgetAlert(ctx, e.org.OrgID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !seal.IsSealed([]byte(stored.Secret)) || strings.Contains(stored.Secret, "whsec_plain") {
		t.Fatalf("stored secret after SealStored: %q", stored.Secret)
	}
	if s, err := signedWith(l, stored); s != "whsec_plain" {
		t.Fatalf("sealed row: signed with %q, %v", s, err)
	}
	// Copied to another alert it does not open; nor with another key.
	other, err := e.st.CreateBudgetAlert(ctx, store.BudgetAlert{OrgID: e.org.OrgID, Name: "copy", Threshold: 1e9, WebhookURL: hook.URL, Secret: stored.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := signedWith(l, other); err == nil {
		t.Fatalf("a secret copied to another alert signed (with %q)", s)
	}
	e2 := *e
	e2.secrets, _ = seal.New(seal.NewKey())
	if s, err := signedWith(newLedger(t, &e2, l.now), stored); err == nil {
		t.Fatalf("another key-encryption key opened the secret (%q)", s)
	}
}
