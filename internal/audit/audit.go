// Package audit writes Eddy's audit log (internal/store's audit_log):
// every control-plane mutation, through REST (and so Terraform) or the
// Kafka admin APIs, and every authorization denial on the Kafka path.
//
// A Writer never makes its caller wait for Postgres: Record queues a row
// and Deny counts a denial; Run writes both in batches. Memory is bounded:
// at most MaxQueue rows wait and at most MaxDenials distinct denials
// (principal, source, action, resource, reason) are counted per interval,
// so a client retrying a forbidden request in a loop costs one row per
// interval, not one per request. What does not fit is dropped and counted
// in eddy_audit_dropped_total, the metric to alert on. Rows never hold
// request bodies, so never secrets: callers pass names, ids and error codes.
package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddy-streams/eddy/internal/store"
)

// Bounds of a Writer's memory, and how often it writes.
const (
	MaxQueue   = 4096
	MaxDenials = 1024
	Interval   = time.Second
	// batch is the most rows one write carries; a full batch is written
	// without waiting for the interval.
	batch = 512
)

// Writer queues audit rows and writes them. Its methods are safe for
// concurrent use; Run owns the goroutine that writes.
type Writer struct {
	st  *store.Store
	log *slog.Logger

	mu      sync.Mutex
	queue   []store.AuditEntry
	denials map[denial]int
	order   []denial // first-seen order, so rows keep the order denials began in
	wake    chan struct{}

	written *prometheus.CounterVec
	dropped *prometheus.CounterVec
}

// denial is what aggregates: the same refusal by the same principal from
// the same address within one interval is one row with a count.
type denial struct {
	org, cluster, principal, source, action, rtype, name, detail string
}

// New returns a writer to st; reg (nil: none) receives its metrics.
func New(st *store.Store, log *slog.Logger, reg prometheus.Registerer) *Writer {
	w := &Writer{st: st, log: log.With("component", "audit"), denials: map[denial]int{}, wake: make(chan struct{}, 1)}
	w.written = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eddy_audit_rows_total", Help: "Audit rows written, by result (ok, failed, denied).",
	}, []string{"result"})
	w.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eddy_audit_dropped_total", Help: "Audit rows or denials dropped: queue full, too many distinct denials, or a failed write.",
	}, []string{"reason"})
	if reg != nil {
		w.written = register(reg, w.written)
		w.dropped = register(reg, w.dropped)
	}
	return w
}

// maxText bounds each text a queued row or counted denial holds (the
// store cuts to less when it writes): names come from tenants' requests,
// so the queue's memory stays bounded by MaxQueue and MaxDenials times it.
const maxText = 1024

func short(s string) string { return s[:min(len(s), maxText)] }

func shorten(e *store.AuditEntry) {
	for _, f := range []*string{&e.OrgID, &e.ClusterID, &e.Principal, &e.Source, &e.Action, &e.ResourceType, &e.ResourceName, &e.Detail} {
		*f = short(*f)
	}
}

// Record queues one row.
func (w *Writer) Record(e store.AuditEntry) {
	shorten(&e)
	w.mu.Lock()
	if len(w.queue) >= MaxQueue {
		w.mu.Unlock()
		w.dropped.WithLabelValues("queue_full").Inc()
		return
	}
	w.queue = append(w.queue, e)
	full := len(w.queue) >= batch
	w.mu.Unlock()
	if full {
		w.poke()
	}
}

// Deny counts one authorization denial (e.Result is set to denied; its
// Count and At are the writer's).
func (w *Writer) Deny(e store.AuditEntry) {
	shorten(&e)
	k := denial{e.OrgID, e.ClusterID, e.Principal, e.Source, e.Action, e.ResourceType, e.ResourceName, e.Detail}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.denials[k]; !ok {
		if len(w.denials) >= MaxDenials {
			w.dropped.WithLabelValues("denials_full").Inc()
			return
		}
		w.order = append(w.order, k)
	}
	w.denials[k]++
}

func (w *Writer) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run writes what is queued every Interval (sooner when a batch is full)
// until ctx ends, then writes what is left once more, bounded by a few
// seconds so that a Postgres that is gone does not hold up shutdown.
func (w *Writer) Run(ctx context.Context) {
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = w.Flush(fctx)
			cancel()
			return
		case <-t.C:
		case <-w.wake:
		}
		if err := w.Flush(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("writing the audit log failed", "err", err)
		}
	}
}

// Flush writes everything queued now. Rows a failed write carried are
// dropped (and counted) rather than retried forever: the queue must stay
// bounded while Postgres is away.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	rows := w.queue
	w.queue = nil
	now := time.Now()
	for _, k := range w.order {
		rows = append(rows, store.AuditEntry{At: now, OrgID: k.org, ClusterID: k.cluster, Principal: k.principal,
			Source: k.source, Channel: store.AuditKafka, Action: k.action, ResourceType: k.rtype,
			ResourceName: k.name, Result: store.AuditDenied, Detail: k.detail, Count: w.denials[k]})
	}
	clear(w.denials)
	w.order = w.order[:0]
	w.mu.Unlock()

	var errs []error
	for len(rows) > 0 {
		n := min(len(rows), batch)
		if err := w.st.AppendAudit(ctx, rows[:n]); err != nil {
			w.dropped.WithLabelValues("write_failed").Add(float64(len(rows)))
			errs = append(errs, err)
			break
		}
		for _, e := range rows[:n] {
			w.written.WithLabelValues(e.Result).Inc()
		}
		rows = rows[n:]
	}
	return errors.Join(errs...)
}

// register registers c, or returns the identical collector registered
// before (a process running several brokers, as eddy dev does, shares
// one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
