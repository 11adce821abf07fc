// Package bench is the engine behind `eddy bench`: OpenMessaging-style
// workloads run with franz-go against Eddy and, in the same run, against a
// peer (franz-go's in-memory kfake) and against the machine's own limits,
// so that every figure can be read as a ratio rather than an absolute
// number on a noisy, shared machine.
//
// One workload is: create a topic, let Producers clients produce records
// of RecordSize bytes for Duration (as fast as they can, or at Rate), with
// a tailing consumer reading every record as it is committed (end-to-end
// latency), then read the topic back from the beginning (mostly from
// object storage, "cold") and its recent tail (from the leaders' memory,
// "hot"). Run measures:
//
//	produce    records/s, MB/s, latency p50/p99/p999 (send to ack)
//	end-to-end latency p50/p99/p999 (send to delivery to the consumer)
//	consume    MB/s cold and hot, and the share of bytes read from the bucket
//	cost       object-store PUTs/GETs per GiB, Postgres transactions/s and
//	           broker CPU-seconds per GiB, from /metrics and pg_stat_database
//	limits     loopback TCP MB/s for RecordSize writes, fsync'd disk MB/s
//
// Three scenarios run after the workloads: transactions (Txn: committed
// throughput and commit latency, on Eddy and kfake), share groups (Share:
// KIP-932 consume throughput and acknowledgement latency with 1, 4 and 16
// consumers on one partition, next to a classic group on 16 partitions,
// on Eddy and kfake) and the noisy
// neighbour (Noisy: one tenant's latency while another saturates its
// quota, Eddy only). The cold-read workload (ColdRead) writes a topic of a
// set size with nobody reading and reads it back. The S3 run (StandardS3,
// StartS3Dev) runs workloads on brokers whose bucket is a moto_server
// behind a LatencyProxy that models S3 Standard.
//
// Every produced record carries its send time (nanoseconds) in a header,
// so end-to-end latency is not limited to Kafka's millisecond timestamps.
//
// Run is not safe to call concurrently with itself on the same targets:
// workloads run one after the other so they do not disturb each other.
package bench

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// MB is the unit of every throughput figure: 10^6 bytes, as in OMB.
const MB = 1e6

// GiB is the unit of the cost figures.
const GiB = 1 << 30

// Workload is one OMB-style workload.
type Workload struct {
	Name        string        `json:"name"`
	RecordSize  int           `json:"record_size"`            // bytes of value per record
	Partitions  int           `json:"partitions"`             // of the topic the workload creates
	Producers   int           `json:"producers"`              // producing clients
	Rate        float64       `json:"rate_mb_s"`              // target MB/s over all producers; 0: as fast as possible
	Duration    time.Duration `json:"duration"`               // of the produce phase
	Acks        string        `json:"acks"`                   // all, 1 or 0
	Compression string        `json:"compression"`            // none, gzip, snappy, lz4 or zstd
	Partitioner string        `json:"partitioner"`            // sticky (kgo's default) or round-robin
	Linger      time.Duration `json:"linger"`                 // producer linger
	MaxInflight int           `json:"max_inflight,omitempty"` // acks=1/0: produce requests in flight per broker (0: kgo's default, 1)
	Consume     bool          `json:"consume"`                // tailing consumer during the produce phase
	ReadBack    bool          `json:"read_back"`              // cold and hot reads after the produce phase
	// TopicBytes, if positive, ends the produce phase once the producers
	// sent this many value bytes (Duration still bounds it): the cold-read
	// workload writes a topic of a set size, then reads it back.
	TopicBytes int64 `json:"topic_bytes,omitempty"`
}

