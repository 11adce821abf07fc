// Package leader runs the partitions a broker leads: it accepts produced
// record batches (idempotence checks, offset assignment by patching the
// batch header, append to the local WAL), flushes every partition's new
// batches at most once per flush interval, commits them and the new high
// watermarks in one Postgres statement fenced by leader epoch, and serves
// reads of committed data from a local cache, from object storage through
// the index, or from the inline rows not yet uploaded.
//
// Write path (DESIGN.md):
//
//	produce ─▶ Partition.Append ─▶ WAL (acks=1 answered) ─▶ pending
//	flusher, at most once per FlushInterval (sooner at FlushBytes):
//	   take pending of every dirty partition
//	   ─▶ up to InlineMaxBytes: store.Commit with the batches inline
//	      (one Postgres round trip, no PUT)
//	   ─▶ larger: one object ─▶ Bucket.Put ─▶ store.Commit of its index rows
//	   (either way the hw moves only if the leader epoch still matches)
//	   ─▶ Partition.committed (acks=all answered, consumers see it)
//	uploader (uploader.go), once UploadBytes wait or after UploadAge:
//	   the led partitions' inline rows ─▶ one object ─▶ Bucket.Put
//	   ─▶ store.MoveInline (index rows in, inline rows out)
//
// Inline is a trade of Postgres bytes for PUTs: at low load the object
// store sees one PUT per broker per UploadAge instead of one per flush,
// and acks=all waits for no PUT; Postgres carries every small flush's
// bytes once in its WAL and holds them for about UploadAge.
//
// A partition whose commit is fenced is dropped at once; its waiting
// producers get ErrNotLeader, never a success. A failed Put or commit puts
// the batches back and is retried on the next tick.
//
// All methods are safe for concurrent use. Run owns the flusher, the
// uploader and the replica poller (replica.go); when its context ends it
// stops the uploader and the poller, flushes once more and returns.
package leader

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-streams/eddy/data-plane/wal"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/object"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// Config tunes a broker's partitions. Start from DefaultConfig.
type Config struct {
	// BrokerID is the broker's id; the broker sets it from its own.
	BrokerID int32
	// FlushInterval is the longest a produced batch waits before it is
	// written to object storage; acks=all latency is about half of it plus
	// one PUT and one commit.
	FlushInterval time.Duration
	// FlushBytes starts a flush early once this much is pending.
	FlushBytes int64
	// InlineMaxBytes is the largest flush committed inline: its batches go
	// into Postgres with the commit that moves the high watermarks, and
	// acks=all waits for that commit and no PUT; the uploader moves them
	// into an object later (uploader.go). A larger flush is PUT as an
	// object of its own. 0 PUTs every flush (an object per interval: the
	// lowest Postgres load, the most PUTs).
	InlineMaxBytes int64
	// UploadBytes and UploadAge say when the uploader writes the inline
	// data of the partitions led here as one object: once this many bytes
	// wait, or once the oldest has waited this long. The age bounds the
	// PUTs per second at low load (one per broker per UploadAge); the
	// bytes bound the object's size, and what Postgres holds, at high load.
	UploadBytes int64
	UploadAge   time.Duration
	// CacheBytes bounds each partition's in-memory cache of recent
	// committed batches; older reads go to object storage.
	CacheBytes int
	// WALDir holds the write-ahead log.
	WALDir string
	// WAL configures the write-ahead log. Its Sync policy applies to
	// acks=1 data (acks=all needs none: object storage is the durability
	// point). Segments roll at flushes rather than inside Append: once the
	// current segment holds WAL.SegmentBytes, the next flush starts a new
	// one, and segments whose data is all committed are deleted.
	WAL wal.Options
	// Remote, if set, serves reads of data older than the in-memory cache
	// (through a bounded local cache); nil reads the bucket directly.
	Remote RangeReader
	// ReplicaInterval bounds how stale the committed offsets of a
	// partition this broker serves reads of without leading it (zone-aware
	// fetch, replica.go) may be: a replica read re-reads them when older,
	// and long polls on such partitions are woken by a poll at this
	// period. It is also the most a replica lags its leader.
	ReplicaInterval time.Duration
	// ProducerIDExpiration is how long an idempotent producer's state
	// outlives its last write, in memory and in Postgres (Kafka's
	// producer.id.expiration.ms, 1 day); a producer that writes again
	// after it starts over at sequence 0 or gets OUT_OF_ORDER_SEQUENCE.
	ProducerIDExpiration time.Duration
}

