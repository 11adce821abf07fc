package leader

// The uploader moves inline data (small flushes committed in Postgres, see
// Config.InlineMaxBytes) into objects, so that PUTs follow the bytes
// written rather than the flush clock:
//
//	flush ─▶ store.Commit (inline rows, acks=all answered)
//	uploader, once UploadBytes wait or the oldest waited UploadAge:
//	   store.InlineToMove (the led partitions' oldest rows, bounded)
//	   ─▶ their bytes: the partitions' caches, else store.FillInline
//	   ─▶ one object ─▶ Bucket.Put
//	   ─▶ store.MoveInline (index rows in, the rows it covered out)
//
// It moves the rows of the partitions led here, whoever wrote them: a new
// leader uploads what its predecessor committed inline. Racing uploaders
// (a deposed leader's still running) and DeleteRecords are settled by
// MoveInline, which indexes only the rows it deleted; the loser's object
// has no index row and garbage collection removes it. The uploader keeps
// only an estimate of what waits (bytes per partition, from its own
// commits and from LoadPartition); the rows themselves are listed from
// Postgres, so nothing is lost if it is wrong or the broker dies. Their
// bytes come from the leader's cache when it still holds them (the rows
// it committed a moment ago, nearly always), and from Postgres otherwise
// (a predecessor's rows, or past the cache): reading every byte back out
// of Postgres cost its CPU as much as writing it, and stalled the flush
// commits beside it (acks=all p99 88 ms against 63 ms with no uploads, in
// the 10 MB/s benchmark).

import (
	"context"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/object"
	"github.com/prometheus/client_golang/prometheus"
)

type inlinePart struct {
	bytes int64
	since time.Time // when the oldest of them was committed (or found)
	last  time.Time // when bytes were last added
}

// uploads is the uploader's estimate of the inline data waiting.
type uploads struct {
	mu    sync.Mutex
	parts map[int64]*inlinePart
	bytes int64
	limit int64 // UploadBytes: kick when reached
	kick  chan struct{}

	pending  prometheus.GaugeFunc
	outcomes *prometheus.CounterVec
	size     prometheus.Histogram
	source   *prometheus.CounterVec
}

func newUploads(limit int64, reg prometheus.Registerer) *uploads {
	u := &uploads{parts: map[int64]*inlinePart{}, limit: limit, kick: make(chan struct{}, 1)}
	u.pending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eddy_inline_pending_bytes", Help: "Bytes committed inline in Postgres that the uploader has not yet moved to an object."},
		func() float64 { u.mu.Lock(); defer u.mu.Unlock(); return float64(u.bytes) })
	u.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eddy_inline_uploads_total", Help: "Objects the uploader wrote from inline data, by outcome."}, []string{"outcome"})
	u.size = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "eddy_inline_upload_bytes", Help: "Bytes of record batches per object the uploader wrote.",
		Buckets: prometheus.ExponentialBuckets(16<<10, 4, 8)})
	u.source = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eddy_inline_upload_source_bytes_total", Help: "Bytes the uploader wrote, by where it read them: the leader's cache (memory) or Postgres."}, []string{"source"})
	if reg != nil {
		reg.MustRegister(u.pending, u.outcomes, u.size, u.source)
	}
	return u
}

// inlineBacklogFactor is how many uploads' worth of inline data may wait
// before flushes go straight to objects again: while the bucket is down
// or slow the PUTs on the acks=all path fail and push back on producers,
// as before inline storage, instead of Postgres filling without bound
// (retention cannot drop rows the uploader has not moved).
const inlineBacklogFactor = 4

// full reports whether the inline data waiting has reached its bound.
func (u *uploads) full() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bytes >= inlineBacklogFactor*u.limit
}

// added records n inline bytes of partition id committed at t.
func (u *uploads) added(id, n int64, t time.Time) {
	u.mu.Lock()
	ip := u.parts[id]
	if ip == nil {
		ip = &inlinePart{since: t}
		u.parts[id] = ip
	}
	ip.bytes += n
	ip.last = t
	u.bytes += n
	full := u.bytes >= u.limit
	u.mu.Unlock()
	if full {
		select {
		case u.kick <- struct{}{}:
		default:
		}
	}
}

// due reports whether an upload should start now, with the partitions to
// upload.
func (u *uploads) due(now time.Time, age time.Duration) (ids []int64, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := false
	for id, ip := range u.parts {
		ids = append(ids, id)
		old = old || now.Sub(ip.since) >= age
	}
	return ids, len(ids) > 0 && (old || u.bytes >= u.limit)
}

