// Package meter counts a broker's usage per virtual cluster — bytes in
// and out as on the wire, requests, connections — in fixed windows, and
// reports every closed window exactly once.
//
// # Exactly once
//
// A report's idempotency key is (broker id, boot id, window start,
// cluster). The boot id is random per process start. The store inserts
// reports with ON CONFLICT DO NOTHING, so a retried report changes
// nothing. Windows are spooled to a small file in the broker's data
// directory (written to a temporary file, fsynced, renamed) every
// Config.Sync and whenever a window closes or is reported:
//
//	spool = {"version":1, "pending":[window...], "current":window}
//	window = {"broker":1, "boot":"9f..", "start":t, "end":t,
//	          "clusters":{"vc-..":{"in":n,"out":n,"requests":n,"connections":n}}}
//
// A window leaves "pending" only after its report committed. A broker
// that restarts with the same data directory reports what the spool holds
// under the boot id that counted it — including the window that was
// running, cut at its last sync — so a replay never counts twice and a
// restart drops no window. A broker killed with SIGKILL loses at most the
// counts since the last sync (Config.Sync, 1s by default); one whose data
// directory is lost loses what was not yet reported.
//
// # Concurrency
//
// Counter methods are lock-free (atomics) and safe from any goroutine:
// they sit on the connection hot path. Run owns the window clock and the
// reporting goroutine, and returns after both stopped.
package meter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// Config configures a Meter.
type Config struct {
	// Window is the length of a metering window; windows are aligned to
	// multiples of it (since the Unix epoch) so brokers' windows match.
	Window time.Duration
	// Sync is how often the running window is spooled: the most counts a
	// SIGKILL can lose.
	Sync time.Duration
	// Dir holds the spool file.
	Dir string
	// BrokerID goes into every report's idempotency key.
	BrokerID int32
}

// DefaultConfig returns the defaults the flags start from. Dir has none:
// the broker puts it under its data directory.
func DefaultConfig() Config {
	return Config{Window: time.Minute, Sync: time.Second}
}

// RegisterFlags registers the metering flags with the defaults of
// DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.Window, "metering-window", d.Window, "length of a usage metering window (reports are per window, cluster and broker)")
	fs.DurationVar(&c.Sync, "metering-sync", d.Sync, "how often the running metering window is spooled to disk (the most usage a crash can lose)")
	fs.StringVar(&c.Dir, "metering-dir", d.Dir, "directory of the metering spool (default: <data-dir>/metering)")
}

// Validate checks the configuration, naming the flag of a bad value.
func (c *Config) Validate() error {
	if c.Window < 100*time.Millisecond {
		return fmt.Errorf("meter: --metering-window %s is too short (at least 100ms)", c.Window)
	}
	if c.Sync <= 0 {
		return fmt.Errorf("meter: --metering-sync must be positive, got %s", c.Sync)
	}
	if c.Dir == "" {
		return errors.New("meter: a spool directory (--metering-dir) is required")
	}
	return nil
}

// Counts are one cluster's usage in one window.
type Counts struct {
	BytesIn     int64 `json:"in"`
	BytesOut    int64 `json:"out"`
	Requests    int64 `json:"requests"`
	Connections int64 `json:"connections"`
}

func (c Counts) zero() bool { return c == Counts{} }

func (c *Counts) add(o Counts) {
	c.BytesIn += o.BytesIn
	c.BytesOut += o.BytesOut
	c.Requests += o.Requests
	c.Connections += o.Connections
}

// Report is one cluster's usage in one closed window, with its
// idempotency key (BrokerID, BootID, Start, Cluster).
type Report struct {
	BrokerID   int32
	BootID     string
	Start, End time.Time
	Cluster    string
	Counts
}

// ReportFunc stores reports; it must be idempotent on the key (a retry
// of reports already stored changes nothing) and store all or none.
type ReportFunc func(ctx context.Context, reports []Report) error

// Counter accumulates one cluster's usage until the meter drains it.
type Counter struct {
	in, out, requests, connections atomic.Int64
}

// Add counts bytes received and sent.
func (c *Counter) Add(in, out int64) {
	if in != 0 {
		c.in.Add(in)
	}
	if out != 0 {
		c.out.Add(out)
	}
}

// Request counts n requests.
func (c *Counter) Request(n int64) { c.requests.Add(n) }

// Connection counts a connection opened.
func (c *Counter) Connection() { c.connections.Add(1) }

func (c *Counter) drain() Counts {
	return Counts{BytesIn: c.in.Swap(0), BytesOut: c.out.Swap(0), Requests: c.requests.Swap(0), Connections: c.connections.Swap(0)}
}

type window struct {
	Broker   int32             `json:"broker"`
	Boot     string            `json:"boot"`
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	Clusters map[string]Counts `json:"clusters"`
}

func (w *window) empty() bool {
	for _, c := range w.Clusters {
		if !c.zero() {
			return false
		}
	}
	return true
}