// DefaultConfig returns the defaults the flags start from. WALDir has
// none: the broker puts it under its data directory.
func DefaultConfig() Config {
	return Config{
		FlushInterval:  25 * time.Millisecond,
		FlushBytes:     8 << 20,
		InlineMaxBytes: 1 << 20,
		UploadBytes:    4 << 20,
		UploadAge:      time.Second,
		CacheBytes:     8 << 20,

		ReplicaInterval: 25 * time.Millisecond,
		WAL:             wal.DefaultOptions(),

		ProducerIDExpiration: 24 * time.Hour,
	}
}

// RegisterFlags registers the partitions' flags, the WAL's among them, on
// fs with the defaults of DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.FlushInterval, "flush-interval", d.FlushInterval, "longest a produced batch waits for the object-store flush")
	fs.Int64Var(&c.FlushBytes, "flush-bytes", d.FlushBytes, "pending bytes that start a flush early")
	fs.Int64Var(&c.InlineMaxBytes, "inline-max-bytes", d.InlineMaxBytes, "largest flush committed inline in Postgres and uploaded later in a larger object (0: PUT an object every flush)")
	fs.Int64Var(&c.UploadBytes, "inline-upload-bytes", d.UploadBytes, "inline bytes that make the uploader write them as one object")
	fs.DurationVar(&c.UploadAge, "inline-upload-age", d.UploadAge, "longest inline data waits before the uploader writes it as an object")
	fs.IntVar(&c.CacheBytes, "cache-bytes", d.CacheBytes, "in-memory cache of recent committed data per partition")
	fs.StringVar(&c.WALDir, "wal-dir", d.WALDir, "write-ahead log directory (default: <data-dir>/wal)")
	c.WAL.RegisterFlags(fs)
	fs.DurationVar(&c.ReplicaInterval, "replica-read-interval", d.ReplicaInterval, "how often committed offsets are re-read from Postgres for partitions this broker serves zone-local reads of without leading them")
	fs.DurationVar(&c.ProducerIDExpiration, "producer-id-expiration", d.ProducerIDExpiration, "how long an idempotent producer's state is kept after its last write (Kafka's producer.id.expiration.ms)")
}

// Validate reports a configuration Open cannot work with, naming the flag.
func (c *Config) Validate() error {
	switch {
	case c.FlushInterval <= 0:
		return fmt.Errorf("leader: --flush-interval must be positive, got %s", c.FlushInterval)
	case c.FlushBytes <= 0:
		return fmt.Errorf("leader: --flush-bytes must be positive, got %d", c.FlushBytes)
	case c.InlineMaxBytes < 0:
		return fmt.Errorf("leader: --inline-max-bytes must not be negative, got %d", c.InlineMaxBytes)
	case c.InlineMaxBytes > 0 && c.UploadBytes <= 0:
		return fmt.Errorf("leader: --inline-upload-bytes must be positive, got %d", c.UploadBytes)
	case c.InlineMaxBytes > 0 && c.UploadAge <= 0:
		return fmt.Errorf("leader: --inline-upload-age must be positive, got %s", c.UploadAge)
	case c.ReplicaInterval <= 0:
		return fmt.Errorf("leader: --replica-read-interval must be positive, got %s", c.ReplicaInterval)
	case c.CacheBytes <= 0:
		return fmt.Errorf("leader: --cache-bytes must be positive, got %d", c.CacheBytes)
	case c.ProducerIDExpiration <= 0:
		return fmt.Errorf("leader: --producer-id-expiration must be positive, got %s", c.ProducerIDExpiration)
	case c.WALDir == "":
		return errors.New("leader: a WAL directory (--wal-dir) is required")
	case c.WAL.SegmentBytes <= 0:
		// The flusher rolls segments itself, so wal's "zero means the
		// default" does not apply.
		return fmt.Errorf("leader: --wal-segment-bytes must be positive, got %d", c.WAL.SegmentBytes)
	}
	if err := c.WAL.Validate(); err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	return nil
}

// Manager owns the partitions a broker leads.
type Manager struct {
	cfg    Config
	store  *store.Store
	bucket bucket.Bucket
	wal    *wal.WAL
	log    *slog.Logger
	bootID string
	objSeq atomic.Uint64

	mu     sync.RWMutex
	parts  map[int64]*Partition
	replay map[int64][]wal.Entry // WAL entries awaiting the first Sync
	synced bool

	dirtyMu      sync.Mutex
	dirty        map[int64]*Partition
	pendingBytes atomic.Int64
	kick         chan struct{} // something is pending
	full         chan struct{} // FlushBytes are pending

	flushMu      sync.Mutex // one flush at a time
	lastRotation wal.Segment
	staleWAL     bool // segments from before the restart still exist

	met     metrics
	prodMet producerMetrics // producers.go
	up      *uploads        // uploader.go

	replicas *replicas // partitions read here without being led here (replica.go)

	noDedupe bool   // EnvUnsafeNoDedupe: tests of the fault-injection checker only
	crashAt  string // EnvCrashAfterPut's trigger file: fault-injection tests only
}

