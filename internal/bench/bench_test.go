package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/bench"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/s3test"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/tiered/s3bucket"
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
	if k == nil || k.PutsPerSec <= 0 || k.PutsPerGiB <= 0 || k.CPUSecPerGiB <= 0 || k.PGXactsPerSec <= 0 || k.PGWALPerGiB <= 0 || k.FlushMs <= 0 {
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
	// Goal 4's: a 2 GiB topic written with nobody reading, then read back.
	s, err := bench.StandardSet(1).Only([]string{bench.ColdReadName})
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Workloads[0]; w.TopicBytes != 2<<30 || w.Consume || !w.ReadBack || w.Validate() != nil {
		t.Errorf("cold-read workload %+v", w)
	}
	// Goal 2's: the 10 MB/s acks=all workload on the S3 stack.
	s, err = bench.StandardSet(1).Only([]string{"s3-latency-10MBps-acks-all"})
	if err != nil || len(s.S3) != 1 || len(s.Workloads) != 0 || s.S3[0].Rate != 10 || s.S3[0].Acks != "all" {
		t.Errorf("S3 workloads %+v, %v", s.S3, err)
	}
}

// TestColdRead runs a small cold-read workload against a stack whose
// leaders keep almost nothing in memory, so the cold read goes through
// the object store: the produce phase stops at the topic size, every
// record is read back cold, the bucket served the cold read and the
// report has the cold-reads table.
func TestColdRead(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2, Metrics: true,
		// Every flush PUTs an object: small ones would otherwise stay
		// inline in Postgres until the uploader moves them, and a cold
		// read of them then comes from Postgres, not the bucket.
		// Flushes stay small too: memory keeps at least a partition's
		// last flush, and a fetch reads what memory holds from there.
		BrokerArgs: []string{"--cache-bytes=65536", "--inline-max-bytes=0", "--flush-bytes=131072"}})
	w := bench.ColdRead(0.004) // about 8.6 MB
	w.Partitions = 4
	// Paced: at full speed on a loaded machine a late flush carried up to
	// half of a partition (the producer keeps 5 requests of up to 1 MiB in
	// flight per broker), and that last flush stays in the leader's
	// memory, whatever --cache-bytes says: the cold read then came half
	// from memory (bucket share 48%).
	w.Rate, w.Duration = 4, 30*time.Second // the topic's size ends it, in about 2 s
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Bootstrap: s.Bootstrap(), Metrics: s.MetricsURLs(), DatabaseURL: url,
		Workloads: []bench.Workload{w}, Progress: func(l string) { t.Log(l) }})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Runs[0].Eddy
	if want := w.TopicBytes / int64(w.RecordSize); r.Sent < want-int64(w.Producers) || r.Sent > want || r.Acked != r.Sent {
		t.Errorf("sent %d, acked %d records, want %d", r.Sent, r.Acked, want)
	}
	if r.EndToEnd != nil || r.Consumed != 0 {
		t.Errorf("a tailing consumer ran: %+v", r)
	}
	if r.Cold == nil || r.Cold.Records != r.Acked || r.Cold.BucketShare < 0.5 || r.Cold.GetsPerGiB <= 0 {
		t.Errorf("cold read %+v, want %d records mostly from the bucket", r.Cold, r.Acked)
	}
	if r.Hot == nil || r.Hot.Records == 0 {
		t.Errorf("hot read %+v", r.Hot)
	}
	wantMarkdown(t, rep, "### Cold reads", "| "+bench.ColdReadName+" | eddy |")
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
	s, err = set.Only([]string{bench.ShareName})
	if err != nil || len(s.Workloads) != 0 || s.Noisy != nil || s.Txn != nil || s.Share == nil {
		t.Fatalf("Only(share-groups) = %+v, %v", s, err)
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

// TestS3Run runs the S3 workload on brokers whose bucket is a moto_server
// behind the latency injector: the injector delays every request by about
// its model, acks=all produce latency carries the PUT delay, and the
// report has the S3 table.
func TestS3Run(t *testing.T) {
	endpoint, ak, sk := s3test.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := s3bucket.New(ctx, s3bucket.Config{Endpoint: endpoint, Region: s3test.Region, Bucket: "bench-s3-run",
		AccessKey: ak, SecretKey: sk, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateBucketIfMissing(ctx); err != nil {
		t.Fatal(err)
	}
	model := bench.S3Standard()
	proxy, err := bench.StartLatencyProxy(endpoint, model)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2, Metrics: true, BrokerArgs: []string{
		"--objstore=s3", "--s3-endpoint=" + proxy.URL, "--s3-bucket=bench-s3-run", "--s3-region=" + s3test.Region,
		"--s3-path-style", "--s3-access-key=" + ak, "--s3-secret-key=" + sk,
		// Every flush a PUT, so produce latency carries the injected
		// delays this test checks (inline flushes would hide them).
		"--inline-max-bytes=0"}})
	w := bench.StandardS3(0.2)[0]
	w.Partitions, w.Rate = 4, 2
	rep, err := bench.Run(ctx, bench.Config{Bootstrap: s.Bootstrap(), Metrics: s.MetricsURLs(), DatabaseURL: url,
		Workloads: []bench.Workload{w}, Progress: func(l string) { t.Log(l) }})
	if err != nil {
		t.Fatal(err)
	}
	injected := proxy.Stats()
	t.Logf("injected %+v", injected)
	if injected.Writes.Count < 10 || injected.Writes.P50 < 0.5*ms(model.Write.P50) || injected.Writes.P50 > 2*ms(model.Write.P50) {
		t.Errorf("injected PUT delays %+v, model %v", injected.Writes, model.Write)
	}
	r := rep.Runs[0].Eddy
	if r.Acked == 0 || r.Failed != 0 || r.ProduceLatency.P50 < ms(model.Write.P50)/2 {
		t.Errorf("produce through the injector: %+v, want p50 above half the PUT delay", r)
	}
	var all bench.Report
	all.AddS3(rep, injected)
	wantMarkdown(t, &all, "### S3 run", "| "+w.Name+" |", "S3 Standard")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// The injector's delays follow the model: median and 99th percentile
// within sampling error.
func TestLatencyProxyDelays(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, r.Method)
	}))
	defer srv.Close()
	model := bench.LatencyModel{Name: "test",
		Write: bench.Latency{P50: 8 * time.Millisecond, P99: 30 * time.Millisecond},
		Read:  bench.Latency{P50: 4 * time.Millisecond, P99: 8 * time.Millisecond}}
	p, err := bench.StartLatencyProxy(srv.URL, model)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Go(func() {
			method := http.MethodGet
			if i%2 == 0 {
				method = http.MethodPut
			}
			req, _ := http.NewRequest(method, p.URL+"/bucket/key", nil)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != method {
				t.Errorf("%s answered %q", method, body)
			}
			if min := model.Read.P50 / 4; time.Since(start) < min {
				t.Errorf("%s answered in %v", method, time.Since(start))
			}
		})
	}
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	for _, c := range []struct {
		name string
		got  bench.Percentiles
		want bench.Latency
	}{{"writes", st.Writes, model.Write}, {"reads", st.Reads, model.Read}} {
		if c.got.Count != 200 || c.got.P50 < 0.8*ms(c.want.P50) || c.got.P50 > 1.25*ms(c.want.P50) ||
			c.got.P99 < 0.6*ms(c.want.P99) || c.got.P99 > 1.6*ms(c.want.P99) {
			t.Errorf("%s: injected %+v, model %v", c.name, c.got, c.want)
		}
	}
	if hits.Load() != 400 {
		t.Errorf("server saw %d requests, want 400", hits.Load())
	}
}

