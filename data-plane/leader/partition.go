package leader

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/data-plane/wal"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
)

// Errors a Partition returns; the broker maps each to a Kafka error code.
var (
	// ErrNotLeader: this broker does not (or no longer) lead the partition.
	// NOT_LEADER_OR_FOLLOWER, retriable.
	ErrNotLeader = errors.New("leader: not the leader")
	// ErrOutOfOrderSequence: an idempotent batch skipped sequence numbers.
	ErrOutOfOrderSequence = errors.New("leader: out of order sequence number")
	// ErrProducerFenced: an idempotent batch came from an older producer epoch.
	ErrProducerFenced = errors.New("leader: producer epoch is stale")
	// ErrOffsetOutOfRange: a read below the log start or above the high watermark.
	ErrOffsetOutOfRange = errors.New("leader: offset out of range")
	// ErrStorage: the local WAL could not be written. KAFKA_STORAGE_ERROR.
	ErrStorage = errors.New("leader: storage error")
	// ErrInvalidTxnState: a transactional batch whose producer has no open
	// transaction here was not checked against the transaction (or the
	// transaction ended since), or a producer with an open transaction
	// sent a non-transactional batch. INVALID_TXN_STATE.
	ErrInvalidTxnState = errors.New("leader: not in the producer's ongoing transaction")
	// ErrTxnRaced: a marker for the producer was appended after its
	// transaction was checked in Postgres (TxnCheck), so the check no
	// longer says anything; the caller checks again.
	ErrTxnRaced = errors.New("leader: the producer's transaction ended while its produce was checked")
)

// maxProducerBatches is how many recent batches per producer are remembered
// for deduplication; Kafka clients keep at most five requests in flight.
const maxProducerBatches = 5

// chunk is a run of whole record batches of one partition, back to back,
// holding offsets [base, end).
type chunk struct {
	base, end int64
	maxTs     int64
	data      [][]byte // whole batches, back to back; pending: as received (no copy)
	flat      bool     // data is one slice of its own (flatten), not parts of request frames
	size      int
	markers   []store.WrittenMarker // the transaction markers among the batches
}

type producer struct {
	epoch   int16
	batches []store.SeqBatch
	dirty   bool
	last    time.Time // last write, for expiry (producers.go)

	txnFirst   int64  // first offset of the open transaction here, -1 if none
	coordEpoch int32  // of the last marker (-1: none since this broker loaded it)
	lastTs     int64  // max timestamp of the last batch (-1: unknown)
	ended      uint64 // markers written for it here: a TxnGuard's generation
}

func newProducer(epoch int16) *producer {
	return &producer{epoch: epoch, txnFirst: -1, coordEpoch: -1, lastTs: -1}
}

// Partition is the state of one partition this broker leads. All methods
// are safe for concurrent use.
type Partition struct {
	ID    int64
	Epoch int32
	m     *Manager

	mu        sync.Mutex
	lost      bool
	releasing bool  // a graceful hand-off is under way: no more appends (handoff.go)
	next      int64 // next offset to assign
	hw        int64 // committed high watermark
	logStart  int64
	pending   []chunk // accepted, not yet handed to the flusher
	cache     []chunk // committed, most recent, bounded by Manager.cfg.CacheBytes
	cacheSize int
	producers map[int64]*producer
	watchers  map[chan<- struct{}]struct{}
	changed   chan struct{} // closed and replaced when hw moves or the partition is lost

	txn txnState // txn.go

	readPos // where the last read of old data stopped (manager.go)
}

func newPartition(m *Manager, id int64, st store.PartitionState) *Partition {
	p := &Partition{
		ID: id, Epoch: st.LeaderEpoch, m: m,
		next: st.HighWatermark, hw: st.HighWatermark, logStart: st.LogStartOffset,
		producers: make(map[int64]*producer, len(st.Producers)),
		watchers:  map[chan<- struct{}]struct{}{},
		changed:   make(chan struct{}),
		txn:       newTxnState(),
	}
	for _, ps := range st.Producers {
		pr := newProducer(ps.Epoch)
		pr.batches, pr.last, pr.txnFirst = ps.Batches, ps.Updated, ps.TxnFirstOffset
		p.producers[ps.ProducerID] = pr
		if pr.txnFirst >= 0 {
			p.txn.open[ps.ProducerID] = pr.txnFirst
		}
	}
	return p
}