type metrics struct {
	flushes      *prometheus.CounterVec
	flushBytes   prometheus.Histogram
	flushSeconds prometheus.Histogram
	fenced       prometheus.Counter
	pending      prometheus.GaugeFunc
	led          prometheus.GaugeFunc
	// skipped counts bytes of old data read for a fetch that lay below
	// the offset it asked for: a row read again from its start.
	skipped prometheus.Counter
}

// Open opens the WAL in cfg.WALDir and reads whatever a previous run left
// in it; those batches are re-appended when Sync hands their partitions
// back to this broker under the same leader epoch, and dropped otherwise.
func Open(cfg Config, st *store.Store, bkt bucket.Bucket, log *slog.Logger, reg prometheus.Registerer) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The flusher decides when segments roll (see Flush), so the WAL's own
	// size-based rotation is turned off.
	w, err := wal.Open(cfg.WALDir, wal.Options{SegmentBytes: 1 << 62, Sync: cfg.WAL.Sync})
	if err != nil {
		return nil, err
	}
	var boot [6]byte
	_, _ = rand.Read(boot[:])
	m := &Manager{
		cfg: cfg, store: st, bucket: bkt, wal: w, log: log,
		bootID: hex.EncodeToString(boot[:]),
		parts:  map[int64]*Partition{}, replay: map[int64][]wal.Entry{},
		dirty: map[int64]*Partition{}, kick: make(chan struct{}, 1), full: make(chan struct{}, 1),
		noDedupe: unsafeNoDedupe(log),
		crashAt:  crashAfterPutTrigger(log, cfg.BrokerID),
	}
	n := 0
	if err := w.Replay(func(e wal.Entry) error {
		m.replay[e.PartitionID] = append(m.replay[e.PartitionID], e)
		n++
		return nil
	}); err != nil {
		w.Close()
		return nil, err
	}
	if n > 0 {
		log.Info("wal holds batches from a previous run", "batches", n, "partitions", len(m.replay))
		m.staleWAL = true
		if m.lastRotation, err = w.Rotate(); err != nil {
			w.Close()
			return nil, err
		}
	}
	m.initMetrics(reg)
	m.initProducerMetrics(reg)
	m.up = newUploads(cfg.UploadBytes, reg)
	m.replicas = newReplicas(reg)
	return m, nil
}

func (m *Manager) initMetrics(reg prometheus.Registerer) {
	m.met = metrics{
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_flushes_total", Help: "Flushes to object storage by outcome."}, []string{"outcome"}),
		flushBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eddy_flush_bytes", Help: "Bytes of record batches per flushed object.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10)}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eddy_flush_seconds", Help: "Time to PUT and commit one flush.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_commit_fenced_total", Help: "Partition commits refused because a newer leader epoch exists."}),
		pending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eddy_pending_bytes", Help: "Produced bytes not yet committed to object storage."},
			func() float64 { return float64(m.pendingBytes.Load()) }),
		led: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eddy_partitions_led", Help: "Partitions this broker leads."},
			func() float64 { m.mu.RLock(); defer m.mu.RUnlock(); return float64(len(m.parts)) }),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_remote_skipped_bytes_total",
			Help: "Bytes of old data read for fetches that lay below the offset asked for (index rows read again from their start, as after a compaction swap)."}),
	}
	if reg != nil {
		reg.MustRegister(m.met.flushes, m.met.flushBytes, m.met.flushSeconds, m.met.fenced, m.met.pending, m.met.led, m.met.skipped)
	}
}

// Partition returns the led partition with that id, or nil.
func (m *Manager) Partition(id int64) *Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.parts[id]
}

// Led returns the ids of the partitions led here.
func (m *Manager) Led() []int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := make([]int64, 0, len(m.parts))
	for id := range m.parts {
		ids = append(ids, id)
	}
	return ids
}

