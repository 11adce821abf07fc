package chaos

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
)

// Environment of the long run (`make soak`) and of the reports.
const (
	envDuration  = "EDDY_CHAOS_DURATION"    // the soak's faults phase, e.g. 1h; unset: TestChaosSoak skips
	envSeed      = "EDDY_CHAOS_SEED"        // the soak's seed (default: the time)
	envEvery     = "EDDY_CHAOS_FAULT_EVERY" // the soak's mean time between faults (default 10s)
	envKinds     = "EDDY_CHAOS_KINDS"       // the soak's faults, comma-separated (default: all)
	envReportDir = "EDDY_CHAOS_REPORT_DIR"  // where reports go (default: the test's temporary directory)
)

func reportDir(t *testing.T) string {
	if d := os.Getenv(envReportDir); d != "" {
		return d + "/" + t.Name()
	}
	return t.TempDir()
}

// judge fails t with the run's violations.
func judge(t *testing.T, r *Run, dir string) {
	t.Helper()
	t.Log(r.Summary())
	t.Logf("report: %s", dir)
	if why := r.History.FailErrors(); len(why) > 0 {
		t.Logf("produce attempts that failed for good: %v", why)
	}
	if r.Result.OK() {
		return
	}
	for _, v := range r.Result.Violations {
		t.Errorf("%s at %d/%d: %s", v.Kind, v.Partition, v.Offset, v.Detail)
		for _, e := range r.Timeline.Around(v.At, 15*time.Second) {
			t.Logf("  fault around it: %s", e.Step)
		}
	}
}

// The short run's plan.
const (
	shortSeed     = 20261207
	shortDuration = 100 * time.Second
	shortEvery    = 6 * time.Second
)

// TestChaosShort is the run `make test` includes: a fixed seed, about
// two minutes of every fault, one every 6s on average, against 3 brokers
// and 2 control planes. The produce timeout is short so that slow
// storage makes clients retry batches the brokers already hold (the
// idempotent dedupe under fire).
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := reportDir(t)
	r := Execute(t, Config{
		Seed: shortSeed, Duration: shortDuration, FaultEvery: shortEvery,
		Cluster:   ClusterConfig{Brokers: 3, ControlPlanes: 2},
		Workload:  WorkloadConfig{AcksAllProducers: 2, AcksOneProducers: 1, GroupMembers: 2, TailReaders: 1, Copiers: 1, Rate: 40, ProduceTimeout: 3 * time.Second},
		ReportDir: dir,
	})
	judge(t, r, dir)
}

// TestChaosSoak is `make soak`: EDDY_CHAOS_DURATION of faults (one every
// EDDY_CHAOS_FAULT_EVERY, 10s by default, of EDDY_CHAOS_KINDS, all by
// default) from EDDY_CHAOS_SEED.
func TestChaosSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv(envDuration))
	if err != nil {
		t.Skipf("%s is not a duration (%v): the soak runs with `make soak DURATION=1h`", envDuration, err)
	}
	seed := uint64(time.Now().UnixNano() % 1e9)
	if s := os.Getenv(envSeed); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s: %v", envSeed, err)
		}
	}
	every := 10 * time.Second
	if s := os.Getenv(envEvery); s != "" {
		if every, err = time.ParseDuration(s); err != nil {
			t.Fatalf("%s: %v", envEvery, err)
		}
	}
	var kinds []FaultKind
	for k := range strings.SplitSeq(os.Getenv(envKinds), ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if !slices.Contains(ProcessFaults, FaultKind(k)) && !slices.Contains(StorageFaults, FaultKind(k)) {
			t.Fatalf("%s: no fault %q (faults: %v %v)", envKinds, k, ProcessFaults, StorageFaults)
		}
		kinds = append(kinds, FaultKind(k))
	}
	dir := reportDir(t)
	r := Execute(t, Config{
		Seed: seed, Duration: d, FaultEvery: every, Kinds: kinds,
		Cluster:   ClusterConfig{Brokers: 3, ControlPlanes: 2},
		Workload:  WorkloadConfig{AcksAllProducers: 2, AcksOneProducers: 1, GroupMembers: 3, TailReaders: 1, Copiers: 2, Rate: 30, ProduceTimeout: 3 * time.Second},
		ReportDir: dir,
	})
	judge(t, r, dir)
}

// TestChaosCatchesDuplicates proves the checker catches a real bug: with
// the brokers' idempotent dedupe turned off (leader.EnvUnsafeNoDedupe),
// PUTs slower than the produce timeout make the clients retry batches
// the brokers already hold, and the checker must report the duplicates.
// Every flush PUTs (no inline commits), so that the slow PUTs are on the
// acks=all path.
func TestChaosCatchesDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := reportDir(t)
	r := Execute(t, Config{
		Seed: 1, Duration: 25 * time.Second,
		Plan: []Step{{At: 5 * time.Second, For: 12 * time.Second, Kind: FaultS3Latency, Op: OpPut, Fault: Fault{Latency: 2500 * time.Millisecond}}},
		Cluster: ClusterConfig{Brokers: 3, ControlPlanes: 1,
			BrokerEnv: []string{leader.EnvUnsafeNoDedupe + "=1", "EDDY_INLINE_MAX_BYTES=0"}},
		Workload:  WorkloadConfig{AcksAllProducers: 2, Rate: 40, ProduceTimeout: time.Second},
		ReportDir: dir,
	})
	t.Log(r.Summary())
	if r.Result.Counts[KindDuplicate] == 0 {
		t.Fatalf("the checker found no duplicate with the dedupe off (report: %s): %v", dir, r.Result.Counts)
	}
}
