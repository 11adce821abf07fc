package autoscale

import (
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/control-plane/placement"
	"github.com/eddy-streams/eddy/control-plane/scaler"
	"github.com/eddy-streams/eddy/internal/brokerload"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestLoop drives the loop tick by tick on a real database and the local
// process scaler (sleep processes stand in for brokers, whose sessions
// and load reports the test writes as brokers do): the pool at its
// maximum holds; history and cool-downs survive a restart of the loop;
// scale-in marks the highest broker draining and stops it only once the
// rebalancer has taken its coordinator slots away.
func TestLoop(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.URL(t)
	st, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// Two brokers, as the pool's sessions and heartbeats.
	epochs := map[int32]int64{}
	for _, id := range []int32{1, 2} {
		e, err := st.Register(ctx, id, "127.0.0.1", 9090+id, "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		epochs[id] = e
	}
	report := func(bytesIn float64) {
		t.Helper()
		for id, e := range epochs {
			r := brokerload.Report{At: time.Now(), Interval: 1, Rates: brokerload.Rates{BytesIn: bytesIn}}
			if err := st.Heartbeat(ctx, id, e, time.Hour, r.Marshal()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Coordinator slots spread over both brokers, as placement does.
	if _, _, err := st.PlaceRound(ctx, placement.Assign); err != nil {
		t.Fatal(err)
	}

	procs := &scaler.Processes{Command: func(id int) *exec.Cmd { return exec.Command(sleep, strconv.Itoa(600+id)) }, StopTimeout: 5 * time.Second}
	if err := procs.Scale(ctx, 2); err != nil {
		t.Fatal(err)
	}
	runCtx, stopProcs := context.WithCancel(ctx)
	procsDone := make(chan struct{})
	go func() { defer close(procsDone); procs.Run(runCtx) }()
	defer func() { stopProcs(); <-procsDone }()

	cfg := LoopConfig{Interval: time.Second, DrainTimeout: time.Minute, Config: Config{
		Target: 0.6, Band: 0.1, MinBrokers: 1, MaxBrokers: 2, Capacity: Capacity{BytesIn: 100e3},
		ScaleOutCooldown: Duration(10 * time.Second), ScaleInCooldown: Duration(30 * time.Second),
		Smooth: Duration(3 * time.Second), Lead: Duration(5 * time.Second),
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Truncate(time.Second)
	now := t0
	newLoop := func() (*Loop, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		l := NewLoop(cfg, st, procs, slog.Default(), reg)
		l.now = func() time.Time { return now }
		return l, reg
	}
	tick := func(l *Loop, at time.Duration) {
		t.Helper()
		now = t0.Add(at)
		if err := l.Tick(ctx); err != nil {
			t.Fatalf("tick at %v: %v", at, err)
		}
	}
	size := func() int {
		n, _ := procs.Size(ctx)
		return n
	}
	draining := func() []int32 {
		pool, err := st.Pool(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []int32
		for _, b := range pool {
			if b.Draining {
				out = append(out, b.ID)
			}
		}
		return out
	}

	// 3 brokers' worth of load on a pool at its maximum of 2: hold.
	l, reg := newLoop()
	l.recover(ctx)
	report(150e3)
	tick(l, 0)
	if size() != 2 || testutil.ToFloat64(l.met.decisions.WithLabelValues(Hold)) != 1 {
		t.Fatalf("size %d, holds %v", size(), testutil.ToFloat64(l.met.decisions.WithLabelValues(Hold)))
	}
	if u := testutil.ToFloat64(l.met.util); u != 1.5 {
		t.Fatalf("utilisation %v, want 1.5", u)
	}
	// With a maximum of 3, the same load scales out (to the maximum).
	cfg.MaxBrokers = 3
	l.cfg = cfg
	tick(l, time.Second)
	if size() != 3 {
		t.Fatalf("size %d after a scale-out, want 3", size())
	}
	if err := procs.Scale(ctx, 2); err != nil { // broker 3 never registers; the test's pool stays at two
		t.Fatal(err)
	}
	cfg.MaxBrokers = 2
	l.cfg = cfg

	// The load drops. A restarted loop reads the history and the last
	// scale-out back, so the scale-in cool-down still holds it.
	report(5e3)
	tick(l, 5*time.Second)
	l, reg = newLoop()
	l.recover(ctx)
	if len(l.history) != 3 || !l.lastOut.Equal(t0.Add(time.Second)) {
		t.Fatalf("recovered %d samples, last scale-out %v; want 3 and %v", len(l.history), l.lastOut, t0.Add(time.Second))
	}
	tick(l, 10*time.Second)
	if size() != 2 || len(draining()) != 0 {
		t.Fatalf("scaled in within the cool-down: size %d, draining %v", size(), draining())
	}

	// After the cool-down: broker 2 drains and keeps running while it
	// leads coordinator slots.
	tick(l, 40*time.Second)
	if d := draining(); !slices.Equal(d, []int32{2}) {
		t.Fatalf("draining %v, want [2]", d)
	}
	report(5e3)
	tick(l, 41*time.Second)
	tick(l, 42*time.Second)
	if size() != 2 {
		t.Fatalf("broker 2 stopped (size %d) while it still led slots", size())
	}
	// The rebalancer's part: release its slots; placement gives them to
	// broker 1, the only one not draining.
	pool, err := st.Pool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range pool {
		if b.ID == 2 {
			if len(b.Slots) == 0 {
				t.Fatal("broker 2 led no slots to begin with")
			}
			if err := st.ReleaseSlots(ctx, b.Slots); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := st.PlaceRound(ctx, placement.Assign); err != nil {
		t.Fatal(err)
	}
	tick(l, 43*time.Second)
	if size() != 1 {
		t.Fatalf("size %d after the drain, want 1", size())
	}
	if got := testutil.ToFloat64(l.met.drains.WithLabelValues("completed")); got != 1 {
		t.Fatalf("completed drains %v", got)
	}
	if got := testutil.ToFloat64(l.met.target); got != 1 {
		t.Fatalf("target brokers gauge %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "eddy_autoscale_decisions_total"); err != nil || n != 3 {
		t.Fatalf("decision series %d %v", n, err)
	}

	// Every tick is in load_samples; the scale-out and the scale-in with
	// their decisions.
	rows, err := st.LoadSamples(ctx, t0.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range rows {
		var rec Evaluation
		if err := json.Unmarshal(r.Sample, &rec); err != nil {
			t.Fatal(err)
		}
		// A drain's ticks record their hold too (the operator's
		// history shows the drain), and every row its target.
		if rec.Decision == nil || rec.Target <= 0 {
			t.Errorf("sample at %s stored without its decision or target: %s", r.At, r.Sample)
			continue
		}
		if rec.Decision.Action != Hold {
			actions = append(actions, rec.Decision.Action)
		}
	}
	if len(rows) != 8 || !slices.Equal(actions, []string{ScaleOut, ScaleIn}) {
		t.Fatalf("%d samples stored with actions %v; want 8 with [scale-out scale-in]", len(rows), actions)
	}
}