// Sync makes the led set equal to want (partition id → leader epoch, from
// the metadata snapshot): partitions no longer assigned, or reassigned
// under a newer epoch, are dropped; new ones are loaded from Postgres and
// start at the committed high watermark (plus any replayed WAL batches).
func (m *Manager) Sync(ctx context.Context, want map[int64]int32) error {
	var drop []*Partition
	m.mu.Lock()
	for id, p := range m.parts {
		if e, ok := want[id]; !ok || e != p.Epoch || p.Lost() {
			drop = append(drop, p)
			delete(m.parts, id)
		}
	}
	var add []int64
	for id := range want {
		if _, ok := m.parts[id]; !ok {
			add = append(add, id)
		}
	}
	m.mu.Unlock()
	for _, p := range drop {
		p.lose()
		m.up.forget(p.ID)
		m.log.Info("partition released", "partition", p.ID, "epoch", p.Epoch)
	}

	var firstErr error
	for _, id := range add {
		st, err := m.store.LoadPartition(ctx, id, time.Now().Add(-m.cfg.ProducerIDExpiration))
		if err != nil {
			firstErr = err
			continue
		}
		if st.LeaderID != m.cfg.BrokerID || st.LeaderEpoch != want[id] {
			continue // moved again since the snapshot; the next Sync catches up
		}
		p := newPartition(m, id, st)
		queued, err := m.loadTxn(ctx, p)
		if err != nil {
			firstErr = err
			continue
		}
		m.replayInto(p, queued)
		m.mu.Lock()
		m.parts[id] = p
		m.mu.Unlock()
		if st.InlineBytes > 0 {
			// Left inline by the previous leader: this one uploads it.
			m.up.added(id, st.InlineBytes, time.Now())
		}
		// Markers left by the previous leader (or queued meanwhile).
		m.writeMarkers(ctx, queued)
		m.log.Debug("partition acquired", "partition", id, "epoch", p.Epoch, "hw", st.HighWatermark)
	}
	if firstErr == nil && !m.synced {
		// Every replayed entry has been adopted or is for a partition this
		// broker no longer leads.
		m.mu.Lock()
		m.synced, m.replay = true, nil
		m.mu.Unlock()
	}
	return firstErr
}

// replayInto re-appends the WAL batches a previous run left for p, if p is
// led under the epoch they were written in and they continue its log
// exactly at the committed high watermark. A replayed marker must match one
// still queued for p.
func (m *Manager) replayInto(p *Partition, queued []store.TxnMarker) {
	m.mu.Lock()
	es := m.replay[p.ID]
	delete(m.replay, p.ID)
	m.mu.Unlock()
	if len(es) == 0 {
		return
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].BaseOffset < es[j].BaseOffset })
	n := 0
	for _, e := range es {
		if e.LeaderEpoch != p.Epoch || e.BaseOffset < p.next {
			continue
		}
		if e.BaseOffset != p.next {
			break
		}
		hdrs, err := batch.ValidateWritten(e.Data)
		if err != nil {
			m.log.Warn("dropping corrupt replayed batch", "partition", p.ID, "offset", e.BaseOffset, "err", err)
			break
		}
		if len(hdrs) == 1 && hdrs[0].Control() {
			if !p.replayMarker(e.Data, hdrs[0], queued) {
				m.log.Warn("replayed marker is no longer queued", "partition", p.ID, "offset", e.BaseOffset)
				break
			}
			n++
			continue
		}
		// Its transactional batches were checked when first appended.
		if _, err := p.AppendTxn(e.Data, hdrs, false, p.replayGuard(hdrs)); err != nil {
			m.log.Warn("replayed batch rejected", "partition", p.ID, "offset", e.BaseOffset, "err", err)
			break
		}
		n++
	}
	if n > 0 {
		m.log.Info("replayed wal", "partition", p.ID, "batches", n, "next_offset", p.next)
	}
}

func (m *Manager) markDirty(p *Partition, n int) {
	m.dirtyMu.Lock()
	m.dirty[p.ID] = p
	m.dirtyMu.Unlock()
	m.signal(m.kick)
	if m.pendingBytes.Add(int64(n)) >= m.cfg.FlushBytes {
		m.signal(m.full)
	}
}

// flushTimeout bounds one flush (PUT and commit) that Run started, and
// the final flush when Run stops.
const flushTimeout = 10 * time.Second

// Run flushes until ctx ends, then flushes what is left (with a bounded
// grace period) and returns. It owns the uploader of inline data
// (uploader.go), which it stops and waits for before the final flush:
// inline data is durable, so what is left waits for the next leader.
//
// Scheduling: a flush starts as soon as data is pending and the previous
// flush started at least FlushInterval ago — so object-store PUTs never
// exceed one per interval (except when FlushBytes is reached), yet a lone
// produce on an idle broker waits only for one PUT and one commit rather
// than for the next tick.
func (m *Manager) Run(ctx context.Context) error {
	upCtx, stopUploader := context.WithCancel(ctx)
	uploaderDone := make(chan struct{})
	go func() {
		defer close(uploaderDone)
		m.runUploader(upCtx)
	}()
	replicasDone := make(chan struct{})
	go func() {
		defer close(replicasDone)
		m.runReplicas(upCtx)
	}()
	defer func() {
		stopUploader()
		<-uploaderDone
		<-replicasDone
	}()
	var lastStart time.Time
	backoff := time.Duration(0)
	final := func() error {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		return m.FlushAll(fctx)
	}
	for {
		select {
		case <-ctx.Done():
			return final()
		case <-m.kick:
		}
		if wait := m.cfg.FlushInterval - time.Since(lastStart); wait > 0 && m.pendingBytes.Load() < m.cfg.FlushBytes {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return final()
			case <-t.C:
			case <-m.full:
				t.Stop()
			}
		}
		lastStart = time.Now()
		// ctx schedules flushes; it does not cut one short. A Postgres
		// commit cancelled in flight may have committed all the same
		// while the caller sees an error: the flush would put its batches
		// back, and the final flush's retry of them would be fenced (the
		// high watermark has moved) and drop every partition it carried.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		err := m.Flush(fctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("flush failed; will retry", "err", err)
				backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
			}
		} else {
			backoff = 0
		}
		if m.hasDirty() {
			m.signal(m.kick)
		}
	}
}

