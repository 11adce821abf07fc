// Package ledger keeps the books in the control plane: it samples storage
// (GB-hours from the object index) and partition and cluster hours (from
// metadata), rates every organisation's usage into daily cost lines and a
// draft invoice for the running month, finalizes a month's invoice once
// the month ended in the organisation's time zone and a grace period for
// late usage reports passed, and delivers budget alert events to webhooks.
//
// Every step is idempotent and serialised in Postgres (one storage sample
// per cluster and window, an advisory lock per organisation for rating,
// SKIP LOCKED leases for deliveries), so any number of control planes may
// run a Ledger. Run owns its goroutines and returns after they stopped.
//
// # Webhooks
//
// A budget alert event is POSTed as JSON (see Event) with headers
//
//	Content-Type: application/json
//	Eddy-Event-Id: <alert id>/<month>      (deliveries are at least once: dedupe on it)
//	Eddy-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// Any 2xx answer is a delivery; anything else is retried with exponential
// backoff (Config.RetryBase doubling, at most an hour apart) up to
// Config.MaxAttempts attempts.
//
// The secret is stored sealed (internal/seal) with the control plane's
// key-encryption key, bound to its alert (SealSecret); secrets stored in
// plain before sealing existed are sealed by SealStored.
package ledger

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/eddy-streams/eddy/billing"
	"github.com/eddy-streams/eddy/internal/egress"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/store"
)

// Config tunes a Ledger.
type Config struct {
	// SampleInterval is the storage sampling window: each cluster's stored
	// bytes and partitions are sampled once per window and held for it.
	SampleInterval time.Duration
	// RateInterval is how often draft invoices are re-rated.
	RateInterval time.Duration
	// FinalizeGrace is how long after a month ends its invoice stays a
	// draft, so late usage reports (a broker that was down) still count.
	FinalizeGrace time.Duration
	// RetryBase is the first webhook retry delay; MaxAttempts bounds them.
	RetryBase   time.Duration
	MaxAttempts int
	// WebhookTimeout bounds one webhook POST.
	WebhookTimeout time.Duration
	// Webhooks decides which addresses webhook URLs may reach: tenants
	// choose them, so by default never the pool's own network.
	Webhooks egress.Policy
	// Secrets opens the sealed webhook secrets (nil: only plain ones
	// open; see SealSecret).
	Secrets *seal.Sealer
}

// DefaultConfig returns the defaults the flags start from; the zero
// egress.Policy lets webhooks reach public addresses only.
func DefaultConfig() Config {
	return Config{
		SampleInterval: time.Minute,
		RateInterval:   time.Minute,
		FinalizeGrace:  time.Hour,
		RetryBase:      5 * time.Second,
		MaxAttempts:    12,
		WebhookTimeout: 10 * time.Second,
	}
}

// RegisterFlags registers the ledger's flags with the defaults of
// DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.SampleInterval, "billing-sample-interval", d.SampleInterval, "storage and partition sampling window for billing (keep it a divisor of 15m)")
	fs.DurationVar(&c.RateInterval, "billing-rate-interval", d.RateInterval, "how often draft invoices are re-rated")
	fs.DurationVar(&c.FinalizeGrace, "billing-finalize-grace", d.FinalizeGrace, "how long after a month ends its invoice is finalized")
	fs.DurationVar(&c.RetryBase, "billing-webhook-retry", d.RetryBase, "first retry delay of a failed budget alert webhook (doubles each attempt)")
	fs.IntVar(&c.MaxAttempts, "billing-webhook-attempts", d.MaxAttempts, "attempts before a budget alert webhook is given up")
	fs.DurationVar(&c.WebhookTimeout, "billing-webhook-timeout", d.WebhookTimeout, "timeout of one budget alert webhook POST")
	c.Webhooks.RegisterFlags(fs)
}