// AppendResult says where a batch landed.
type AppendResult struct {
	BaseOffset    int64
	LastOffset    int64
	LogAppendTime int64 // -1 unless the topic uses LogAppendTime
	Duplicate     bool  // an idempotent retry of a batch already accepted
}

// Append accepts validated record batches (raw, as produced; hdrs from
// batch.Validate): it checks idempotent sequences, assigns offsets by
// patching each header, appends to the WAL and queues the bytes for the
// next flush. raw is retained: the caller must not reuse it. When
// logAppendTime is set, each batch's timestamp is replaced by now.
//
// A transactional batch is accepted only if its producer has an open
// transaction here; the first batch of a transaction goes through
// AppendTxn, with the guard of its check.
func (p *Partition) Append(raw []byte, hdrs []batch.Header, logAppendTime bool) (AppendResult, error) {
	return p.append(raw, hdrs, logAppendTime, TxnGuard{})
}

// AppendTxn is Append for batches of a producer whose transaction was
// checked (or joined) in Postgres after TxnCheck returned g: they may open
// the producer's transaction here, unless a marker ended one of its
// transactions here since g was taken (ErrInvalidTxnState).
func (p *Partition) AppendTxn(raw []byte, hdrs []batch.Header, logAppendTime bool, g TxnGuard) (AppendResult, error) {
	return p.append(raw, hdrs, logAppendTime, g)
}

func (p *Partition) append(raw []byte, hdrs []batch.Header, logAppendTime bool, g TxnGuard) (AppendResult, error) {
	res := AppendResult{BaseOffset: -1, LogAppendTime: -1}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost || p.releasing {
		return res, ErrNotLeader
	}
	pos := 0
	for i, h := range hdrs {
		b := raw[pos : pos+h.Size()]
		pos += h.Size()

		if err := p.checkTxn(h, g); err != nil {
			return res, err
		}
		var prod *producer
		if h.Idempotent() {
			var dupBase int64
			var err error
			prod, dupBase, err = p.checkSequence(h)
			if err != nil {
				return res, err
			}
			if dupBase >= 0 {
				// A retry: answer with the original offsets. Only whole
				// single-batch retries are recognised, as in Kafka.
				if i == 0 {
					res.BaseOffset = dupBase
				}
				res.LastOffset = dupBase + int64(h.LastOffsetDelta)
				res.Duplicate = true
				continue
			}
		}

		base := p.next
		batch.SetBaseOffset(b, base)
		batch.SetPartitionLeaderEpoch(b, p.Epoch)
		maxTs := h.MaxTimestamp
		if logAppendTime {
			now := time.Now().UnixMilli()
			batch.SetLogAppendTime(b, now)
			maxTs, res.LogAppendTime = now, now
		}
		if err := p.m.wal.Append(wal.Entry{PartitionID: p.ID, LeaderEpoch: p.Epoch, BaseOffset: base, Data: b}); err != nil {
			return res, fmt.Errorf("%w: %v", ErrStorage, err)
		}
		end := base + int64(h.LastOffsetDelta) + 1
		p.next = end
		p.addPending(base, end, maxTs, b)
		if prod != nil {
			prod.epoch = h.ProducerEpoch
			prod.batches = append(prod.batches, store.SeqBatch{FirstSeq: h.BaseSequence, LastSeq: h.LastSequence(), BaseOffset: base})
			if n := len(prod.batches); n > maxProducerBatches {
				prod.batches = append(prod.batches[:0], prod.batches[n-maxProducerBatches:]...)
			}
			prod.dirty = true
			prod.last = time.Now()
			prod.lastTs = maxTs
			if h.Transactional() && prod.txnFirst < 0 {
				prod.txnFirst = base
				p.txn.open[h.ProducerID] = base
			}
		}
		if res.BaseOffset < 0 {
			res.BaseOffset = base
		}
		res.LastOffset = end - 1
		p.m.markDirty(p, len(b))
	}
	return res, nil
}

