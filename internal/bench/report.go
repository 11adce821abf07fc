package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// table is a header and rows, rendered as aligned text or Markdown.
type table struct {
	title  string
	header []string
	rows   [][]string
	left   bool // align every column left (text columns)
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) text(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", t.title)
	var flags uint
	if !t.left {
		flags = tabwriter.AlignRight
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', flags)
	fmt.Fprintln(tw, strings.Join(t.header, "\t")+"\t")
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
}

func (t *table) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n### %s\n\n", t.title)
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.header, " | "))
	seps := make([]string, len(t.header))
	for i := range seps {
		seps[i] = "---:"
		if t.left {
			seps[i] = "---"
		}
	}
	seps[0] = "---"
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

func f1(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratio(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}

func pct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

// tables lays the report out: results side by side, ratios, cost, limits.
func (r *Report) tables() []*table {
	res := &table{title: "Results (MB = 10^6 B of record values; latencies in ms)",
		header: []string{"workload", "target", "MB/s", "records/s", "p50", "p99", "p99.9", "e2e p50", "e2e p99", "e2e p99.9", "cold MB/s", "hot MB/s", "consumed all"}}
	rat := &table{title: "Eddy / kfake (throughput: above 1 is faster; latency: above 1 is slower)",
		header: []string{"workload", "MB/s", "p50", "p99", "p99.9", "e2e p50", "e2e p99", "cold MB/s", "hot MB/s", "of loopback", "of disk fsync"}}
	cst := &table{title: "Eddy's cost (produce phase; GETs and bucket share for the cold read)",
		header: []string{"workload", "PUTs/s", "PUTs/GiB", "GETs/GiB (cold)", "bucket share (cold)", "Postgres xact/s", "Postgres WAL MiB/GiB", "broker CPU s/GiB", "broker CPU cores", "flushes/s", "mean flush ms"}}
	cold := &table{title: coldTitle,
		header: []string{"workload", "target", "GiB read cold", "cold MB/s", "hot MB/s", "cold / hot", "GETs/GiB (cold)", "bucket share (cold)", "of which read caches"}}
	for _, c := range r.Runs {
		for _, x := range []*Result{c.Eddy, c.Peer} {
			if x == nil || x.Cold == nil || x.Cold.Records == 0 {
				continue
			}
			gets, share, cache := "–", "–", "–"
			if x.Cold.BucketShare >= 0 {
				gets, share = f1(x.Cold.GetsPerGiB), pct(x.Cold.BucketShare)
			}
			if x.Cold.CacheShare >= 0 {
				cache = pct(x.Cold.CacheShare)
			}
			cold.add(c.Workload.Name, x.Target, f1(float64(x.Cold.Bytes)/GiB), f1(x.Cold.MBPerSec), readCell(x.Hot),
				ratio(div(x.Cold.MBPerSec, readMB(x.Hot))), gets, share, cache)
		}
	}
	for _, c := range r.Runs {
		for _, x := range []*Result{c.Eddy, c.Peer} {
			if x == nil {
				continue
			}
			row := []string{c.Workload.Name, x.Target, f1(x.MBPerSec), fmt.Sprintf("%.0f", x.RecordsPerSec),
				f1(x.ProduceLatency.P50), f1(x.ProduceLatency.P99), f1(x.ProduceLatency.P999)}
			if x.EndToEnd != nil {
				row = append(row, f1(x.EndToEnd.P50), f1(x.EndToEnd.P99), f1(x.EndToEnd.P999))
			} else {
				row = append(row, "–", "–", "–")
			}
			row = append(row, readCell(x.Cold), readCell(x.Hot))
			switch {
			case x.EndToEnd == nil:
				row = append(row, "–")
			case x.Complete:
				row = append(row, fmt.Sprintf("yes (%d)", x.Consumed))
			default:
				row = append(row, fmt.Sprintf("NO (%d of %d)", x.Consumed, x.Acked))
			}
			if x.Failed > 0 {
				row[len(row)-1] += fmt.Sprintf(", %d sends failed", x.Failed)
			}
			res.add(row...)
		}
		if c.Ratios != nil {
			q := c.Ratios
			rat.add(c.Workload.Name, ratio(q.Throughput), ratio(q.P50), ratio(q.P99), ratio(q.P999),
				ratio(q.E2EP50), ratio(q.E2EP99), ratio(q.ColdRead), ratio(q.HotRead), pctOr(c.OfLoopback), pctOr(c.OfDisk))
		}
		if k := c.Eddy.Cost; k != nil {
			gets, share := "–", "–"
			if c.Eddy.Cold != nil && c.Eddy.Cold.BucketShare >= 0 {
				gets, share = f1(c.Eddy.Cold.GetsPerGiB), pct(c.Eddy.Cold.BucketShare)
			}
			xact, wal := "–", "–"
			if k.PGXactsPerSec >= 0 {
				xact = f1(k.PGXactsPerSec)
			}
			if k.PGWALPerGiB >= 0 {
				wal = f1(k.PGWALPerGiB / (1 << 20))
			}
			cst.add(c.Workload.Name, f1(k.PutsPerSec), f1(k.PutsPerGiB), gets, share, xact, wal, f1(k.CPUSecPerGiB), f1(k.CPUCores), f1(k.FlushesPerSec), f1(k.FlushMs))
		}
	}
	var out []*table
	if len(res.rows) > 0 {
		out = append(out, res)
	}
	if r.Txn != nil {
		out = append(out, r.Txn.table())
	}
	if r.Share != nil {
		out = append(out, r.Share.table())
	}
	if r.Noisy != nil {
		out = append(out, r.Noisy.table())
		if t := r.Noisy.flushTable(); t != nil {
			out = append(out, t)
		}
	}
	if len(cold.rows) > 0 {
		out = append(out, cold)
	}
	if t := r.s3Table(); t != nil {
		out = append(out, t)
	}
	if len(r.Scale) > 0 {
		out = append(out, scaleTable(r.Scale))
	}
	if len(rat.rows) > 0 {
		out = append(out, rat)
	}
	if len(cst.rows) > 0 {
		out = append(out, cst)
	}
	if t := r.indexTable(); t != nil {
		out = append(out, t)
	}
	if r.Limits != nil {
		lim := &table{title: "Machine limits (same run)", header: []string{"limit", "MB/s"}}
		if len(r.Runs) > 0 {
			lim.add("Eddy's best produce rate in this run", f1(r.bestProduce()))
		}
		for size, v := range r.Limits.LoopbackMBps {
			lim.add(fmt.Sprintf("loopback TCP, one connection, %d B writes", size), f1(v))
		}
		lim.add("disk: sequential 1 MiB writes + fdatasync ("+r.Limits.DiskDir+")", f1(r.Limits.DiskMBps))
		out = append(out, lim)
	}
	wl := &table{title: "Workloads", header: []string{"workload", "definition"}, left: true}
	for _, c := range r.Runs {
		wl.add(c.Workload.Name, c.Workload.Describe()+", partitioner "+c.Workload.Partitioner)
	}
	if r.Txn != nil {
		wl.add(r.Txn.Scenario.Name, r.Txn.Scenario.Describe())
	}
	if r.Share != nil {
		wl.add(r.Share.Scenario.Name, r.Share.Scenario.Describe())
	}
	if r.Noisy != nil {
		wl.add(r.Noisy.Scenario.Name, r.Noisy.Scenario.Describe())
	}
	for _, s := range r.Scale {
		wl.add(s.Scenario.Name, s.Scenario.Describe())
	}
	return append(out, wl)
}

func (r *Report) bestProduce() float64 {
	best := 0.0
	for _, c := range r.Runs {
		best = max(best, c.Eddy.MBPerSec)
	}
	return best
}

// s3Table is the S3 run's table, nil without one.
func (r *Report) s3Table() *table {
	if r.S3 == nil {
		return nil
	}
	m := r.S3.Model
	t := &table{title: fmt.Sprintf("S3 run (brokers on moto_server behind a latency injector modelling %s: PUT p50 %v / p99 %v, GET first byte p50 %v / p99 %v; goal: acks=all produce p99 at most 150 ms)",
		m.Name, m.Write.P50, m.Write.P99, m.Read.P50, m.Read.P99),
		header: []string{"workload", "MB/s", "p50", "p99", "p99.9", "e2e p99", "PUTs/s", "mean flush ms", "injected PUT p50", "injected PUT p99", "injected GET p50", "injected GET p99"}}
	for _, c := range r.Runs {
		x := c.Eddy
		if !strings.HasPrefix(c.Workload.Name, S3Prefix) || x == nil {
			continue
		}
		e2e, puts, flush := "–", "–", "–"
		if x.EndToEnd != nil {
			e2e = f1(x.EndToEnd.P99)
		}
		if x.Cost != nil {
			puts, flush = f1(x.Cost.PutsPerSec), f1(x.Cost.FlushMs)
		}
		t.add(c.Workload.Name, f1(x.MBPerSec), f1(x.ProduceLatency.P50), f1(x.ProduceLatency.P99), f1(x.ProduceLatency.P999), e2e,
			puts, flush, f1(r.S3.Writes.P50), f1(r.S3.Writes.P99), f1(r.S3.Reads.P50), f1(r.S3.Reads.P99))
	}
	return t
}

const coldTitle = "Cold reads (the whole topic from the beginning, then the last 4 MiB per partition hot, four times; goal: cold / hot at least 0.5×, bucket share at most 110%)"

func pctOr(v float64) string {
	if v == 0 {
		return "–"
	}
	return pct(v)
}

func readCell(rr *ReadResult) string {
	if rr == nil || rr.Records == 0 {
		return "–"
	}
	return f1(rr.MBPerSec)
}

// sentence is what follows table t: the scenarios' results in a sentence.
func (r *Report) sentence(t *table) string {
	switch {
	case r.Txn != nil && strings.HasPrefix(t.title, txnTitle):
		return r.Txn.Sentence()
	case r.Share != nil && strings.HasPrefix(t.title, shareTitle):
		return r.Share.Sentence()
	case r.Noisy != nil && strings.HasPrefix(t.title, noisyTitle):
		return r.Noisy.Sentence()
	case len(r.Scale) > 0 && strings.HasPrefix(t.title, scaleTitle):
		var ss []string
		for _, s := range r.Scale {
			ss = append(ss, s.Sentence())
		}
		return strings.Join(ss, " ")
	}
	return ""
}

// WriteText writes the report as aligned tables.
func (r *Report) WriteText(w io.Writer) {
	for _, t := range r.tables() {
		t.text(w)
		if s := r.sentence(t); s != "" {
			fmt.Fprintf(w, "%s\n", s)
		}
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes docs/benchmarks.md: how it was run, on what, the
// tables and the charts (file names relative to the Markdown file).
func (r *Report) WriteMarkdown(w io.Writer, charts []string) {
	m := r.Machine
	fmt.Fprintf(w, `# Benchmarks

Generated by `+"`make bench`"+` on %s in %.0f s. Do not edit by hand: run `+"`make bench`"+` again.

Every workload runs first against Eddy (%d brokers started by the bench on this
machine, filesystem object store, a private Postgres) and then, in the same process
and run, against franz-go's in-memory `+"`kfake`"+` with as many brokers — the peer.
The peer keeps everything in memory and writes nothing anywhere, so it marks what a
Kafka-protocol server can do on this machine with this client; the ratios, not the
absolute figures, are the result (the machine is shared and noisy). The machine's
own limits — loopback TCP for the same record size and the disk's fsync'd
sequential write rate — are measured in the same run.

Command:

`+"```"+`
%s
`+"```"+`

Machine: %d CPUs (%s), %.1f GiB memory, Linux %s, %s. Load average (1 min)
at the start %.2f, at the end %.2f: other work on the machine shares the CPUs.

How to read it: produce latency is from the producer's send call to its ack
(acks=all: after the object PUT and the Postgres commit of the flush that carries
the record); end-to-end latency is from the send call to the delivery to a tailing
consumer. "cold" reads the whole topic back from the beginning, mostly from object
storage ("bucket share" is all the bucket GET bytes of the brokers during the
read, read-ahead and background compaction included, over the bytes read: above
100%% means the extra GETs cost more than the read itself); "hot" reads
the last 4 MiB of each partition, which the leaders keep in memory, four times
over; read rates run from the first records received to the last. The cold-read
workload writes a 2 GiB topic with nobody reading it and then reads it back so;
its bucket share is split into the brokers' read caches' GETs (the read path)
and the rest (compaction of the freshly written topic, which runs meanwhile).
The S3 run, when there is one, starts a second stack whose brokers keep their
objects in moto_server behind a latency injector that models S3 Standard, and
runs the workloads named s3-* on it (no kfake). Each scale run starts a stack
of its own, creates its partitions through the store, lets the pool settle, then
measures what the idle pool costs and the latency of Metadata. Cost figures
come from the brokers' /metrics and Postgres's pg_stat_database, before and after
each phase. The tailing consumer runs during every produce phase (as in the
OpenMessaging Benchmark), so produce throughput is with a consumer attached.
At the maximum rate, latency is mostly the time records wait in the producer's
buffer; the latency charts leave those workloads out. kfake runs inside the bench
process, so it shares that process's CPU with every client of both runs, while
Eddy's brokers are separate processes.

To measure a running `+"`eddy dev --anonymous`"+` (the bench connects without credentials) instead:

`+"```"+`
eddy bench --standard --bootstrap 127.0.0.1:9092 \
  --metrics http://127.0.0.1:9193/metrics,http://127.0.0.1:9194/metrics,http://127.0.0.1:9195/metrics \
  --database-url <the URL make dev prints>
`+"```"+`
`, r.Started.Format("2006-01-02 15:04 UTC"), r.Seconds, r.Brokers, r.Command, m.NProc, m.CPU, m.MemoryGiB, m.Kernel, m.Go, m.LoadStart, m.LoadEnd)
	for _, t := range r.tables() {
		t.markdown(w)
		if s := r.sentence(t); s != "" {
			fmt.Fprintf(w, "\n%s\n", s)
		}
	}
	if len(charts) > 0 {
		fmt.Fprintln(w, "\n### Charts")
		for _, c := range charts {
			fmt.Fprintf(w, "\n![%s](%s)\n", strings.TrimSuffix(c, ".png"), c)
		}
	}
}