// Validate checks the configuration, naming the flag of a bad value.
func (c *Config) Validate() error {
	switch {
	case c.SampleInterval <= 0:
		return fmt.Errorf("ledger: --billing-sample-interval must be positive, got %s", c.SampleInterval)
	case c.RateInterval <= 0:
		return fmt.Errorf("ledger: --billing-rate-interval must be positive, got %s", c.RateInterval)
	case c.RetryBase <= 0:
		return fmt.Errorf("ledger: --billing-webhook-retry must be positive, got %s", c.RetryBase)
	case c.WebhookTimeout <= 0:
		return fmt.Errorf("ledger: --billing-webhook-timeout must be positive, got %s", c.WebhookTimeout)
	case c.MaxAttempts <= 0:
		return fmt.Errorf("ledger: --billing-webhook-attempts must be positive, got %d", c.MaxAttempts)
	case c.FinalizeGrace < 0:
		return fmt.Errorf("ledger: --billing-finalize-grace must not be negative")
	}
	if billing.BucketSize%c.SampleInterval != 0 {
		return fmt.Errorf("ledger: --billing-sample-interval %s must divide %s, so samples never straddle a rating bucket", c.SampleInterval, billing.BucketSize)
	}
	return nil
}

// Ledger runs the billing jobs.
type Ledger struct {
	cfg    Config
	st     *store.Store
	log    *slog.Logger
	client *http.Client
	now    func() time.Time

	rated, failures prometheus.Counter
	deliveries      *prometheus.CounterVec
}

// New returns a Ledger; reg may be nil.
func New(cfg Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer) (*Ledger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Ledger{
		cfg: cfg, st: st, log: log.With("component", "ledger"),
		client: cfg.Webhooks.Client(cfg.WebhookTimeout),
		now:    time.Now,
		rated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_billing_invoices_rated_total", Help: "Invoice ratings (drafts re-rated and finalizations)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_billing_rating_failures_total", Help: "Organisation-months whose rating failed (retried next round)."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_billing_webhook_attempts_total", Help: "Budget alert webhook attempts by outcome (delivered, retry, failed)."},
			[]string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(l.rated, l.failures, l.deliveries)
	}
	return l, nil
}

// Run samples, rates and delivers until ctx ends.
func (l *Ledger) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { l.every(ctx, l.cfg.SampleInterval, func(ctx context.Context) { l.Sample(ctx) }) })
	wg.Go(func() { l.every(ctx, l.cfg.RateInterval, func(ctx context.Context) { l.RateAll(ctx) }) })
	wg.Go(func() { l.every(ctx, time.Second, l.deliverDue) })
	wg.Wait()
}

func (l *Ledger) every(ctx context.Context, d time.Duration, f func(context.Context)) {
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// Sample records the current sampling window's storage and partitions.
func (l *Ledger) Sample(ctx context.Context) {
	start := l.now().Truncate(l.cfg.SampleInterval)
	if _, err := l.st.SampleStorage(ctx, start, int(l.cfg.SampleInterval/time.Second)); err != nil && ctx.Err() == nil {
		l.log.Warn("storage sampling failed", "err", err)
	}
}

// RateAll rates every organisation's open months: the running month, the
// previous one, and any older draft; months past their grace are
// finalized.
func (l *Ledger) RateAll(ctx context.Context) {
	orgs, err := l.st.BillingOrgs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("billing: listing organisations failed", "err", err)
		}
		return
	}
	for _, o := range orgs {
		if ctx.Err() != nil {
			return
		}
		if err := l.RateOrg(ctx, o); err != nil && ctx.Err() == nil {
			l.failures.Inc()
			l.log.Warn("billing: rating failed", "org", o.OrgID, "err", err)
		}
	}
}

// RateOrg rates one organisation's open months.
func (l *Ledger) RateOrg(ctx context.Context, o store.OrgBilling) error {
	loc, err := time.LoadLocation(o.TimeZone)
	if err != nil {
		return fmt.Errorf("ledger: org %s: %w", o.OrgID, err)
	}
	now := l.now()
	cur := billing.MonthOf(now, loc)
	months := map[string]billing.Period{cur.Month: cur}
	if prev := billing.MonthOf(cur.Start.Add(-time.Nanosecond), loc); prev.End.After(o.CreatedAt) {
		months[prev.Month] = prev
	}
	drafts, err := l.st.DraftMonths(ctx, o.OrgID)
	if err != nil {
		return err
	}
	for _, m := range drafts {
		t, err := time.ParseInLocation(time.DateOnly, m, loc)
		if err != nil {
			return err
		}
		p := billing.MonthOf(t, loc)
		months[p.Month] = p
	}
	for _, p := range months {
		finalize := !now.Before(p.End.Add(l.cfg.FinalizeGrace))
		if _, err := l.st.RateMonth(ctx, o, p, finalize); err != nil {
			return err
		}
		l.rated.Inc()
	}
	return nil
}