// checkSequence applies Kafka's idempotent-producer rules. It returns the
// producer's state (created if new), or the base offset of the batch this
// one duplicates.
func (p *Partition) checkSequence(h batch.Header) (*producer, int64, error) {
	prod := p.producers[h.ProducerID]
	switch {
	case prod == nil:
		if h.BaseSequence != 0 {
			return nil, -1, fmt.Errorf("%w: producer %d is unknown here and starts at sequence %d, not 0",
				ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence)
		}
		prod = newProducer(h.ProducerEpoch)
		p.producers[h.ProducerID] = prod
		return prod, -1, nil
	case h.ProducerEpoch < prod.epoch:
		return nil, -1, fmt.Errorf("%w: producer %d epoch %d < %d", ErrProducerFenced, h.ProducerID, h.ProducerEpoch, prod.epoch)
	case h.ProducerEpoch > prod.epoch:
		if h.BaseSequence != 0 {
			return nil, -1, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d, not 0",
				ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		prod.batches = prod.batches[:0]
		return prod, -1, nil
	}
	last := h.LastSequence()
	for _, b := range prod.batches {
		if b.FirstSeq == h.BaseSequence && b.LastSeq == last {
			if p.m.noDedupe {
				return prod, -1, nil // stored again: the bug the chaos checker must catch
			}
			return prod, b.BaseOffset, nil
		}
	}
	if n := len(prod.batches); n > 0 {
		want := prod.batches[n-1].LastSeq + 1
		if prod.batches[n-1].LastSeq == 1<<31-1 {
			want = 0
		}
		if h.BaseSequence != want {
			return nil, -1, fmt.Errorf("%w: producer %d sent sequence %d, expected %d",
				ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence, want)
		}
	} else if h.BaseSequence != 0 {
		return nil, -1, fmt.Errorf("%w: producer %d sent sequence %d, expected 0", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence)
	}
	return prod, -1, nil
}

func (p *Partition) addPending(base, end, maxTs int64, b []byte) {
	if n := len(p.pending); n > 0 && p.pending[n-1].end == base {
		c := &p.pending[n-1]
		c.end, c.data, c.size, c.flat = end, append(c.data, b), c.size+len(b), false
		c.maxTs = max(c.maxTs, maxTs)
		return
	}
	p.pending = append(p.pending, chunk{base: base, end: end, maxTs: maxTs, data: [][]byte{b}, size: len(b)})
}

// take hands the pending batches (merged into one chunk) and the changed
// producer states to the flusher. ok is false if nothing is pending.
func (p *Partition) take() (c chunk, prods []store.ProducerState, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost || len(p.pending) == 0 {
		return chunk{}, nil, false
	}
	c = p.pending[0]
	for _, more := range p.pending[1:] {
		c.end, c.data, c.size, c.flat = more.end, append(c.data, more.data...), c.size+more.size, false
		c.maxTs = max(c.maxTs, more.maxTs)
		c.markers = append(c.markers, more.markers...)
	}
	p.pending = nil
	for id, pr := range p.producers {
		if pr.dirty {
			prods = append(prods, store.ProducerState{ProducerID: id, Epoch: pr.epoch,
				Batches: append([]store.SeqBatch(nil), pr.batches...), TxnFirstOffset: pr.txnFirst})
			pr.dirty = false
		}
	}
	return c, prods, true
}

// untake puts a chunk whose flush failed back in front of the pending
// batches, so offsets stay contiguous for the next try.
func (p *Partition) untake(c chunk, prods []store.ProducerState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost {
		p.m.pendingBytes.Add(-int64(c.size))
		return
	}
	p.pending = append([]chunk{c}, p.pending...)
	for _, ps := range prods {
		if pr := p.producers[ps.ProducerID]; pr != nil {
			pr.dirty = true
		}
	}
}

// committed advances the high watermark past c and moves c into the cache.
func (p *Partition) committed(c chunk) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost {
		return
	}
	p.hw = c.end
	p.markersCommitted(c.markers)
	// The cache keeps a copy: the batches are sub-slices of the request
	// frames they arrived in (decoded without copying), so caching them
	// would keep whole frames alive, far beyond what CacheBytes counts. The
	// copy runs here, on the flusher, not on the produce path.
	c.flatten()
	p.cache = append(p.cache, c)
	p.cacheSize += c.size
	for p.cacheSize > p.m.cfg.CacheBytes && len(p.cache) > 1 {
		p.cacheSize -= p.cache[0].size
		p.cache = p.cache[1:]
	}
	p.notifyLocked()
}