// RegisterFlags registers the flags of a single workload, with the
// defaults of the standard throughput workload.
func (w *Workload) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&w.Name, "name", "custom", "workload name in the report")
	fs.IntVar(&w.RecordSize, "record-size", 1024, "bytes per record value (random, incompressible)")
	fs.IntVar(&w.Partitions, "partitions", 16, "partitions of the benchmark topic")
	fs.IntVar(&w.Producers, "producers", 2, "producer clients")
	fs.Float64Var(&w.Rate, "rate", 0, "target produce rate in MB/s over all producers (0: as fast as possible)")
	fs.DurationVar(&w.Duration, "duration", 15*time.Second, "length of the produce phase")
	fs.StringVar(&w.Acks, "acks", "all", "producer acks: all, 1 or 0")
	fs.StringVar(&w.Compression, "compression", "none", "producer compression: none, gzip, snappy, lz4 or zstd")
	fs.StringVar(&w.Partitioner, "partitioner", "sticky", "sticky (kgo's default, one partition per batch) or round-robin (one record per partition in turn)")
	fs.DurationVar(&w.Linger, "linger", time.Millisecond, "producer linger (OMB's Kafka driver uses 1ms)")
	fs.IntVar(&w.MaxInflight, "max-inflight", 0, "produce requests in flight per broker for acks=1 and 0 (0: kgo's default, 1); with acks=all kgo's idempotent producer pipelines up to 5 by itself")
	fs.BoolVar(&w.Consume, "consume", true, "run a tailing consumer during the produce phase (end-to-end latency)")
	fs.BoolVar(&w.ReadBack, "read-back", true, "read the topic back afterwards: from the start (cold) and its recent tail (hot)")
	fs.Int64Var(&w.TopicBytes, "topic-bytes", 0, "stop producing once this many value bytes were sent (0: produce for --duration)")
}

// Validate reports the first invalid setting.
func (w Workload) Validate() error {
	switch {
	case w.Name == "" || strings.ContainsAny(w.Name, " \t/"):
		return fmt.Errorf("bench: workload name %q must be a non-empty word", w.Name)
	case w.RecordSize < 1 || w.RecordSize > 1<<20:
		return fmt.Errorf("bench: %s: record size must be 1 B to 1 MiB", w.Name)
	case w.Partitions < 1:
		return fmt.Errorf("bench: %s: partitions must be at least 1", w.Name)
	case w.Producers < 1:
		return fmt.Errorf("bench: %s: producers must be at least 1", w.Name)
	case w.Rate < 0:
		return fmt.Errorf("bench: %s: rate must not be negative", w.Name)
	case w.Duration < 100*time.Millisecond:
		return fmt.Errorf("bench: %s: duration must be at least 100ms", w.Name)
	case w.MaxInflight < 0 || w.MaxInflight > 1 && w.Acks == "all":
		return fmt.Errorf("bench: %s: max in-flight must be 0 or 1 with acks=all (kgo's idempotent producer pipelines up to 5 requests itself)", w.Name)
	case w.Linger < 0:
		return fmt.Errorf("bench: %s: linger must not be negative", w.Name)
	case w.TopicBytes < 0:
		return fmt.Errorf("bench: %s: topic bytes must not be negative", w.Name)
	}
	if _, err := acksOpt(w.Acks); err != nil {
		return fmt.Errorf("bench: %s: %w", w.Name, err)
	}
	if _, err := compressionOpt(w.Compression); err != nil {
		return fmt.Errorf("bench: %s: %w", w.Name, err)
	}
	if _, err := partitionerOpt(w.Partitioner); err != nil {
		return fmt.Errorf("bench: %s: %w", w.Name, err)
	}
	return nil
}

// Describe is a one-line summary for tables.
func (w Workload) Describe() string {
	rate := "max"
	if w.Rate > 0 {
		rate = fmt.Sprintf("%g MB/s", w.Rate)
	}
	d := fmt.Sprintf("%s records, %d partitions, %d producers, acks=%s, %s, %s, %s", fmtSize(w.RecordSize), w.Partitions, w.Producers, w.Acks, rate, w.Compression, w.Duration)
	if w.TopicBytes > 0 {
		d += fmt.Sprintf(" at most, a %.2f GiB topic", float64(w.TopicBytes)/GiB)
	}
	if !w.Consume {
		d += ", no tailing consumer"
	}
	return d
}

