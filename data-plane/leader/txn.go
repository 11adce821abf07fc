package leader

// The partition side of transactions (docs/transactions.md).
//
// Each partition tracks, per producer, the first offset of its open
// transaction (committed with the data as producer_states.txn_first_offset);
// the last stable offset (LSO) is the smallest of them, or the high
// watermark. A transactional batch is accepted only into an open
// transaction, or after the broker checked in Postgres that the partition
// is in the producer's ongoing transaction (TxnCheck, AppendTxn: KIP-890).
//
// Markers: the coordinator queues a txn_markers row per partition of an
// ending transaction. The manager picks up the rows of the partitions it
// leads (NOTIFY eddy_txn_markers, a sweep every markerSweep, and when it
// gains a partition) and appends each as a control batch through the
// normal write path. The producer's transaction is closed at once (its
// next batch opens a new one), but the LSO keeps stopping at the ended
// transaction's first offset until the flush commit that makes the marker
// durable, which also deletes the row and, for an abort, records the
// aborted transaction: fenced by leader epoch, so whoever leads when the
// commit lands writes the marker, exactly once.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/data-plane/wal"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
)

const (
	// markerSweep is how often the queued markers are looked for without
	// a notification: NOTIFY is not delivered to a broker that was
	// reconnecting to Postgres.
	markerSweep = 3 * time.Second
	// keepAborted is how many of its latest aborted transactions a
	// partition keeps in memory, so read_committed fetches of recent data
	// do not ask Postgres; older reads (the cold path) do.
	keepAborted = 256
	// writtenFor is how long a committed marker's id is remembered, so a
	// sweep whose read of txn_markers began before that commit does not
	// write the marker again. Sweeps time out well before it.
	writtenFor   = time.Minute
	sweepTimeout = 15 * time.Second
)

type txnState struct {
	open    map[int64]int64     // producer id → first offset of its open transaction
	ending  []endingTxn         // transactions whose marker is not committed yet
	markers map[int64]bool      // ids of markers appended here, not committed yet
	written map[int64]time.Time // ids of markers committed here, and when
	// aborted holds the latest aborted transactions by marker offset; it
	// is complete for markers at or after abortedFrom.
	aborted     []store.AbortedTxn
	abortedFrom int64
}

type endingTxn struct {
	producerID int64
	first      int64 // first offset of the transaction
	marker     int64 // offset of its marker
}

func newTxnState() txnState {
	return txnState{open: map[int64]int64{}, markers: map[int64]bool{}, written: map[int64]time.Time{}}
}

// TxnGuard is what a check of a producer's transaction in Postgres saw of
// the partition; see TxnCheck.
type TxnGuard struct {
	producerID int64
	ended      uint64
	set        bool
}

// TxnCheck reports whether a transactional batch of producerID at epoch
// must be checked against the producer's transaction in Postgres before it
// is appended: it must unless the producer has a transaction open here at
// that epoch. The guard goes to AppendTxn once the check passed.
func (p *Partition) TxnCheck(producerID int64, epoch int16) (g TxnGuard, needed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g = TxnGuard{producerID: producerID, set: true}
	pr := p.producers[producerID]
	if pr == nil {
		return g, true
	}
	g.ended = pr.ended
	return g, pr.txnFirst < 0 || pr.epoch != epoch
}

// checkTxn applies the transaction rules to a batch about to be appended.
func (p *Partition) checkTxn(h batch.Header, g TxnGuard) error {
	pr := p.producers[h.ProducerID]
	switch {
	case h.Transactional() && !h.Idempotent():
		return fmt.Errorf("%w: a transactional batch without a producer id", batch.ErrInvalid)
	case h.Transactional():
		if pr != nil && (pr.txnFirst >= 0 && h.ProducerEpoch == pr.epoch || h.ProducerEpoch < pr.epoch) {
			return nil // in its open transaction, or fenced by checkSequence
		}
		var ended uint64
		if pr != nil {
			ended = pr.ended
		}
		if !g.set || g.producerID != h.ProducerID {
			return fmt.Errorf("%w: producer %d", ErrInvalidTxnState, h.ProducerID)
		}
		if g.ended != ended {
			return fmt.Errorf("%w: producer %d", ErrTxnRaced, h.ProducerID)
		}
	case h.Idempotent() && pr != nil && pr.txnFirst >= 0 && h.ProducerEpoch == pr.epoch:
		return fmt.Errorf("%w: producer %d has an open transaction and sent a non-transactional batch", ErrInvalidTxnState, h.ProducerID)
	}
	return nil
}

// LastStable returns the last stable offset: the first offset of the
// oldest transaction still open (or whose marker is not committed), or the
// high watermark.
func (p *Partition) LastStable() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastStableLocked()
}

func (p *Partition) lastStableLocked() int64 {
	lso := p.hw
	for _, first := range p.txn.open {
		lso = min(lso, first)
	}
	for _, e := range p.txn.ending {
		lso = min(lso, e.first)
	}
	return lso
}