type spoolFile struct {
	Version int      `json:"version"`
	Pending []window `json:"pending"`
	Current *window  `json:"current,omitempty"`
}

// SpoolFile is the spool's file name in Config.Dir.
const SpoolFile = "usage-spool.json"

// Meter counts and reports one broker's usage.
type Meter struct {
	cfg    Config
	report ReportFunc
	log    *slog.Logger
	boot   string

	cmu      sync.RWMutex
	counters map[string]*Counter

	// mu guards the windows and the spool file.
	mu      sync.Mutex
	pending []window
	cur     window
	kick    chan struct{} // wakes the reporter

	failures prometheus.Counter
	reported prometheus.Counter
	// bytes and requests are the same counts as the reports, exported
	// per virtual cluster as they are drained (every Sync) so that an
	// operator can graph a tenant's throughput without reading the
	// ledger; their resolution is Config.Sync.
	bytes    *prometheus.CounterVec
	requests *prometheus.CounterVec
}

// Open reads the spool left by an earlier process (its windows will be
// reported under their own boot ids) and starts a new boot. reg may be nil.
func Open(cfg Config, report ReportFunc, log *slog.Logger, reg prometheus.Registerer) (*Meter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("meter: %w", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	m := &Meter{
		cfg: cfg, report: report, log: log.With("component", "meter"),
		boot:     hex.EncodeToString(b[:]),
		counters: map[string]*Counter{},
		kick:     make(chan struct{}, 1),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_metering_report_failures_total", Help: "Usage reports that failed to reach Postgres (they are retried)."}),
		reported: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_metering_reports_total", Help: "Usage reports (window x cluster) stored."}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_tenant_bytes_total",
			Help: "Bytes metered for a virtual cluster on this broker, as on the wire (direction in = requests, out = responses)."},
			[]string{"virtual_cluster", "direction"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_tenant_requests_total", Help: "Requests metered for a virtual cluster on this broker."},
			[]string{"virtual_cluster"}),
	}
	raw, err := os.ReadFile(m.spoolPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("meter: read spool: %w", err)
	default:
		var sf spoolFile
		if err := json.Unmarshal(raw, &sf); err != nil {
			// A torn spool cannot happen (rename is atomic); a corrupt one
			// is kept aside for an operator rather than silently dropped.
			aside := m.spoolPath() + ".corrupt-" + time.Now().UTC().Format("20060102T150405")
			os.Rename(m.spoolPath(), aside)
			m.log.Error("metering spool unreadable; moved aside, its usage is not reported", "path", aside, "err", err)
		} else {
			m.pending = sf.Pending
			if sf.Current != nil && !sf.Current.empty() {
				m.pending = append(m.pending, *sf.Current)
			}
			if len(m.pending) > 0 {
				m.log.Info("replaying metering spool", "windows", len(m.pending))
			}
		}
	}
	now := time.Now()
	m.cur = window{Broker: cfg.BrokerID, Boot: m.boot, Start: now.Truncate(cfg.Window), End: now, Clusters: map[string]Counts{}}
	if err := m.writeSpool(); err != nil {
		return nil, err
	}
	if reg != nil {
		reg.MustRegister(m.failures, m.reported, m.bytes, m.requests, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eddy_metering_lag_seconds",
			Help: "Age of the oldest closed metering window not yet stored in Postgres (0 when none)."}, m.lag))
	}
	return m, nil
}

// BootID is this process's boot id.
func (m *Meter) BootID() string { return m.boot }

// Cluster returns the counter of a virtual cluster; the pointer stays
// valid for the meter's life.
func (m *Meter) Cluster(id string) *Counter {
	m.cmu.RLock()
	c := m.counters[id]
	m.cmu.RUnlock()
	if c != nil {
		return c
	}
	m.cmu.Lock()
	defer m.cmu.Unlock()
	if c = m.counters[id]; c == nil {
		c = &Counter{}
		m.counters[id] = c
	}
	return c
}

func (m *Meter) lag() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) == 0 {
		return 0
	}
	oldest := m.pending[0].End
	for _, w := range m.pending[1:] {
		if w.End.Before(oldest) {
			oldest = w.End
		}
	}
	return max(time.Since(oldest).Seconds(), 0)
}

func (m *Meter) spoolPath() string { return filepath.Join(m.cfg.Dir, SpoolFile) }