// TestShare runs a small share-group scenario against a real stack (with
// the default share.auto.offset.reset, latest, as eddy dev has it) and
// kfake: every group accepted every pre-loaded record, every figure is
// there, and the report carries the table, its sentence and the workload.
func TestShare(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2})
	x := bench.StandardShare(0.02)
	x.Groups, x.ClassicPartitions, x.ClassicConsumers, x.MaxDuration = []int{1, 4}, 4, 4, 90*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Bootstrap: s.Bootstrap(), Peer: true, Share: &x,
		Progress: func(l string) { t.Log(l) }})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Share
	if r == nil || len(rep.Runs) != 0 || len(r.Eddy) != 3 || len(r.Peer) != 3 {
		t.Fatalf("share result %+v, runs %d", r, len(rep.Runs))
	}
	for _, g := range append(r.Eddy, r.Peer...) {
		name := fmt.Sprintf("%s %s-%d", g.Target, g.Kind, g.Consumers)
		if g.Records != int64(x.Records) || g.Accepted != g.Records || !g.Complete || g.Deliveries < g.Records {
			t.Errorf("%s: accepted %d of %d records (%d in the topic), %d deliveries", name, g.Accepted, x.Records, g.Records, g.Deliveries)
		}
		if g.MBPerSec <= 0 || g.RecordsPerSec <= 0 || g.Seconds <= 0 || g.ConsumersWithRecords < 1 {
			t.Errorf("%s: %+v", name, g)
		}
		if g.Ack.Count < int(g.Records) || g.Ack.P50 <= 0 || g.Ack.P50 > g.Ack.P99 {
			t.Errorf("%s: acknowledgement latency %+v", name, g.Ack)
		}
	}
	if g := r.Eddy[0]; g.Kind != "share" || g.Consumers != 1 || g.Partitions != 1 {
		t.Errorf("first group %+v, want a share group of 1 on 1 partition", g)
	}
	if g := r.Eddy[2]; g.Kind != "classic" || g.Consumers != 4 || g.Partitions != 4 {
		t.Errorf("last group %+v, want a classic group of 4 on 4 partitions", g)
	}
	wantMarkdown(t, rep, "### Share groups", "| share | 4 | 1 | eddy |", "| classic | 4 | 4 | kfake |",
		"pre-loaded into one partition", "| "+bench.ShareName+" |")
}