// errStaleMarker: a marker's producer epoch is older than the producer's
// here; Kafka refuses such a marker and its coordinator drops it.
var errStaleMarker = errors.New("leader: marker of a stale producer epoch")

// appendMarker appends mk's control batch (raw, from the WAL, or built
// when nil). It reports false if mk is already appended or written here.
func (p *Partition) appendMarker(mk store.TxnMarker, raw []byte) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost || p.releasing {
		return false, ErrNotLeader
	}
	if _, done := p.txn.written[mk.ID]; done || p.txn.markers[mk.ID] {
		return false, nil
	}
	pr := p.producers[mk.ProducerID]
	if pr != nil && mk.ProducerEpoch < pr.epoch {
		return false, fmt.Errorf("%w: marker %d epoch %d, producer %d at %d", errStaleMarker, mk.ID, mk.ProducerEpoch, mk.ProducerID, pr.epoch)
	}
	now := time.Now()
	if raw == nil {
		raw = batch.Control(mk.ProducerID, mk.ProducerEpoch, mk.Commit, mk.CoordinatorEpoch, now.UnixMilli())
	}
	base := p.next
	batch.SetBaseOffset(raw, base)
	batch.SetPartitionLeaderEpoch(raw, p.Epoch)
	if err := p.m.wal.Append(wal.Entry{PartitionID: p.ID, LeaderEpoch: p.Epoch, BaseOffset: base, Data: raw}); err != nil {
		return false, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	p.next = base + 1
	h, _ := batch.ParseHeader(raw)
	p.addPending(base, base+1, h.MaxTimestamp, raw)

	if pr == nil {
		pr = newProducer(mk.ProducerEpoch)
		p.producers[mk.ProducerID] = pr
	}
	first := pr.txnFirst
	if first >= 0 {
		p.txn.ending = append(p.txn.ending, endingTxn{producerID: mk.ProducerID, first: first, marker: base})
	}
	// A marker of a newer epoch (transaction version 2 bumps the epoch at
	// each end) moves the producer to it and restarts its sequences.
	if mk.ProducerEpoch > pr.epoch {
		pr.epoch, pr.batches = mk.ProducerEpoch, pr.batches[:0]
	}
	delete(p.txn.open, mk.ProducerID)
	pr.txnFirst, pr.coordEpoch, pr.lastTs = -1, mk.CoordinatorEpoch, h.MaxTimestamp
	pr.ended++
	pr.dirty, pr.last = true, now

	c := &p.pending[len(p.pending)-1]
	c.markers = append(c.markers, store.WrittenMarker{ID: mk.ID, ProducerID: mk.ProducerID, FirstOffset: first, Offset: base, Commit: mk.Commit})
	p.txn.markers[mk.ID] = true
	p.m.markDirty(p, len(raw))
	return true, nil
}

// markersCommitted settles the markers of a committed chunk; p.mu is held.
func (p *Partition) markersCommitted(ms []store.WrittenMarker) {
	now := time.Now()
	for id, at := range p.txn.written {
		if now.Sub(at) > writtenFor {
			delete(p.txn.written, id)
		}
	}
	for _, mk := range ms {
		delete(p.txn.markers, mk.ID)
		p.txn.written[mk.ID] = now
		for i, e := range p.txn.ending {
			if e.marker == mk.Offset {
				p.txn.ending = append(p.txn.ending[:i], p.txn.ending[i+1:]...)
				break
			}
		}
		if !mk.Commit && mk.FirstOffset >= 0 {
			p.txn.aborted = append(p.txn.aborted, store.AbortedTxn{ProducerID: mk.ProducerID, FirstOffset: mk.FirstOffset, LastOffset: mk.Offset})
			if n := len(p.txn.aborted); n > keepAborted {
				p.txn.aborted = append(p.txn.aborted[:0], p.txn.aborted[n-keepAborted:]...)
				p.txn.abortedFrom = p.txn.aborted[0].LastOffset
			}
		}
	}
}

// abortedIn returns the aborted transactions whose marker is at or after
// from and whose first offset is before to: from memory when it holds
// them all, else from Postgres.
//
// Records read cold (through the index) may have been compacted, and a
// compaction that removed an abort marker deleted its row in the same
// swap, which memory does not learn: answering such a transaction would
// make a client drop its producer's later batches, waiting for a marker
// that is gone. So a cold read that memory finds transactions for asks
// Postgres instead; a read from the memory cache gets the uncompacted
// batches it was written with, markers included.
func (p *Partition) abortedIn(ctx context.Context, from, to int64, cold bool) ([]store.AbortedTxn, error) {
	p.mu.Lock()
	if from >= p.txn.abortedFrom {
		var out []store.AbortedTxn
		for _, a := range p.txn.aborted {
			if a.LastOffset >= from && a.FirstOffset < to {
				out = append(out, a)
			}
		}
		p.mu.Unlock()
		if !cold || len(out) == 0 {
			return out, nil // Postgres holds no more than memory
		}
		return p.m.store.AbortedTxns(ctx, p.ID, from, to, 0)
	}
	p.mu.Unlock()
	return p.m.store.AbortedTxns(ctx, p.ID, from, to, 0)
}