func (m *Manager) hasDirty() bool {
	m.dirtyMu.Lock()
	defer m.dirtyMu.Unlock()
	return len(m.dirty) > 0
}

// signal does a non-blocking send on a one-slot channel.
func (m *Manager) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// FlushAll flushes until nothing is pending or ctx ends.
func (m *Manager) FlushAll(ctx context.Context) error {
	for m.pendingBytes.Load() > 0 {
		n, err := m.flush(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

type taken struct {
	p     *Partition
	c     chunk
	prods []store.ProducerState
	pos   int64
}

// Flush writes one object with every dirty partition's pending batches and
// commits it. Safe to call concurrently with produce; flushes serialise.
func (m *Manager) Flush(ctx context.Context) error {
	_, err := m.flush(ctx)
	return err
}

func (m *Manager) flush(ctx context.Context) (int64, error) {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()

	// Rotate first: whatever is appended after this point is in the new
	// segment, so once this flush commits, older segments hold nothing
	// uncommitted.
	if m.wal.Size() >= m.cfg.WAL.SegmentBytes {
		seg, err := m.wal.Rotate()
		if err != nil {
			return 0, err
		}
		m.lastRotation = seg
	}

	m.dirtyMu.Lock()
	dirty := m.dirty
	m.dirty = make(map[int64]*Partition, len(dirty))
	m.dirtyMu.Unlock()
	if len(dirty) == 0 {
		return 0, nil
	}
	start := time.Now()
	var (
		ts    []taken
		bytes int64
	)
	ids := make([]int64, 0, len(dirty))
	for id := range dirty {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		p := dirty[id]
		c, prods, ok := p.take()
		if !ok {
			continue
		}
		ts = append(ts, taken{p: p, c: c, prods: prods})
		bytes += int64(c.size)
	}
	if len(ts) == 0 {
		return 0, nil
	}
	// A small flush is committed inline: no PUT on the acks=all path, and
	// the uploader turns many of them into one object (uploader.go).
	var (
		key  string
		data []byte
	)
	if bytes > m.cfg.InlineMaxBytes || m.up.full() {
		var b object.Builder
		b.Grow(object.SizeOf(len(ts), bytes) - object.HeaderSize) // one allocation, no regrowth
		for i, t := range ts {
			ts[i].pos = b.Add(t.p.ID, t.c.base, t.c.end, t.c.maxTs, t.c.data...).Position
		}
		data, _ = b.Finish()
		key = m.objectKey()
		// The object holds each chunk's batches back to back already: the
		// chunks become those slices, so that committed caches them
		// without copying them again (flatten). The cached chunks then
		// share the object's buffer, which lives until the last of them
		// leaves the partitions' caches; the chunks of one flush are
		// cached and evicted together, so this holds little more than
		// CacheBytes says.
		for i := range ts {
			c := &ts[i].c
			c.data, c.flat = [][]byte{data[ts[i].pos : ts[i].pos+int64(c.size) : ts[i].pos+int64(c.size)]}, true
		}
	} else {
		for i := range ts {
			ts[i].c.flatten()
		}
	}
	err := m.commit(ctx, key, data, ts)
	m.met.flushSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		m.met.flushes.WithLabelValues("error").Inc()
		for _, t := range ts {
			t.p.untake(t.c, t.prods)
			m.markDirty(t.p, 0)
		}
		return 0, err
	}
	m.met.flushes.WithLabelValues("ok").Inc()
	m.met.flushBytes.Observe(float64(bytes))
	m.pendingBytes.Add(-bytes)
	if m.lastRotation > 0 && (!m.staleWAL || m.isSynced()) {
		if err := m.wal.RemoveBefore(m.lastRotation); err != nil {
			m.log.Warn("wal cleanup failed", "err", err)
		}
		m.staleWAL = false
	}
	return bytes, nil
}

func (m *Manager) isSynced() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.synced
}

// commit PUTs data as object key and commits ts in it; with an empty key
// it commits ts inline (their chunks flattened).
func (m *Manager) commit(ctx context.Context, key string, data []byte, ts []taken) error {
	if key != "" {
		if err := m.bucket.Put(ctx, key, data); err != nil {
			return fmt.Errorf("leader: put %s: %w", key, err)
		}
		m.afterPut(key)
	}
	parts := make([]store.CommitPart, len(ts))
	for i, t := range ts {
		parts[i] = store.CommitPart{
			PartitionID: t.p.ID, LeaderEpoch: t.p.Epoch,
			BaseOffset: t.c.base, EndOffset: t.c.end,
			Position: t.pos, Length: int32(t.c.size), MaxTimestamp: t.c.maxTs,
			Producers: t.prods, Markers: t.c.markers,
		}
		if key == "" {
			parts[i].Data = t.c.data[0]
		}
	}
	done, err := m.store.Commit(ctx, m.cfg.BrokerID, key, int64(len(data)), parts)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if done[t.p.ID] {
			t.p.committed(t.c)
			if key == "" {
				m.up.added(t.p.ID, int64(t.c.size), time.Now())
			}
			continue
		}
		// Fenced: someone else leads this partition now. Whatever this
		// broker accepted for it and did not commit is gone (acks=1 loss
		// within Kafka's contract); acks=all waiters get ErrNotLeader.
		m.met.fenced.Inc()
		m.log.Warn("commit fenced; releasing partition", "partition", t.p.ID, "epoch", t.p.Epoch)
		t.p.lose()
		m.mu.Lock()
		if m.parts[t.p.ID] == t.p {
			delete(m.parts, t.p.ID)
		}
		m.mu.Unlock()
	}
	return nil
}

