package chaos

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/tiered/fsck"
)

// Config is one run of the harness.
type Config struct {
	Seed       uint64
	Duration   time.Duration // of the faults phase
	FaultEvery time.Duration // mean time between faults (default 10s)
	Kinds      []FaultKind   // the faults to draw from (all when empty)
	// Plan, when set, is run instead of one drawn from the seed.
	Plan []Step

	Cluster  ClusterConfig
	Workload WorkloadConfig // Seeds are filled in; defaults for the zero fields

	// ReportDir receives report.md and throughput.png ("" writes none).
	ReportDir string
}

func (cfg *Config) defaults() {
	if cfg.FaultEvery == 0 {
		cfg.FaultEvery = 10 * time.Second
	}
	w := &cfg.Workload
	if w.Topic == "" {
		w.Topic = "chaos"
	}
	if w.Group == "" {
		w.Group = "chaos-group"
	}
	if w.Partitions == 0 {
		w.Partitions = 6
	}
	if w.Rate == 0 {
		w.Rate = 50
	}
	if cfg.Cluster.Brokers == 0 {
		cfg.Cluster.Brokers = 3
	}
	if cfg.Cluster.ControlPlanes == 0 {
		cfg.Cluster.ControlPlanes = 1
	}
	cfg.Cluster.Seed = cfg.Seed
}

// Run is the outcome of one run.
type Run struct {
	Config   Config
	Plan     []Step
	Start    time.Time // the faults phase's
	End      time.Time
	Timeline *Timeline
	History  *History
	Result   Result
	Hits     map[string]int // the proxy's faulted requests
	Orphans  []string       // objects crash-after-put left behind

	// The transactional copiers': transactions committed, ended without
	// a commit, sessions replaced, and records in the committed output.
	EOSCommitted, EOSAborted, EOSRestarts int64
	EOSOutput                             int
}

// orphanWait bounds the wait for garbage collection to delete the objects
// crash-after-put left: the brokers list the bucket every 10s and delete
// objects older than 30s no row names (cluster.go), so a minute and a
// half is plenty once the faults are healed.
const orphanWait = 3 * time.Minute

// collectOrphans waits until garbage collection has deleted keys, at
// most orphanWait, and returns those still in the bucket.
func collectOrphans(t testing.TB, c *Cluster, keys []string) []string {
	deadline := time.Now().Add(orphanWait)
	for {
		var left []string
		for _, k := range keys {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			ok, err := c.ObjectExists(ctx, k)
			cancel()
			if err != nil || ok {
				left = append(left, k) // an error counts as present until it answers
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		t.Logf("chaos: %d of %d crash orphans still in the bucket", len(left), len(keys))
		time.Sleep(5 * time.Second)
	}
}

// Execute starts a cluster and the workload, runs the nemesis for
// cfg.Duration, heals everything, lets the workload drain, reads the
// topic back and checks the history; it writes the report when
// cfg.ReportDir is set. The test fails only if the harness itself cannot
// work (a process that does not come back); the caller judges
// Run.Result.
func Execute(t testing.TB, cfg Config) *Run {
	t.Helper()
	cfg.defaults()
	r := &Run{Config: cfg, Plan: cfg.Plan, Timeline: &Timeline{}, History: NewHistory()}
	c := StartCluster(t, cfg.Cluster)
	if r.Plan == nil {
		kinds := cfg.Kinds
		if !c.disks {
			if len(kinds) == 0 {
				kinds = append(slices.Clone(ProcessFaults), StorageFaults...)
			}
			kinds = slices.DeleteFunc(slices.Clone(kinds), func(k FaultKind) bool { return k == FaultDiskFull })
			if len(kinds) == 0 {
				t.Skip("chaos: disk-full needs to mount a tmpfs (root)")
			}
		}
		r.Plan = Plan(cfg.Seed, cfg.Duration, cfg.FaultEvery, kinds, cfg.Cluster.Brokers, cfg.Cluster.ControlPlanes)
	}
	cfg.Workload.Seeds = c.Stack.Bootstrap()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	w, err := StartWorkload(ctx, cfg.Workload, r.History)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	poll.Until(t, 2*time.Minute, "the workload's first acknowledgements", func() error {
		if len(r.History.Acks()) == 0 {
			return fmt.Errorf("none yet")
		}
		return nil
	})

	r.Start = time.Now()
	t.Logf("chaos: seed %d, %d faults planned over %v", cfg.Seed, len(r.Plan), cfg.Duration)
	if err := inject(c, r.Plan, r.Start, r.Timeline, t.Logf); err != nil {
		t.Fatal(err) // doc.go: a process that does not come back fails the run
	}
	c.Proxy.Clear()
	r.End = time.Now()
	r.Hits = c.Proxy.Hits()

	// Healed: every acks=all record in flight gets its answer, the group
	// catches up for a moment, then the log is read back.
	pctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	if err := w.StopProducing(pctx); err != nil {
		t.Logf("chaos: producers did not drain: %v", err)
	}
	cancel()
	time.Sleep(5 * time.Second)
	w.StopConsuming()
	rctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log, err := ReadBack(rctx, c.Stack.Bootstrap(), cfg.Workload.Topic)
	if err != nil {
		t.Fatal(err)
	}
	r.Result = Check(r.History, log)
	if cfg.Workload.Copiers > 0 {
		r.EOSCommitted, r.EOSAborted, r.EOSRestarts = w.eos.Committed.Load(), w.eos.Aborted.Load(), w.eos.Restarts.Load()
		committed, err := committedOffsets(rctx, c.Stack.Bootstrap(), cfg.Workload.Topic)
		if err != nil {
			t.Fatal(err)
		}
		out, err := readCommitted(rctx, c.Stack.Bootstrap(), cfg.Workload.Topic+eosSuffix, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range out.Records {
			r.EOSOutput += len(rs)
		}
		for _, v := range CheckEOS(log, out, committed) {
			r.Result.add(v)
		}
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	rep, err := c.CheckObjects(fctx)
	fcancel()
	if err != nil {
		t.Fatalf("chaos: fsck: %v", err)
	}
	for kind, ps := range map[string][]fsck.Problem{"missing": rep.Missing, "short": rep.Short,
		"unregistered": rep.Unregistered, "size mismatch": rep.SizeMismatch} {
		for _, p := range ps {
			r.Result.add(Violation{Kind: KindObject, At: time.Now(), Detail: fmt.Sprintf("%s: %s: %s", kind, p.Key, p.Detail)})
		}
	}
	r.Orphans = c.CrashOrphans()
	for _, key := range collectOrphans(t, c, r.Orphans) {
		r.Result.add(Violation{Kind: KindOrphanKept, At: time.Now(),
			Detail: fmt.Sprintf("object %s, PUT by a broker that crashed before committing it, is still in the bucket %v after the run", key, orphanWait)})
	}
	if r.Result.AcksAll == 0 {
		r.Result.add(Violation{Kind: KindNoProgress, At: r.End, Detail: "no acks=all record was acknowledged"})
	}
	if cfg.ReportDir != "" {
		if err := r.WriteReport(cfg.ReportDir); err != nil {
			t.Errorf("chaos: report: %v", err)
		}
	}
	return r
}