// cachedRow returns the committed bytes of offsets [base, end) if the
// cache holds them as one chunk of n bytes — an inline row this broker
// committed (Manager.commit caches the very slice it stored) — else nil.
// The slice is shared and never written to.
func (p *Partition) cachedRow(base, end int64, n int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := sort.Search(len(p.cache), func(i int) bool { return p.cache[i].end > base })
	if i == len(p.cache) {
		return nil
	}
	if c := p.cache[i]; c.base == base && c.end == end && c.size == n && c.flat {
		return c.data[0]
	}
	return nil
}

// flatten copies c's batches into one slice of its own, once.
func (c *chunk) flatten() {
	if c.flat {
		return
	}
	flat := make([]byte, 0, c.size)
	for _, b := range c.data {
		flat = append(flat, b...)
	}
	c.data, c.flat = [][]byte{flat}, true
}

// lose marks the partition as no longer led here: waiting producers and
// fetchers are woken and get ErrNotLeader.
func (p *Partition) lose() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost {
		return
	}
	p.lost = true
	for _, c := range p.pending {
		p.m.pendingBytes.Add(-int64(c.size))
	}
	p.pending, p.cache = nil, nil
	p.notifyLocked()
}

func (p *Partition) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
	for w := range p.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Lost reports whether the partition stopped being led here.
func (p *Partition) Lost() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}

// Offsets returns the log start offset and the committed high watermark.
func (p *Partition) Offsets() (logStart, hw int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logStart, p.hw
}