func (m *Manager) objectKey() string {
	seq := m.objSeq.Add(1)
	return fmt.Sprintf("data/%s/b%d-%s-%08d.obj", time.Now().UTC().Format("2006-01-02"), m.cfg.BrokerID, m.bootID, seq)
}

// RangeReader reads byte ranges of objects of known size, through a local
// cache (tiered/cache.Cache). Prefetch starts fetching a range a reader is
// expected to ask for next.
type RangeReader interface {
	ReadRange(ctx context.Context, key string, objSize, off, n int64) ([]byte, error)
	Prefetch(key string, objSize, off, n int64)
	// Unread says that bytes a ReadRange returned went unused: the fetch
	// was full before them, and the next one reads them.
	Unread(key string, objSize, off, n int64)
}

// Reads of old data: how many index rows one query returns (at most), and
// how many fetches of MaxBytes the leader asks the cache to fetch ahead of
// a consumer (it sends the next fetch as soon as it has this one's
// response: one fetch ahead leaves it waiting for GETs).
const (
	remoteRows       = 128
	readAheadFetches = 2
)

// remoteLog is a partition as reads of old data see it: a led Partition,
// or a replica this broker serves reads of without leading it
// (replica.go). Each keeps where the last read stopped and learns a log
// start that retention moved.
type remoteLog interface {
	partitionID() int64
	learnLogStart(int64)
	resumePoint() resumePoint
	setResume(resumePoint)
	// cursorRows are the index rows after where the last read stopped,
	// which the next one keeps reading if compaction swapped them
	// meanwhile (readIndexed).
	cursorRows() []store.RemoteSegment
	setCursor([]store.RemoteSegment)
}

func (p *Partition) partitionID() int64      { return p.ID }
func (p *Partition) learnLogStart(off int64) { p.SetLogStart(off) }

// readPos is where the last read of a partition's old data stopped, for
// a remoteLog (Partition and replica embed it): the point to resume at,
// and the cursor — the index rows after it (at most remoteRows), which the
// next read keeps reading if compaction swapped them meanwhile
// (readIndexed); a read from memory drops it. It has a lock of its own:
// nothing else is read or written with it.
type readPos struct {
	posMu  sync.Mutex
	resume resumePoint
	cursor []store.RemoteSegment
}

func (r *readPos) resumePoint() resumePoint {
	r.posMu.Lock()
	defer r.posMu.Unlock()
	return r.resume
}

func (r *readPos) setResume(rp resumePoint) {
	r.posMu.Lock()
	r.resume = rp
	r.posMu.Unlock()
}

func (r *readPos) cursorRows() []store.RemoteSegment {
	r.posMu.Lock()
	defer r.posMu.Unlock()
	return r.cursor
}

func (r *readPos) setCursor(rows []store.RemoteSegment) {
	r.posMu.Lock()
	r.cursor = rows
	r.posMu.Unlock()
}

// resumePoint is where a read of old data stopped inside an index row: a
// sequential consumer's next fetch starts there, and reads the rest of
// the row rather than the row again (no byte fetched or read twice, and
// the read cache does not take the re-read for a hot reader's).
type resumePoint struct {
	key      string
	position int64 // the row's
	offset   int64 // the next offset wanted
	at       int64 // byte in the object where offset's batch starts
}