func fmtSize(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// Standard is the set `make bench` runs: the three workloads plus
// the latency workload at the other acks levels and the cold read;
// StandardNoisy runs after them. scale multiplies every duration and the
// cold read's topic size (the test uses a small one).
func Standard(scale float64) []Workload {
	d := func(s float64) time.Duration { return time.Duration(s * scale * float64(time.Second)) }
	base := Workload{RecordSize: 1024, Partitions: 16, Producers: 2, Acks: "all", Compression: "none",
		Partitioner: "sticky", Linger: time.Millisecond, Consume: true, ReadBack: true}
	tput := base
	tput.Name, tput.Duration = "max-throughput", d(12)
	var out = []Workload{tput}
	for _, acks := range []string{"all", "1", "0"} {
		lat := base
		lat.Name, lat.Rate, lat.Duration, lat.Acks = "latency-10MBps-acks-"+acks, 10, d(15), acks
		lat.ReadBack = false
		out = append(out, lat)
	}
	objs := base
	objs.Name, objs.Partitions, objs.Rate, objs.Duration = "objstore-1000-partitions", 1000, 1, d(30)
	objs.Partitioner, objs.Producers, objs.ReadBack = "round-robin", 1, false
	out = append(out, objs)
	out = append(out, ColdRead(scale))
	return out
}

// ColdReadName names the cold-read workload.
const ColdReadName = "cold-read-2GiB"

// ColdRead writes a 2 GiB topic (times scale) as fast as it can with
// nobody reading it, then reads it back from the beginning (cold: from
// the object store, through the brokers' read caches) while nothing else
// runs, and then its last 4 MiB per partition (hot: from the leaders'
// memory). Its figures are the cold/hot ratio, GETs per GiB and the
// bucket share of the cold read.
func ColdRead(scale float64) Workload {
	return Workload{Name: ColdReadName, RecordSize: 1024, Partitions: 16, Producers: 2, Acks: "all",
		Compression: "none", Partitioner: "sticky", Linger: time.Millisecond, ReadBack: true,
		Duration:   time.Duration(120 * scale * float64(time.Second)),
		TopicBytes: int64(2 * GiB * scale)}
}

// Set is what one run measures: the workloads one after the other, then
// the transactions scenario, then the noisy-neighbour scenario (nil: not
// run), then the S3 workloads, on a stack of their own whose brokers use
// S3 through a latency injector (StartS3Dev).
type Set struct {
	Workloads []Workload
	Txn       *Txn
	Share     *Share
	Noisy     *Noisy
	S3        []Workload
}

// StandardSet is the set `make bench` runs: Standard, StandardTxn,
// StandardShare, StandardNoisy and StandardS3.
func StandardSet(scale float64) Set {
	txn, share, noisy := StandardTxn(scale), StandardShare(scale), StandardNoisy(scale)
	return Set{Workloads: Standard(scale), Txn: &txn, Share: &share, Noisy: &noisy, S3: StandardS3(scale)}
}

// S3Prefix starts the names of workloads run on the S3 stack.
const S3Prefix = "s3-"

// StandardS3 is what the S3 run measures: the 10 MB/s acks=all latency
// workload, whose produce p99 through S3 Standard's latency the issue
// bounds (150 ms).
func StandardS3(scale float64) []Workload {
	var out []Workload
	for _, w := range Standard(scale) {
		if w.Name == "latency-10MBps-acks-all" {
			w.Name = S3Prefix + w.Name
			out = append(out, w)
		}
	}
	return out
}

// Only keeps the workloads and scenarios of s that names lists; a name
// that matches none is an error.
func (s Set) Only(names []string) (Set, error) {
	var out Set
	for _, name := range names {
		found := false
		for _, w := range s.Workloads {
			if w.Name == name {
				out.Workloads, found = append(out.Workloads, w), true
			}
		}
		if s.Txn != nil && s.Txn.Name == name {
			out.Txn, found = s.Txn, true
		}
		if s.Share != nil && s.Share.Name == name {
			out.Share, found = s.Share, true
		}
		if s.Noisy != nil && s.Noisy.Name == name {
			out.Noisy, found = s.Noisy, true
		}
		for _, w := range s.S3 {
			if w.Name == name {
				out.S3, found = append(out.S3, w), true
			}
		}
		if !found {
			return Set{}, fmt.Errorf("bench: no workload %q in the set (%s)", name, strings.Join(s.names(), ", "))
		}
	}
	return out, nil
}

func (s Set) names() []string {
	var known []string
	for _, w := range s.Workloads {
		known = append(known, w.Name)
	}
	if s.Txn != nil {
		known = append(known, s.Txn.Name)
	}
	if s.Share != nil {
		known = append(known, s.Share.Name)
	}
	if s.Noisy != nil {
		known = append(known, s.Noisy.Name)
	}
	for _, w := range s.S3 {
		known = append(known, w.Name)
	}
	return known
}

// Config is everything one Run needs.
type Config struct {
	Bootstrap   []string      // Eddy brokers
	Metrics     []string      // brokers' /metrics URLs, for the cost figures (optional)
	DatabaseURL string        // Eddy's Postgres, for transactions/s (optional)
	Peer        bool          // run every workload against kfake too
	Limits      bool          // measure loopback TCP and fsync'd disk throughput
	LimitsDir   string        // where the disk test writes (default: the OS temp dir)
	LimitTime   time.Duration // of each limit measurement (default 3s)
	Workloads   []Workload    // run in order
	Txn         *Txn          // the transactions scenario, after the workloads (and against the peer)
	Share       *Share        // the share-group scenario, after the transactions (and against the peer)
	Noisy       *Noisy        // the noisy-neighbour scenario, last (needs DatabaseURL)
	Scale       *Scale        // the scale scenario, after everything else (needs DatabaseURL and Metrics)
	// Worker starts a worker process (argv): `eddy bench-worker`, or a
	// test binary that runs Worker. Needed by Noisy.NoisyProcess.
	Worker   []string
	Progress func(line string)
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if len(c.Bootstrap) == 0 {
		return errors.New("bench: no Eddy bootstrap brokers (--bootstrap or --start-stack)")
	}
	if len(c.Workloads) == 0 && c.Txn == nil && c.Share == nil && c.Noisy == nil && c.Scale == nil {
		return errors.New("bench: no workloads")
	}
	if c.Txn != nil {
		if err := c.Txn.Validate(); err != nil {
			return err
		}
	}
	if c.Share != nil {
		if err := c.Share.Validate(); err != nil {
			return err
		}
	}
	if c.Noisy != nil {
		if err := c.Noisy.Validate(); err != nil {
			return err
		}
		if c.Noisy.NoisyProcess && len(c.Worker) == 0 {
			return fmt.Errorf("bench: %s runs tenant A in a worker process: no worker command", c.Noisy.Name)
		}
		if c.DatabaseURL == "" {
			return fmt.Errorf("bench: %s creates its two tenants in Eddy's database: --database-url or --start-stack", c.Noisy.Name)
		}
	}
	if c.Scale != nil {
		if err := c.Scale.Validate(); err != nil {
			return err
		}
		if c.DatabaseURL == "" || len(c.Metrics) == 0 {
			return fmt.Errorf("bench: %s creates its clusters in Eddy's database and reads the brokers' metrics: --database-url and --metrics, or --start-stack", c.Scale.Name)
		}
	}
	seen := map[string]bool{}
	for _, w := range c.Workloads {
		if err := w.Validate(); err != nil {
			return err
		}
		if seen[w.Name] {
			return fmt.Errorf("bench: workload %q twice", w.Name)
		}
		seen[w.Name] = true
	}
	return nil
}
