package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/bench"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
)

func TestMain(m *testing.M) {
	// The test binary is the noisy-neighbour scenario's worker process too,
	// as eddy is with `eddy bench-worker`.
	if len(os.Args) > 1 && os.Args[1] == "bench-worker" {
		if err := bench.Worker(context.Background(), os.Stdin, os.Stdout, func(l string) { fmt.Fprintln(os.Stderr, l) }); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	pgtest.Main(m)
}

// TestRun runs a short workload against a real stack and kfake and checks
// that every figure is there and every produced record was consumed.
func TestRun(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2, Metrics: true})
	w := bench.Workload{Name: "smoke", RecordSize: 1024, Partitions: 4, Producers: 2, Rate: 2,
		Duration: 3 * time.Second, Acks: "all", Compression: "none", Partitioner: "sticky",
		Linger: time.Millisecond, Consume: true, ReadBack: true}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{
		Bootstrap: s.Bootstrap(), Metrics: s.MetricsURLs(), DatabaseURL: url,
		Peer: true, Limits: true, LimitTime: 300 * time.Millisecond, LimitsDir: t.TempDir(),
		Workloads: []bench.Workload{w}, Progress: func(l string) { t.Log(l) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(rep.Runs))
	}
	c := rep.Runs[0]
	for _, r := range []*bench.Result{c.Eddy, c.Peer} {
		if r == nil {
			t.Fatal("missing result")
		}
		t.Run(r.Target, func(t *testing.T) {
			// About 2 MB/s for 3 s of 1 KiB records: some 5,800 records.
			if r.Acked < 2000 || r.Failed != 0 || r.Sent != r.Acked {
				t.Errorf("sent %d, acked %d, failed %d", r.Sent, r.Acked, r.Failed)
			}
			if !r.Complete || r.Consumed != r.Acked {
				t.Errorf("consumed %d of %d acked records", r.Consumed, r.Acked)
			}
			if r.MBPerSec <= 0 || r.RecordsPerSec <= 0 || r.Seconds <= 0 {
				t.Errorf("throughput %+v", r)
			}
			for name, p := range map[string]bench.Percentiles{"produce": r.ProduceLatency, "end-to-end": *r.EndToEnd} {
				if p.Count == 0 || p.P50 <= 0 || p.P50 > p.P99 || p.P99 > p.P999 || p.P999 > p.Max {
					t.Errorf("%s latency %+v", name, p)
				}
			}
			if r.Cold == nil || r.Cold.Records != r.Acked || r.Cold.MBPerSec <= 0 {
				t.Errorf("cold read %+v, want %d records", r.Cold, r.Acked)
			}
			if r.Hot == nil || r.Hot.Records == 0 || r.Hot.Records > r.Acked {
				t.Errorf("hot read %+v", r.Hot)
			}
		})
	}
	k := c.Eddy.Cost
	if k == nil || k.PutsPerSec <= 0 || k.PutsPerGiB <= 0 || k.CPUSecPerGiB <= 0 || k.PGXactsPerSec <= 0 || k.FlushMs <= 0 {
		t.Errorf("eddy cost %+v", k)
	}
	if c.Peer.Cost != nil {
		t.Errorf("kfake has cost figures: %+v", c.Peer.Cost)
	}
	// The index holds the topic's rows when the produce phase ends.
	if ix := c.Eddy.Index; ix == nil || ix.Rows < 4 || ix.Partitions != 4 || ix.DataBytes <= 0 || ix.RowsPerGiB <= 0 {
		t.Errorf("eddy index %+v", ix)
	}
	if c.Peer.Index != nil {
		t.Errorf("kfake has an index: %+v", c.Peer.Index)
	}
	if c.Ratios == nil || c.Ratios.Throughput <= 0 || c.Ratios.P99 <= 0 {
		t.Errorf("ratios %+v", c.Ratios)
	}
	if rep.Limits == nil || rep.Limits.LoopbackMBps[1024] <= 0 || rep.Limits.DiskMBps <= 0 || c.OfLoopback <= 0 || c.OfDisk <= 0 {
		t.Errorf("limits %+v, fractions %v %v", rep.Limits, c.OfLoopback, c.OfDisk)
	}

	// The outputs: JSON that reads back, tables, Markdown and charts.
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back bench.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Runs[0].Eddy.Acked != c.Eddy.Acked {
		t.Errorf("JSON round trip: acked %d, want %d", back.Runs[0].Eddy.Acked, c.Eddy.Acked)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{"smoke", "kfake", "PUTs/GiB", "loopback"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	dir := t.TempDir()
	charts, err := rep.WriteCharts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(charts) != 3 {
		t.Errorf("charts %v, want 3", charts)
	}
	for _, name := range charts {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		f.Close()
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md, charts)
	if !strings.Contains(md.String(), "| smoke | eddy |") || !strings.Contains(md.String(), charts[0]) {
		t.Errorf("markdown:\n%s", md.String())
	}
}

func TestWorkloadValidate(t *testing.T) {
	ok := bench.Standard(1)[0]
	for _, tc := range []struct {
		name string
		edit func(*bench.Workload)
		want string
	}{
		{"standard", func(*bench.Workload) {}, ""},
		{"bad acks", func(w *bench.Workload) { w.Acks = "2" }, "acks"},
		{"bad compression", func(w *bench.Workload) { w.Compression = "brotli" }, "compression"},
		{"bad partitioner", func(w *bench.Workload) { w.Partitioner = "random" }, "partitioner"},
		{"no partitions", func(w *bench.Workload) { w.Partitions = 0 }, "partitions"},
		{"negative rate", func(w *bench.Workload) { w.Rate = -1 }, "rate"},
		{"huge records", func(w *bench.Workload) { w.RecordSize = 2 << 20 }, "record size"},
		{"spaces in name", func(w *bench.Workload) { w.Name = "a b" }, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := ok
			tc.edit(&w)
			err := w.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

func TestStandardSet(t *testing.T) {
	// The three: 1 KiB x 16 partitions acks=all at max rate; the
	// same at 10 MB/s; 1,000 partitions at a low rate.
	var max, fixed, wide bool
	for _, w := range bench.Standard(1) {
		base := w.RecordSize == 1024 && w.Acks == "all"
		max = max || base && w.Partitions == 16 && w.Rate == 0
		fixed = fixed || base && w.Partitions == 16 && w.Rate == 10
		wide = wide || base && w.Partitions == 1000 && w.Rate > 0 && w.Rate <= 2
	}
	if !max || !fixed || !wide {
		t.Errorf("standard set lacks a workload: max %v, 10 MB/s %v, 1000 partitions %v", max, fixed, wide)
	}
}

// TestNoisy runs a short noisy-neighbour scenario against a real stack,
// with tenant A's producers in the test's process and in a worker process
// (the test binary): both tenants are made, B is measured in both phases,
// A is throttled or not but counted, and the report carries the table and
// its sentence.
func TestNoisy(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2, BrokerArgs: []string{"--sasl-mechanisms=PLAIN"}})
	for _, process := range []bool{false, true} {
		t.Run(fmt.Sprintf("process=%v", process), func(t *testing.T) {
			n := bench.StandardNoisy(0.1)
			n.NoisyProcess = process
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rep, err := bench.Run(ctx, bench.Config{Bootstrap: s.Bootstrap(), DatabaseURL: url, Noisy: &n,
				Worker: []string{os.Args[0], "bench-worker"}, Progress: func(l string) { t.Log(l) }})
			if err != nil {
				t.Fatal(err)
			}
			r := rep.Noisy
			if r == nil || len(rep.Runs) != 0 {
				t.Fatalf("noisy result %+v, runs %d", r, len(rep.Runs))
			}
			for name, x := range map[string]*bench.Result{"B alone": r.QuietAlone, "B shared": r.QuietShared, "A": r.Noisy} {
				if x == nil || x.Acked == 0 || x.Failed != 0 || x.ProduceLatency.P99 <= 0 {
					t.Errorf("%s: %+v", name, x)
				}
			}
			if r.Noisy.MBPerSec <= r.QuietShared.MBPerSec || r.P99Ratio <= 0 || r.Throttle.Responses == 0 {
				t.Errorf("A %.1f MB/s, B %.1f MB/s, ratio %v, throttle %+v", r.Noisy.MBPerSec, r.QuietShared.MBPerSec, r.P99Ratio, r.Throttle)
			}
			if r.NoisyIngressMBps != n.NoisyIngressMBps {
				t.Errorf("A's ingress limit %d, want %d", r.NoisyIngressMBps, n.NoisyIngressMBps)
			}
			wantMarkdown(t, rep, "### Noisy neighbour", "| A at full speed |", "tenant B's p99 produce latency", "| noisy-neighbour |")
		})
	}
}

func TestOnly(t *testing.T) {
	set := bench.StandardSet(1)
	s, err := set.Only([]string{bench.NoisyName})
	if err != nil || len(s.Workloads) != 0 || s.Noisy == nil || s.Txn != nil {
		t.Fatalf("Only(noisy) = %+v, %v", s, err)
	}
	s, err = set.Only([]string{"max-throughput"})
	if err != nil || len(s.Workloads) != 1 || s.Workloads[0].Name != "max-throughput" || s.Noisy != nil || s.Txn != nil {
		t.Fatalf("Only(max-throughput) = %+v, %v", s, err)
	}
	s, err = set.Only([]string{bench.TxnName})
	if err != nil || len(s.Workloads) != 0 || s.Noisy != nil || s.Txn == nil {
		t.Fatalf("Only(transactions) = %+v, %v", s, err)
	}
	if _, err := set.Only([]string{"nope"}); err == nil || !strings.Contains(err.Error(), bench.NoisyName) || !strings.Contains(err.Error(), bench.TxnName) {
		t.Fatalf("Only(nope): %v, want an error listing the names", err)
	}
}

// TestTxn runs a short transactions scenario against a real stack and
// kfake: both commit, every figure is there, and the report carries the
// table and its sentence.
func TestTxn(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2})
	x := bench.StandardTxn(0.1)
	x.RecordsPerTxn = 100
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Bootstrap: s.Bootstrap(), Peer: true, Txn: &x,
		Progress: func(l string) { t.Log(l) }})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Txn
	if c == nil || c.Eddy == nil || c.Peer == nil || len(rep.Runs) != 0 {
		t.Fatalf("transactions %+v, runs %d", c, len(rep.Runs))
	}
	for _, r := range []*bench.TxnResult{c.Eddy, c.Peer} {
		if r.Committed == 0 || r.Records != r.Committed*int64(x.RecordsPerTxn) || r.MBPerSec <= 0 || r.TxnPerSec <= 0 {
			t.Errorf("%s: %+v", r.Target, r)
		}
		for name, p := range map[string]bench.Percentiles{"commit": r.Commit, "EndTxn": r.EndTxn, "transaction": r.Transaction} {
			if p.Count == 0 || p.P50 <= 0 || p.P50 > p.P99 {
				t.Errorf("%s: %s latency %+v", r.Target, name, p)
			}
		}
		// Every commit sends one EndTxn (or more, retried).
		if int64(r.EndTxn.Count) < r.Committed {
			t.Errorf("%s: %d EndTxn requests for %d commits", r.Target, r.EndTxn.Count, r.Committed)
		}
	}
	if c.Throughput <= 0 || c.CommitP99 <= 0 {
		t.Errorf("ratios %v %v", c.Throughput, c.CommitP99)
	}
	wantMarkdown(t, rep, "### Transactions", "| eddy / kfake |", "transactional producers committing", "| transactions |")
}

// wantMarkdown checks that rep's Markdown (without charts) holds every
// one of wants.
func wantMarkdown(t *testing.T, rep *bench.Report, wants ...string) {
	t.Helper()
	var md bytes.Buffer
	rep.WriteMarkdown(&md, nil)
	for _, want := range wants {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}