// Event is the JSON body of a budget alert webhook.
type Event struct {
	Type           string    `json:"type"` // budget_alert.threshold_reached
	ID             string    `json:"id"`   // <alert id>/<month>, as Eddy-Event-Id
	AlertID        string    `json:"alert_id"`
	AlertName      string    `json:"alert_name"`
	OrganizationID string    `json:"organization_id"`
	Month          string    `json:"month"`
	Threshold      string    `json:"threshold"` // decimal currency units
	Amount         string    `json:"amount"`    // the month's charges when it fired
	FiredAt        time.Time `json:"fired_at"`
}

// secretAAD binds a sealed webhook secret to its alert.
func secretAAD(alertID string) []byte { return []byte("budget_alert/" + alertID) }

// SealSecret returns the stored form of alert alertID's webhook secret.
func SealSecret(s *seal.Sealer, alertID, secret string) (string, error) {
	b, err := s.Seal([]byte(secret), secretAAD(alertID))
	if err != nil {
		return "", fmt.Errorf("ledger: webhook secret: %w", err)
	}
	return string(b), nil
}

// OpenSecret returns the webhook secret of alert alertID from its stored
// form (sealed, or plain if stored before sealing existed).
func OpenSecret(s *seal.Sealer, alertID, stored string) (string, error) {
	b, err := s.Open([]byte(stored), secretAAD(alertID))
	if err != nil {
		return "", fmt.Errorf("ledger: webhook secret of %s: %w", alertID, err)
	}
	return string(b), nil
}

// SealStored seals the webhook secrets stored in plain (before sealing
// existed), one UPDATE each; control planes starting together may all
// call it. It does nothing without a key-encryption key.
func (l *Ledger) SealStored(ctx context.Context) (int, error) {
	if !l.cfg.Secrets.Keyed() {
		return 0, nil
	}
	n, err := l.st.SealSecrets(ctx, store.BudgetAlertSecrets, seal.Prefix, func(id string, secret []byte) ([]byte, error) {
		return l.cfg.Secrets.Seal(secret, secretAAD(id))
	})
	if err != nil {
		return n, fmt.Errorf("ledger: sealing stored webhook secrets: %w", err)
	}
	return n, nil
}

// Sign returns the Eddy-Signature header value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

func (l *Ledger) deliverDue(ctx context.Context) {
	for ctx.Err() == nil {
		d, ok, err := l.st.ClaimAlertDelivery(ctx, 2*l.cfg.WebhookTimeout)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("billing: claiming webhook deliveries failed", "err", err)
			}
			return
		}
		if !ok {
			return
		}
		derr := l.deliver(ctx, d)
		retry := time.Duration(0)
		outcome := "delivered"
		if derr != nil {
			outcome = "failed"
			if d.Attempts+1 < l.cfg.MaxAttempts {
				retry = min(l.cfg.RetryBase<<min(d.Attempts, 20), time.Hour)
				outcome = "retry"
			}
			l.log.Warn("budget alert webhook failed", "alert", d.Alert.ID, "month", d.Month, "attempt", d.Attempts+1, "err", derr, "retry_in", retry)
		}
		l.deliveries.WithLabelValues(outcome).Inc()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := l.st.FinishAlertDelivery(fctx, d, derr, retry); err != nil {
			l.log.Warn("billing: recording a webhook delivery failed", "err", err)
		}
		cancel()
	}
}

func (l *Ledger) deliver(ctx context.Context, d store.AlertDelivery) error {
	ev := Event{
		Type: "budget_alert.threshold_reached", ID: d.Alert.ID + "/" + d.Month,
		AlertID: d.Alert.ID, AlertName: d.Alert.Name, OrganizationID: d.Alert.OrgID, Month: d.Month,
		Threshold: billing.FormatDecimal(d.Alert.Threshold.Rat(), 2), Amount: billing.FormatDecimal(d.Amount.Rat(), 2),
		FiredAt: d.FiredAt.UTC(),
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	secret, err := OpenSecret(l.cfg.Secrets, d.Alert.ID, d.Alert.Secret)
	if err != nil {
		// The tenant sees the returned error; the operator the cause.
		l.log.Error("budget alert webhook: cannot open its secret (is --secrets-key-file the key that sealed it?)", "alert", d.Alert.ID, "err", err)
		return errors.New("the control plane cannot open the webhook's secret")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Alert.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "eddy-billing/1")
	req.Header.Set("Eddy-Event-Id", ev.ID)
	req.Header.Set("Eddy-Signature", Sign(secret, l.now(), body))
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