// readRemote reads committed batches of a partition from object storage
// through the index, or from its inline rows where no index row holds
// offset yet, starting with the batch holding offset and ending before
// limit (the high watermark, or the last stable offset). Retention may
// have moved the log start in Postgres since the partition was loaded: a
// read below it learns the new start and fails with ErrOffsetOutOfRange.
func (m *Manager) readRemote(ctx context.Context, p remoteLog, offset, limit int64, maxBytes int) ([]byte, error) {
	// An uploader may move the inline rows between the two reads; the
	// second round then finds them in the index.
	for range 2 {
		out, found, err := m.readIndexed(ctx, p, offset, limit, maxBytes)
		if found || err != nil {
			m.replicas.counted(p, "object", len(out))
			return out, err
		}
		rows, err := m.store.ReadInline(ctx, p.partitionID(), offset, maxBytes)
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 || rows[0].BaseOffset > offset {
			continue
		}
		prevEnd := rows[0].BaseOffset
		for _, r := range rows {
			if r.BaseOffset > prevEnd {
				break // a large flush went to an object in between
			}
			prevEnd = r.EndOffset
			var full bool
			if out, offset, full = appendFrom(out, r.Data, offset, limit, maxBytes); full {
				break
			}
		}
		m.replicas.counted(p, "inline", len(out))
		return out, nil
	}
	return nil, nil // the consumer asks again
}

// readIndexed is readRemote through the index; found is false when no
// index row holds offset (it is inline, or moving out of it).
//
// It asks the cache to fetch the rows that cover maxBytes at once, and the
// rows after them up to readAheadFetches times maxBytes more (read-ahead
// sized to the consumer), then reads the rows in order until the fetch is
// full: a row fetched but not read is read by the next fetch for the first
// time, which the cache's policy relies on. It stops where the index has a
// gap (those offsets are inline): the next fetch reads them there.
//
// A sequential reader keeps reading the rows it started with (the
// partition's cursor: the rows after where the last read stopped) while
// the index has other rows for them: compaction swapped them for rows of
// a merged object meanwhile. The old objects hold the same batches, and
// garbage collection keeps them for its grace period; switching would
// waste the blocks fetched ahead from them and read the merged row that
// holds offset from its start, both a second time from the bucket. Once
// the cursor is used up the reader moves to the new rows.
func (m *Manager) readIndexed(ctx context.Context, p remoteLog, offset, limit int64, maxBytes int) (out []byte, found bool, err error) {
	for {
		logStart, segs, err := m.store.ReadIndex(ctx, p.partitionID(), offset, remoteRows)
		if err != nil {
			return out, found, err
		}
		if offset < logStart {
			p.learnLogStart(logStart)
			if out != nil {
				return out, true, nil
			}
			return nil, false, fmt.Errorf("%w: %d is below the log start %d", ErrOffsetOutOfRange, offset, logStart)
		}
		held := cursorAt(p.cursorRows(), offset)
		fromCursor := len(held) > 0 && !sameRows(held, segs)
		if fromCursor {
			segs = held
		}
		if len(segs) == 0 || segs[0].BaseOffset > offset {
			return out, found, nil
		}
		found = true
		// The rows this fetch needs: the first always (KIP-74), then
		// while the bytes read stay under what the fetch may return, up
		// to a gap in the index.
		want := int64(maxBytes - len(out))
		n, size, prevEnd := 0, int64(0), segs[0].BaseOffset
		for n < len(segs) && segs[n].BaseOffset < limit && segs[n].BaseOffset <= prevEnd && (n == 0 || size < want) {
			size += int64(segs[n].Length)
			prevEnd = segs[n].EndOffset
			n++
		}
		if n == 0 {
			return out, true, nil
		}
		rows := slices.Clone(segs[:n]) // the first may shrink to where the last read stopped
		rp := p.resumePoint()
		if s := &rows[0]; rp.offset == offset && rp.key == s.ObjectKey && rp.position == s.Position && rp.at > s.Position && rp.at < s.Position+int64(s.Length) {
			s.Length -= int32(rp.at - s.Position)
			s.Position = rp.at
		}
		if m.cfg.Remote != nil {
			// This fetch's rows are fetched at once (the first is read
			// now anyway), then the next fetch's.
			for _, s := range segs[1:n] {
				m.cfg.Remote.Prefetch(s.ObjectKey, s.ObjectSize, s.Position, int64(s.Length))
			}
			ahead := int64(0)
			for _, s := range segs[n:] {
				if s.BaseOffset >= limit || ahead >= readAheadFetches*int64(maxBytes) {
					break
				}
				m.cfg.Remote.Prefetch(s.ObjectKey, s.ObjectSize, s.Position, int64(s.Length))
				ahead += int64(s.Length)
			}
		}
		gone := false
		for i, s := range rows {
			var d []byte
			if m.cfg.Remote != nil {
				d, err = m.cfg.Remote.ReadRange(ctx, s.ObjectKey, s.ObjectSize, s.Position, int64(s.Length))
			} else {
				d, err = m.bucket.GetRange(ctx, s.ObjectKey, s.Position, int64(s.Length))
			}
			if err != nil && fromCursor && errors.Is(err, bucket.ErrNotFound) {
				// Collected since: read the index's rows instead.
				gone = true
				break
			}
			if err != nil {
				return out, true, fmt.Errorf("leader: read %s: %w", s.ObjectKey, err)
			}
			if i == 0 {
				if at := batchAt(d, offset); at != 0 {
					m.met.skipped.Add(float64(cmp.Or(max(at, 0), int64(len(d)))))
				}
			}
			var full bool
			if out, offset, full = appendFrom(out, d, offset, limit, maxBytes); full {
				at := batchAt(d, offset)
				p.setCursor(slices.Clone(segs[i+1:]))
				if at >= 0 {
					p.setResume(resumePoint{key: segs[i].ObjectKey, position: segs[i].Position, offset: offset, at: s.Position + at})
					p.setCursor(slices.Clone(segs[i:]))
				}
				if at >= 0 && m.cfg.Remote != nil {
					m.cfg.Remote.Unread(s.ObjectKey, s.ObjectSize, s.Position+at, int64(s.Length)-at)
				}
				return out, true, nil
			}
		}
		if gone {
			p.setCursor(nil)
		} else {
			p.setCursor(slices.Clone(segs[n:]))
		}
		switch {
		case gone, fromCursor && n > 0 && n == len(segs) && segs[n-1].EndOffset < limit:
			// The cursor is used up (or its object collected): go on
			// with the index's rows.
		case n < len(segs) || len(segs) < remoteRows:
			return out, true, nil // the limit, a gap, or the end of the index
		}
	}
}