// moved settles the estimate after an upload that started at start and
// read rows (of the partitions ids); all says the read was not cut short.
// Rows another uploader moved count as moved: they wait no more.
func (u *uploads) moved(ids []int64, rows []store.InlineBatch, all bool, start, now time.Time) {
	got := map[int64]int64{}
	for _, r := range rows {
		got[r.PartitionID] += int64(r.Length)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, id := range ids {
		ip := u.parts[id]
		if ip == nil {
			continue
		}
		n := got[id]
		if all && ip.last.Before(start) {
			n = ip.bytes // everything it counted was there to read
		}
		n = min(n, ip.bytes)
		ip.bytes -= n
		u.bytes -= n
		switch {
		case ip.bytes <= 0:
			delete(u.parts, id)
		case n > 0:
			ip.since = now // what is left is newer than what went
		}
	}
}

// forget drops a partition no longer led here: its next leader uploads it.
func (u *uploads) forget(id int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if ip := u.parts[id]; ip != nil {
		u.bytes -= ip.bytes
		delete(u.parts, id)
	}
}

// runUploader uploads inline data until ctx ends. Run owns it.
func (m *Manager) runUploader(ctx context.Context) {
	tick := time.NewTicker(max(m.cfg.UploadAge/4, 10*time.Millisecond))
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-m.up.kick:
		}
		for {
			ids, ok := m.up.due(time.Now(), m.cfg.UploadAge)
			if !ok {
				break
			}
			n, err := m.upload(ctx, ids)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				m.up.outcomes.WithLabelValues("error").Inc()
				m.log.Warn("inline upload failed; will retry", "err", err)
				backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				break
			}
			backoff = 0
			if n == 0 {
				break
			}
		}
	}
}

// upload writes the oldest inline rows of the partitions ids that are
// still led here as one object and moves them into it. It returns the
// bytes it read.
func (m *Manager) upload(ctx context.Context, ids []int64) (int64, error) {
	led := ids[:0:0]
	for _, id := range ids {
		if m.Partition(id) != nil {
			led = append(led, id)
		} else {
			m.up.forget(id)
		}
	}
	if len(led) == 0 {
		return 0, nil
	}
	start := time.Now()
	// Twice the trigger: one object takes what waits when it fires and
	// what arrived while the previous upload ran.
	rows, more, err := m.store.InlineToMove(ctx, led, 2*m.cfg.UploadBytes)
	if err != nil {
		return 0, err
	}
	var fromMemory, fromPostgres int64
	for i := range rows {
		r := &rows[i]
		if p := m.Partition(r.PartitionID); p != nil {
			r.Data = p.cachedRow(r.BaseOffset, r.EndOffset, int(r.Length))
		}
		if r.Data != nil {
			fromMemory += int64(r.Length)
		}
	}
	if fromMemory < sumLength(rows) {
		if err := m.store.FillInline(ctx, rows); err != nil {
			return 0, err
		}
	}
	// Rows deleted since they were listed have no data: they are gone
	// (moved, or below the log start), and MoveInline would skip them.
	present := rows[:0:0]
	for _, r := range rows {
		if r.Data != nil {
			present = append(present, r)
		}
	}
	if len(present) == 0 {
		m.up.moved(led, rows, !more, start, time.Now())
		return 0, nil
	}
	var (
		b     object.Builder
		moves = make([]store.InlineMove, len(present))
		bytes = sumLength(present)
	)
	fromPostgres = bytes - fromMemory
	b.Grow(object.SizeOf(len(present), bytes) - object.HeaderSize) // one allocation, no regrowth
	for i, r := range present {
		ch := b.Add(r.PartitionID, r.BaseOffset, r.EndOffset, r.MaxTimestamp, r.Data)
		moves[i] = store.InlineMove{PartitionID: r.PartitionID, BaseOffset: r.BaseOffset, EndOffset: r.EndOffset,
			MaxTimestamp: r.MaxTimestamp, Position: ch.Position, Length: r.Length}
	}
	data, _ := b.Finish()
	key := m.objectKey()
	if err := m.bucket.Put(ctx, key, data); err != nil {
		return 0, err
	}
	m.afterPut(key)
	n, err := m.store.MoveInline(ctx, m.cfg.BrokerID, key, int64(len(data)), moves)
	if err != nil {
		return 0, err
	}
	outcome := "ok"
	if n < len(moves) {
		outcome = "raced" // someone else moved or deleted some of them
	}
	m.up.outcomes.WithLabelValues(outcome).Inc()
	m.up.size.Observe(float64(bytes))
	m.up.source.WithLabelValues("memory").Add(float64(fromMemory))
	m.up.source.WithLabelValues("postgres").Add(float64(fromPostgres))
	m.up.moved(led, rows, !more, start, time.Now())
	return bytes, nil
}

func sumLength(rows []store.InlineBatch) int64 {
	var n int64
	for _, r := range rows {
		n += int64(r.Length)
	}
	return n
}
