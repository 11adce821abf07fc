package meter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// table stands in for the usage_reports table: it keeps the first report
// per idempotency key, as INSERT ... ON CONFLICT DO NOTHING does, and can
// be made to fail (a fault a real Postgres does not produce on demand).
type table struct {
	mu    sync.Mutex
	rows  map[string]Report
	fail  int // fail this many calls
	calls int
}

func (t *table) report(_ context.Context, rs []Report) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls++
	if t.fail > 0 {
		t.fail--
		return errors.New("injected: database unavailable")
	}
	if t.rows == nil {
		t.rows = map[string]Report{}
	}
	for _, r := range rs {
		k := fmt.Sprintf("%d/%s/%d/%s", r.BrokerID, r.BootID, r.Start.UnixNano(), r.Cluster)
		if _, ok := t.rows[k]; !ok {
			t.rows[k] = r
		}
	}
	return nil
}

func (t *table) total(cluster string) (c Counts, windows int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.rows {
		if r.Cluster == cluster {
			c.add(r.Counts)
			windows++
		}
	}
	return c, windows
}

func open(t *testing.T, dir string, tb *table) *Meter {
	t.Helper()
	m, err := Open(Config{Window: 200 * time.Millisecond, Sync: 20 * time.Millisecond, Dir: dir, BrokerID: 7}, tb.report, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (t *table) callCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls
}

// reported is a condition for poll.Until: m has no window left to report
// and tb was called more than calls times.
func reported(m *Meter, tb *table, calls int) func() error {
	return func() error {
		if n, c := m.pendingCount(), tb.callCount(); n > 0 || c <= calls {
			return fmt.Errorf("%d windows pending after %d report calls", n, c)
		}
		return nil
	}
}

// TestExactlyOnceAcrossFailuresAndRestarts: reports that fail are
// retried; a process that dies leaves a spool the next one replays under
// the old boot id; replaying the same spool twice counts nothing twice.
func TestExactlyOnceAcrossFailuresAndRestarts(t *testing.T) {
	dir := t.TempDir()
	tb := &table{fail: 3}
	m := open(t, dir, tb)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx, 5*time.Second) }()

	var want Counts
	c := m.Cluster("vc-a")
	for i := range 50 {
		c.Add(int64(100+i), int64(7*i))
		c.Request(1)
		want.add(Counts{BytesIn: int64(100 + i), BytesOut: int64(7 * i), Requests: 1})
		time.Sleep(10 * time.Millisecond) // spans several windows
	}
	c.Connection()
	want.Connections++
	poll.Until(t, 30*time.Second, "the closed windows to be reported", reported(m, tb, 3))

	// The process "dies": its running window was spooled at the last sync
	// but never reported. Copy the spool as a crash would leave it.
	c.Add(1000, 0)
	want.BytesIn += 1000
	m.sync(time.Now()) // the last sync before the kill
	crashed, err := os.ReadFile(filepath.Join(dir, SpoolFile))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done // (a clean stop reports too; the copy above is the crash's view)

	got, _ := tb.total("vc-a")
	if got != want {
		t.Fatalf("after a clean stop: %+v, want %+v", got, want)
	}
	// Replay the crash-time spool twice: nothing changes.
	for range 2 {
		if err := os.WriteFile(filepath.Join(dir, SpoolFile), crashed, 0o644); err != nil {
			t.Fatal(err)
		}
		m2 := open(t, dir, tb)
		if m2.BootID() == m.BootID() {
			t.Fatal("boot id reused")
		}
		ctx2, cancel2 := context.WithCancel(context.Background())
		done2 := make(chan struct{})
		go func() { defer close(done2); m2.Run(ctx2, 5*time.Second) }()
		poll.Until(t, 30*time.Second, "the replay", reported(m2, tb, 0))
		cancel2()
		<-done2
		if got, _ := tb.total("vc-a"); got != want {
			t.Fatalf("after a replay: %+v, want %+v", got, want)
		}
	}
}

// TestKillLosesAtMostTheUnsyncedCounts: without a clean stop, a new
// process reports everything up to the last sync, under the old boot id.
func TestKillLosesAtMostTheUnsyncedCounts(t *testing.T) {
	dir := t.TempDir()
	tb := &table{}
	m := open(t, dir, tb)
	m.Cluster("vc-b").Add(5, 6)
	m.sync(time.Now())
	m.Cluster("vc-b").Add(1, 1) // after the last sync: lost by a kill
	// no Run, no clean stop: the process was killed
	m2 := open(t, dir, tb)
	if err := m2.reportPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, windows := tb.total("vc-b")
	if got != (Counts{BytesIn: 5, BytesOut: 6}) || windows != 1 {
		t.Fatalf("got %+v in %d windows", got, windows)
	}
	for _, r := range tb.rows {
		if r.BootID != m.BootID() || r.BrokerID != 7 {
			t.Errorf("replayed report %+v, want boot %s", r, m.BootID())
		}
	}
}

func TestCorruptSpoolIsMovedAside(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, SpoolFile), []byte("{not json"), 0o644)
	open(t, dir, &table{})
	matches, _ := filepath.Glob(filepath.Join(dir, SpoolFile+".corrupt-*"))
	if len(matches) != 1 {
		t.Fatalf("corrupt spool not kept aside: %v", matches)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{"defaults with a directory", func(c *Config) { c.Dir = "x" }, true},
		{"window too short", func(c *Config) { c.Dir, c.Window = "x", time.Millisecond }, false},
		{"no sync interval", func(c *Config) { c.Dir, c.Sync = "x", 0 }, false},
		{"no directory", func(*Config) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.change(&cfg)
			if err := cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestTenantMetricsFollowTheReports: the per-cluster Prometheus counters
// carry the same bytes and requests as the reports, once each.
func TestTenantMetricsFollowTheReports(t *testing.T) {
	tb := &table{}
	reg := prometheus.NewRegistry()
	m, err := Open(Config{Window: 200 * time.Millisecond, Sync: 20 * time.Millisecond, Dir: t.TempDir(), BrokerID: 7},
		tb.report, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.Cluster("lc-a"), m.Cluster("lc-b")
	a.Add(100, 40)
	a.Request(3)
	m.sync(time.Now())
	a.Add(1, 2)
	b.Add(0, 9)
	m.sync(time.Now())
	m.sync(time.Now()) // nothing new: nothing counted twice
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"bytes", []string{"lc-a", "in"}, 101},
		{"bytes", []string{"lc-a", "out"}, 42},
		{"bytes", []string{"lc-b", "out"}, 9},
		{"requests", []string{"lc-a"}, 3},
	} {
		vec := m.bytes
		if c.name == "requests" {
			vec = m.requests
		}
		if got := testutil.ToFloat64(vec.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "eddy_tenant_bytes_total"); err != nil || n != 4 {
		t.Errorf("eddy_tenant_bytes_total has %d series (%v), want 4", n, err)
	}
}