// cursorAt returns the rows of cursor from the one holding offset on (nil
// if none does).
func cursorAt(cursor []store.RemoteSegment, offset int64) []store.RemoteSegment {
	for i, s := range cursor {
		if s.EndOffset > offset {
			if s.BaseOffset > offset {
				return nil
			}
			return cursor[i:]
		}
	}
	return nil
}

// sameRows reports whether the index's rows begin with the rows held (as
// many of them as it has): nothing was swapped under the reader.
func sameRows(held, index []store.RemoteSegment) bool {
	if len(index) == 0 {
		return false
	}
	for i := range min(len(held), len(index)) {
		h, x := held[i], index[i]
		if h.ObjectKey != x.ObjectKey || h.Position != x.Position || h.BaseOffset != x.BaseOffset || h.Length != x.Length {
			return false
		}
	}
	return true
}

// ReadRange reads the bytes of one index row or inline row (ObjectKey "")
// of a partition (used by ListOffsets by timestamp). An inline row the
// uploader moved meanwhile is read from its object.
func (m *Manager) ReadRange(ctx context.Context, partitionID int64, s store.Segment) ([]byte, error) {
	if s.ObjectKey == "" {
		rows, err := m.store.ReadInline(ctx, partitionID, s.BaseOffset, 1)
		if err != nil {
			return nil, err
		}
		if len(rows) > 0 && rows[0].BaseOffset == s.BaseOffset {
			return rows[0].Data, nil
		}
		segs, err := m.store.Segments(ctx, partitionID, s.BaseOffset, 1)
		if err != nil {
			return nil, err
		}
		if len(segs) == 0 || segs[0].BaseOffset > s.BaseOffset {
			return nil, nil // below the log start now
		}
		s = segs[0]
	}
	return m.bucket.GetRange(ctx, s.ObjectKey, s.Position, int64(s.Length))
}

// Close drops every partition and closes the WAL. Call it after Run
// returned (so everything acknowledged was flushed).
func (m *Manager) Close() error {
	m.mu.Lock()
	for id, p := range m.parts {
		p.lose()
		delete(m.parts, id)
	}
	m.mu.Unlock()
	return m.wal.Close()
}

// RemoveWAL deletes every WAL segment; call it after a clean shutdown whose
// final flush committed everything.
func (m *Manager) RemoveWAL() error {
	seg, err := m.wal.Rotate()
	if err != nil {
		return err
	}
	return m.wal.RemoveBefore(seg)
}

// batchAt is the position in b of the batch holding offset, -1 if none.
func batchAt(b []byte, offset int64) int64 {
	pos, at := int64(0), int64(-1)
	batch.Each(b, func(h batch.Header, raw []byte) bool {
		if h.LastOffset() >= offset {
			at = pos
			return false
		}
		pos += int64(len(raw))
		return true
	})
	return at
}