// WaitCommitted blocks until every offset up to and including last is
// committed (acks=all), the partition is lost (ErrNotLeader) or ctx ends.
func (p *Partition) WaitCommitted(ctx context.Context, last int64) error {
	for {
		p.mu.Lock()
		lost, hw, ch := p.lost, p.hw, p.changed
		p.mu.Unlock()
		if lost {
			return ErrNotLeader
		}
		if hw > last {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Watch registers ch to receive a non-blocking send whenever the high
// watermark moves or the partition is lost; call the returned func to stop.
func (p *Partition) Watch(ch chan<- struct{}) (stop func()) {
	p.mu.Lock()
	p.watchers[ch] = struct{}{}
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		delete(p.watchers, ch)
		p.mu.Unlock()
	}
}

// SetLogStart records a log start offset moved forward by DeleteRecords.
func (p *Partition) SetLogStart(off int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if off > p.logStart {
		p.logStart = off
	}
}

// ReadResult is what a fetch gets back.
type ReadResult struct {
	Records       []byte // whole batches, starting with the one holding the offset
	HighWatermark int64
	LastStable    int64
	LogStart      int64
	// Aborted lists, for ReadCommitted, the aborted transactions that
	// overlap Records (their marker at or after the offset read, their
	// first offset before the end of Records), oldest first.
	Aborted []store.AbortedTxn
}

// Read returns committed batches starting with the one that holds offset,
// up to maxBytes (but always at least one whole batch, as KIP-74 asks).
// It never returns data at or above the high watermark. An offset equal to
// the high watermark returns no records and no error.
func (p *Partition) Read(ctx context.Context, offset int64, maxBytes int) (ReadResult, error) {
	return p.read(ctx, offset, maxBytes, false)
}

// ReadCommitted is Read for a read_committed consumer: it returns no data
// at or above the last stable offset (an offset between it and the high
// watermark returns no records and no error) and lists the aborted
// transactions the records overlap.
func (p *Partition) ReadCommitted(ctx context.Context, offset int64, maxBytes int) (ReadResult, error) {
	return p.read(ctx, offset, maxBytes, true)
}

func (p *Partition) read(ctx context.Context, offset int64, maxBytes int, committed bool) (ReadResult, error) {
	p.mu.Lock()
	if p.lost {
		p.mu.Unlock()
		return ReadResult{}, ErrNotLeader
	}
	res := ReadResult{HighWatermark: p.hw, LastStable: p.lastStableLocked(), LogStart: p.logStart}
	if offset < p.logStart || offset > p.hw {
		p.mu.Unlock()
		return res, fmt.Errorf("%w: %d is outside [%d, %d]", ErrOffsetOutOfRange, offset, res.LogStart, res.HighWatermark)
	}
	limit := p.hw
	if committed {
		limit = res.LastStable
	}
	if offset >= limit {
		p.mu.Unlock()
		return res, nil
	}
	from := offset
	cold := true
	if len(p.cache) > 0 && p.cache[0].base <= offset {
		cold = false
		cached := p.cache // chunks are immutable once committed
		p.setCursor(nil)  // a reader caught up with memory needs no rows
		p.mu.Unlock()
		res.Records = appendCached(nil, cached, offset, limit, maxBytes)
	} else {
		// Old data is read up to what memory holds, and the rest from
		// memory: the read cache fetches nothing ahead for offsets that
		// memory holds (nobody would read it from there).
		memStart := limit
		if len(p.cache) > 0 {
			memStart = min(limit, p.cache[0].base)
		}
		p.mu.Unlock()
		out, err := p.m.readRemote(ctx, p, offset, memStart, maxBytes)
		res.Records = out
		if err != nil {
			return res, err
		}
		if next := endOf(out); next >= memStart && next < limit && len(out) < maxBytes {
			p.mu.Lock()
			cached := p.cache
			p.mu.Unlock()
			if len(cached) > 0 && cached[0].base <= next {
				res.Records = appendCached(out, cached, next, limit, maxBytes)
			}
		}
	}
	if committed && len(res.Records) > 0 {
		var err error
		res.Aborted, err = p.abortedIn(ctx, from, endOf(res.Records), cold)
		return res, err
	}
	return res, nil
}

// appendCached appends to out the batches of the chunks cached (in
// memory) from offset on, as appendFrom does.
func appendCached(out []byte, cached []chunk, offset, limit int64, maxBytes int) []byte {
	full := false
	for _, c := range cached {
		if c.end <= offset {
			continue
		}
		for _, b := range c.data {
			if out, offset, full = appendFrom(out, b, offset, limit, maxBytes); full {
				return out
			}
		}
	}
	return out
}

// endOf is the offset after the last of a run of whole batches.
func endOf(b []byte) int64 {
	end := int64(-1)
	batch.Each(b, func(h batch.Header, _ []byte) bool { end = h.LastOffset() + 1; return true })
	return end
}

// appendFrom appends the batches of b that hold offsets >= from and start
// below limit to out, while they fit in maxBytes (the first batch is
// always taken, as KIP-74 asks). It returns the grown out, the next offset
// wanted and whether out is full. Once full, callers must stop: appending
// a later, smaller batch would skip the one that did not fit.
//
// The batches taken are contiguous in b: they are appended with one copy,
// and when out is empty not copied at all. out is then b's bytes (capped,
// so that appending to it copies), which callers must not modify: the
// records of a fetch go out as they are, and b is immutable (a committed
// chunk, or bytes read for this fetch).
func appendFrom(out, b []byte, from, limit int64, maxBytes int) ([]byte, int64, bool) {
	full := false
	start, end := -1, 0 // the batches taken: b[start:end]
	pos := 0
	batch.Each(b, func(h batch.Header, raw []byte) bool {
		at := pos
		pos += len(raw)
		if h.LastOffset() < from {
			return true
		}
		if h.BaseOffset >= limit {
			full = true // nothing past the limit may follow either
			return false
		}
		taken := len(out)
		if start >= 0 {
			taken += end - start
		}
		if taken > 0 && taken+len(raw) > maxBytes {
			full = true
			return false
		}
		if start < 0 {
			start = at
		}
		end = at + len(raw)
		from = h.LastOffset() + 1
		full = taken+len(raw) >= maxBytes
		return !full
	})
	switch {
	case start < 0:
	case len(out) == 0:
		out = b[start:end:end]
	default:
		out = append(out, b[start:end]...)
	}
	return out, from, full
}