// ProducerInfo is a producer's state on a partition, for DescribeProducers.
type ProducerInfo struct {
	ProducerID       int64
	Epoch            int16
	LastSequence     int32 // -1: none
	LastTimestamp    int64 // -1: unknown (not kept across leaders)
	CoordinatorEpoch int32 // -1: unknown (not kept across leaders)
	TxnFirstOffset   int64 // -1: no open transaction
}

// Producers returns the producers with state on the partition.
func (p *Partition) Producers() []ProducerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProducerInfo, 0, len(p.producers))
	for id, pr := range p.producers {
		pi := ProducerInfo{ProducerID: id, Epoch: pr.epoch, LastSequence: -1, LastTimestamp: pr.lastTs,
			CoordinatorEpoch: pr.coordEpoch, TxnFirstOffset: pr.txnFirst}
		if n := len(pr.batches); n > 0 {
			pi.LastSequence = pr.batches[n-1].LastSeq
		}
		out = append(out, pi)
	}
	return out
}

// loadTxn reads what a partition just gained needs of its transactions:
// its latest aborted transactions and the markers queued for it.
func (m *Manager) loadTxn(ctx context.Context, p *Partition) ([]store.TxnMarker, error) {
	aborted, err := m.store.AbortedTxns(ctx, p.ID, 0, -1, keepAborted)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.txn.aborted = aborted
	if len(aborted) == keepAborted {
		p.txn.abortedFrom = aborted[0].LastOffset
	}
	p.mu.Unlock()
	return m.store.PendingMarkers(ctx, []int64{p.ID})
}

// replayMarker re-appends a marker found in the WAL of a previous run: the
// first of the queued markers it matches (the row is still there, since
// the marker was not committed). It reports false if none matches.
func (p *Partition) replayMarker(raw []byte, h batch.Header, queued []store.TxnMarker) bool {
	commit, coordEpoch, err := batch.ParseControl(raw)
	if err != nil {
		return false
	}
	for _, mk := range queued {
		if mk.ProducerID == h.ProducerID && mk.ProducerEpoch == h.ProducerEpoch && mk.Commit == commit && mk.CoordinatorEpoch == coordEpoch {
			ok, err := p.appendMarker(mk, raw)
			if ok && err == nil {
				return true
			}
		}
	}
	return false
}

// writeMarkers appends the queued markers of the given partitions led
// here; a marker of a stale producer epoch is dropped, as Kafka drops it.
func (m *Manager) writeMarkers(ctx context.Context, ms []store.TxnMarker) {
	for _, mk := range ms {
		p := m.Partition(mk.PartitionID)
		if p == nil {
			continue
		}
		_, err := p.appendMarker(mk, nil)
		switch {
		case errors.Is(err, errStaleMarker):
			m.log.Warn("dropping transaction marker", "partition", p.ID, "err", err)
			if _, err := m.store.DropMarker(ctx, mk.ID, p.ID, p.Epoch); err != nil {
				m.log.Warn("dropping transaction marker failed", "partition", p.ID, "marker", mk.ID, "err", err)
			}
		case err != nil && !errors.Is(err, ErrNotLeader):
			m.log.Warn("writing transaction marker failed; will retry", "partition", p.ID, "marker", mk.ID, "err", err)
		}
	}
}

// SweepMarkers appends every marker queued for the partitions led here
// (RunMarkers does, on notifications and every few seconds); the next
// flush makes them durable.
func (m *Manager) SweepMarkers(ctx context.Context) error {
	ids := m.Led()
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, sweepTimeout)
	defer cancel()
	ms, err := m.store.PendingMarkers(ctx, ids)
	if err != nil {
		return err
	}
	m.writeMarkers(ctx, ms)
	return nil
}

// RunMarkers writes the transaction markers queued for the partitions led
// here until ctx ends: when Postgres announces new ones (NOTIFY
// eddy_txn_markers) and every few seconds. It owns the listener and waits
// for it before returning.
func (m *Manager) RunMarkers(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	poke := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.listenMarkers(ctx, poke)
	}()
	defer func() { cancel(); <-done }()
	t := time.NewTicker(markerSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poke:
		case <-t.C:
		}
		if err := m.SweepMarkers(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("transaction marker sweep failed", "err", err)
		}
	}
}

func (m *Manager) listenMarkers(ctx context.Context, poke chan<- struct{}) {
	m.store.Poke(ctx, "eddy_txn_markers", poke, func(err error) {
		m.log.Warn("transaction marker listener failed; retrying", "err", err)
	})
}

// replayGuard lets replayed batches open their producer's transaction:
// they passed its check when first appended.
func (p *Partition) replayGuard(hdrs []batch.Header) TxnGuard {
	g, _ := p.TxnCheck(hdrs[0].ProducerID, hdrs[0].ProducerEpoch)
	return g
}