// writeSpool persists pending and cur; mu must be held (or the meter not
// yet shared).
func (m *Meter) writeSpool() error {
	cur := m.cur
	b, err := json.Marshal(spoolFile{Version: 1, Pending: m.pending, Current: &cur})
	if err != nil {
		return fmt.Errorf("meter: %w", err)
	}
	tmp := m.spoolPath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("meter: spool: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("meter: spool: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("meter: spool: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("meter: spool: %w", err)
	}
	if err := os.Rename(tmp, m.spoolPath()); err != nil {
		return fmt.Errorf("meter: spool: %w", err)
	}
	if d, err := os.Open(m.cfg.Dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// sync drains the counters into the running window, closes it if it
// ended, and spools.
func (m *Meter) sync(now time.Time) {
	m.cmu.RLock()
	drained := make(map[string]Counts, len(m.counters))
	for id, c := range m.counters {
		if d := c.drain(); !d.zero() {
			drained[id] = d
		}
	}
	m.cmu.RUnlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, d := range drained {
		m.bytes.WithLabelValues(id, "in").Add(float64(d.BytesIn))
		m.bytes.WithLabelValues(id, "out").Add(float64(d.BytesOut))
		m.requests.WithLabelValues(id).Add(float64(d.Requests))
		c := m.cur.Clusters[id]
		c.add(d)
		m.cur.Clusters[id] = c
	}
	m.cur.End = now
	closed := false
	if end := m.cur.Start.Add(m.cfg.Window); !now.Before(end) {
		m.cur.End = end
		if !m.cur.empty() {
			m.pending = append(m.pending, m.cur)
			closed = true
		}
		m.cur = window{Broker: m.cfg.BrokerID, Boot: m.boot, Start: now.Truncate(m.cfg.Window), End: now, Clusters: map[string]Counts{}}
	}
	if err := m.writeSpool(); err != nil {
		m.log.Error("metering spool write failed", "err", err)
	}
	if closed {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// Run closes windows and reports them until ctx ends. Then it closes the
// running window and tries, for at most final, to report everything
// pending; what is left stays in the spool for the next start. Call it
// once, after the last Counter use that should be reported has begun
// (the broker stops it after draining connections).
func (m *Meter) Run(ctx context.Context, final time.Duration) {
	var wg sync.WaitGroup
	repCtx, stopRep := context.WithCancel(ctx)
	wg.Go(func() { m.reportLoop(repCtx) })
	select {
	case m.kick <- struct{}{}: // a replayed spool is reported at once
	default:
	}
	for {
		now := time.Now()
		m.mu.Lock()
		next := now.Add(m.cfg.Sync)
		if end := m.cur.Start.Add(m.cfg.Window); end.Before(next) {
			next = end // close the window on time
		}
		m.mu.Unlock()
		t := time.NewTimer(max(time.Until(next), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			stopRep()
			wg.Wait()
			m.closeCurrent(time.Now())
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), final)
			if err := m.reportPending(fctx); err != nil {
				m.log.Warn("final usage report failed", "err", err)
			}
			cancel()
			if n := m.pendingCount(); n > 0 {
				m.log.Warn("metering windows left in the spool for the next start", "windows", n)
			}
			return
		case <-t.C:
			m.sync(time.Now())
		}
	}
}

// closeCurrent drains the counters and closes the running window early
// (shutdown).
func (m *Meter) closeCurrent(now time.Time) {
	m.sync(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.cur.empty() {
		m.cur.End = now
		m.pending = append(m.pending, m.cur)
	}
	m.cur = window{Broker: m.cfg.BrokerID, Boot: m.boot, Start: now.Truncate(m.cfg.Window), End: now, Clusters: map[string]Counts{}}
	if err := m.writeSpool(); err != nil {
		m.log.Error("metering spool write failed", "err", err)
	}
}

func (m *Meter) pendingCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// reportLoop reports pending windows when kicked, retrying failures with
// exponential backoff (100ms doubling to 30s).
func (m *Meter) reportLoop(ctx context.Context) {
	const maxBackoff = 30 * time.Second
	backoff := time.Duration(0)
	for {
		var wait <-chan time.Time
		if backoff > 0 {
			wait = time.After(backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
			if backoff > 0 {
				continue // a failure's backoff is still running
			}
		case <-wait:
		}
		if err := m.reportPending(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), maxBackoff)
			m.log.Warn("usage report failed; retrying", "err", err, "retry_in", backoff)
			continue
		}
		backoff = 0
	}
}

// reportPending reports the pending windows, oldest first, up to 64 at a
// time, and drops them from the spool once stored.
func (m *Meter) reportPending(ctx context.Context) error {
	for {
		m.mu.Lock()
		batch := append([]window(nil), m.pending[:min(len(m.pending), 64)]...)
		m.mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		var reports []Report
		for _, w := range batch {
			for id, c := range w.Clusters {
				if !c.zero() {
					reports = append(reports, Report{BrokerID: w.Broker, BootID: w.Boot, Start: w.Start, End: w.End, Cluster: id, Counts: c})
				}
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := m.report(rctx, reports)
		cancel()
		if err != nil {
			m.failures.Inc()
			return err
		}
		m.reported.Add(float64(len(reports)))
		m.mu.Lock()
		// Only this goroutine removes from pending and only sync appends,
		// so the batch is still the prefix.
		m.pending = append([]window(nil), m.pending[len(batch):]...)
		err = m.writeSpool()
		m.mu.Unlock()
		if err != nil {
			m.log.Error("metering spool write failed", "err", err)
		}
	}
}
