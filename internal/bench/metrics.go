package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
)

// counters is a snapshot of the brokers' counters the cost figures need,
// summed over every broker, and Postgres's committed transactions.
type counters struct {
	at       time.Time
	ok       bool    // metrics were scraped
	puts     float64 // eddy_objstore_requests_total{op="put"}
	gets     float64 // op get and get_range
	getBytes float64 // eddy_objstore_bytes_total{op=get|get_range}
	// readGetBytes is eddy_remote_get_bytes_total, the GET bytes of the
	// brokers' read caches (reads for consumers); -1 if no broker has it.
	readGetBytes float64
	cpu          float64 // process_cpu_seconds_total
	flushSum     float64 // eddy_flush_seconds_sum
	flushN       float64 // eddy_flush_seconds_count
	flushB       float64 // eddy_flush_bytes_sum
	rss          float64 // process_resident_memory_bytes
	heap         float64 // go_memstats_heap_inuse_bytes
	led          float64 // eddy_partitions_led
	xacts        float64 // pg_stat_database.xact_commit; -1 unknown
	walBytes     float64 // pg_stat_wal.wal_bytes; -1 unknown
	// remote sums the read path's byte counters named in remoteCounters,
	// for the cold read's breakdown of the bucket bytes.
	remote map[string]float64
}

// remoteCounters are the read path's counters whose differences explain
// the bucket bytes of a cold read (readBreakdown).
var remoteCounters = []string{"eddy_remote_read_bytes_total", "eddy_remote_first_read_bytes_total",
	"eddy_remote_get_again_bytes_total", "eddy_remote_skipped_bytes_total", "eddy_compaction_bytes_total"}

// snapshot scrapes every metrics URL of tg (nothing for the peer).
func snapshot(ctx context.Context, tg target) (counters, error) {
	c := counters{at: time.Now(), xacts: -1, walBytes: -1, readGetBytes: -1, remote: map[string]float64{}}
	if len(tg.metrics) == 0 {
		return c, nil
	}
	for _, u := range tg.metrics {
		samples, err := scrape(ctx, u)
		if err != nil {
			return c, err
		}
		for _, s := range samples {
			switch s.name {
			case "eddy_objstore_requests_total":
				switch s.labels["op"] {
				case "put":
					c.puts += s.value
				case "get", "get_range":
					c.gets += s.value
				}
			case "eddy_objstore_bytes_total":
				if op := s.labels["op"]; op == "get" || op == "get_range" {
					c.getBytes += s.value
				}
			case "eddy_remote_get_bytes_total":
				c.readGetBytes = max(c.readGetBytes, 0) + s.value
			case "process_cpu_seconds_total":
				c.cpu += s.value
			case "eddy_flush_seconds_sum":
				c.flushSum += s.value
			case "eddy_flush_seconds_count":
				c.flushN += s.value
			case "eddy_flush_bytes_sum":
				c.flushB += s.value
			case "process_resident_memory_bytes":
				c.rss += s.value
			case "go_memstats_heap_inuse_bytes":
				c.heap += s.value
			case "eddy_partitions_led":
				c.led += s.value
			}
			if slices.Contains(remoteCounters, s.name) {
				c.remote[s.name] += s.value
			}
		}
	}
	c.ok = true
	if tg.dbURL != "" {
		x, wal, err := pgCounters(ctx, tg.dbURL)
		if err != nil {
			return c, err
		}
		c.xacts, c.walBytes = x, wal
	}
	return c, nil
}

// pgCounters is the committed transactions of the database of url (the
// query's own transaction adds one per call, which is noise) and the
// bytes its server wrote to its WAL (-1 if it cannot tell).
func pgCounters(ctx context.Context, url string) (xacts, walBytes float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, url, 1)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: postgres: %w", err)
	}
	defer st.Close()
	n, err := st.CommittedTransactions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: %w", err)
	}
	wal, err := st.WALBytes(ctx)
	if err != nil {
		wal = -1 // before Postgres 14, or not allowed: the column shows –
	}
	return float64(n), float64(wal), nil
}

// cost turns two snapshots around the produce phase into the cost figures.
func cost(a, b counters, res *Result, recordSize int) *Cost {
	if !a.ok || !b.ok {
		return nil
	}
	gib := float64(res.Acked) * float64(recordSize) / GiB
	secs := b.at.Sub(a.at).Seconds()
	c := &Cost{
		PutsPerSec:    (b.puts - a.puts) / secs,
		PutsPerGiB:    perGiB(b.puts-a.puts, gib),
		GetsPerGiB:    perGiB(b.gets-a.gets, gib),
		PGXactsPerSec: -1,
		PGWALPerGiB:   -1,
		CPUSecPerGiB:  perGiB(b.cpu-a.cpu, gib),
		CPUCores:      (b.cpu - a.cpu) / secs,
		FlushesPerSec: (b.flushN - a.flushN) / secs,
	}
	if n := b.flushN - a.flushN; n > 0 {
		c.FlushMs = 1000 * (b.flushSum - a.flushSum) / n
	}
	if a.xacts >= 0 && b.xacts >= 0 {
		c.PGXactsPerSec = (b.xacts - a.xacts) / secs
	}
	if a.walBytes >= 0 && b.walBytes >= 0 {
		c.PGWALPerGiB = perGiB(b.walBytes-a.walBytes, gib)
	}
	return c
}

// Flushes are the brokers' flushes between two snapshots, over all brokers.
type Flushes struct {
	PerSec   float64 `json:"flushes_per_sec"`
	MeanMs   float64 `json:"flush_mean_ms"`    // to PUT and commit one flush
	MeanKiB  float64 `json:"flush_mean_kib"`   // record batches per flushed object
	CPUCores float64 `json:"broker_cpu_cores"` // CPU-seconds per second
}

// flushes is nil without metrics.
func flushes(a, b counters) *Flushes {
	if !a.ok || !b.ok {
		return nil
	}
	secs := b.at.Sub(a.at).Seconds()
	f := &Flushes{PerSec: (b.flushN - a.flushN) / secs, CPUCores: (b.cpu - a.cpu) / secs}
	if n := b.flushN - a.flushN; n > 0 {
		f.MeanMs = 1000 * (b.flushSum - a.flushSum) / n
		f.MeanKiB = (b.flushB - a.flushB) / n / 1024
	}
	return f
}

func perGiB(n, gib float64) float64 {
	if gib <= 0 {
		return 0
	}
	return n / gib
}

// readBreakdown says where the bucket bytes between two snapshots around
// a read of bytes went, each as a share of bytes: what the read caches
// fetched (returned to the leaders for the first time, fetched again
// after eviction, the rest fetched and never read), what the leaders read
// below the offsets asked for, and the other GETs (compaction's).
func readBreakdown(a, b counters, bytes int64) string {
	if !a.ok || !b.ok || bytes == 0 || a.readGetBytes < 0 {
		return ""
	}
	d := func(name string) float64 { return (b.remote[name] - a.remote[name]) / float64(bytes) }
	caches := (b.readGetBytes - a.readGetBytes) / float64(bytes)
	first, again := d("eddy_remote_first_read_bytes_total"), d("eddy_remote_get_again_bytes_total")
	return fmt.Sprintf("bucket %s of the bytes read: read caches %s (first read %s, fetched again %s, not read %s; "+
		"leaders returned %s, skipping %s below the offsets asked), other GETs %s (compaction merged %s)",
		pct((b.getBytes-a.getBytes)/float64(bytes)), pct(caches), pct(first), pct(again), pct(caches-first-again),
		pct(d("eddy_remote_read_bytes_total")), pct(d("eddy_remote_skipped_bytes_total")),
		pct((b.getBytes-a.getBytes)/float64(bytes)-caches), pct(d("eddy_compaction_bytes_total")))
}

// bucketRead fills the object-store share of a read from two snapshots.
func bucketRead(rr *ReadResult, a, b counters) {
	if rr == nil || !a.ok || !b.ok || rr.Bytes == 0 {
		return
	}
	rr.BucketShare = (b.getBytes - a.getBytes) / float64(rr.Bytes)
	if a.readGetBytes >= 0 && b.readGetBytes >= 0 {
		rr.CacheShare = (b.readGetBytes - a.readGetBytes) / float64(rr.Bytes)
	}
	rr.GetsPerGiB = perGiB(b.gets-a.gets, float64(rr.Bytes)/GiB)
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape fetches a Prometheus text exposition and returns its samples.
func scrape(ctx context.Context, url string) ([]sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: scrape %s: %s", url, resp.Status)
	}
	return parseText(resp.Body)
}

// parseText parses the Prometheus text format, enough for counters and
// gauges: `name{a="b",c="d"} value [timestamp]`.
func parseText(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i < 0 {
			continue
		} else if line[i] == '{' {
			s.name = line[:i]
			rest = line[i+1:]
			for {
				rest = strings.TrimLeft(rest, ", ")
				if strings.HasPrefix(rest, "}") {
					rest = rest[1:]
					break
				}
				eq := strings.Index(rest, `="`)
				if eq < 0 {
					return nil, fmt.Errorf("bench: bad metrics line %q", line)
				}
				key := rest[:eq]
				rest = rest[eq+2:]
				var val strings.Builder
				j := 0
				for ; j < len(rest) && rest[j] != '"'; j++ {
					if rest[j] == '\\' && j+1 < len(rest) {
						j++
					}
					val.WriteByte(rest[j])
				}
				if j >= len(rest) {
					return nil, fmt.Errorf("bench: bad metrics line %q", line)
				}
				s.labels[key] = val.String()
				rest = rest[j+1:]
			}
		} else {
			s.name = line[:i]
			rest = line[i:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("bench: bad metrics line %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("bench: bad metrics value in %q", line)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}
