package compact

// Transactions in key compaction, as Kafka's log cleaner treats them
// (LogCleaner's CleanedTransactionMetadata), on the log below the last
// stable offset, where every transaction has its marker committed:
//
//   - a batch of an aborted transaction (its producer has an aborted_txns
//     row with first_offset <= the batch's base offset < the marker's
//     offset) is dropped whole, and its keys do not count;
//   - a control batch (a marker) is never removed by key: its key is a
//     ControlRecordKey, not a record key. It is removed once no batch of
//     its transaction was read before it in the pass, and its timestamp is
//     older than delete.retention.ms (Kafka stamps markers with a delete
//     horizon as it does tombstones, KIP-534; Eddy keeps the timestamp
//     rule for markers, deliberately unchanged). A marker thus outlives
//     its transaction's data by at least one pass: a reader still holding
//     the index rows of the pass before keeps finding the marker after the
//     data it ends. A marker kept with no data of its transaction left
//     after the pass waits only for its age: the pass records the
//     earliest such timestamp (compaction_state.marker_timestamp), which
//     makes the partition due once it is old enough.
//   - an abort marker takes its aborted_txns row with it, in the swap.

import (
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
)

// txnPass follows the transactions of one partition through a key
// compaction pass, batch by batch in offset order.
type txnPass struct {
	aborted map[int64][]store.AbortedTxn // by producer id
	// open holds the producers with a batch of their current transaction
	// read in this pass.
	open map[int64]bool
	// kept holds the producers with a batch of their current transaction
	// kept by this pass.
	kept map[int64]bool
	// horizon: markers timestamped before it may go.
	horizon int64
}

func newTxnPass(aborted []store.AbortedTxn, horizon int64) *txnPass {
	t := &txnPass{aborted: map[int64][]store.AbortedTxn{}, open: map[int64]bool{}, kept: map[int64]bool{}, horizon: horizon}
	for _, a := range aborted {
		t.aborted[a.ProducerID] = append(t.aborted[a.ProducerID], a)
	}
	return t
}

// data reports whether a data batch belongs to an aborted transaction.
func (t *txnPass) data(h batch.Header) (aborted bool) {
	if !h.Transactional() {
		return false
	}
	t.open[h.ProducerID] = true
	for _, a := range t.aborted[h.ProducerID] {
		if a.FirstOffset <= h.BaseOffset && h.BaseOffset < a.LastOffset {
			return true
		}
	}
	return false
}

// keep records that the pass keeps a data batch of h's transaction.
func (t *txnPass) keep(h batch.Header) {
	if h.Transactional() {
		t.kept[h.ProducerID] = true
	}
}

// marker reports whether the control batch raw may be removed, whether
// it is an abort marker (whose aborted_txns row goes with it), and, if it
// stays, whether only its age keeps it (no data of its transaction is
// left before it). A control batch it cannot parse is kept.
func (t *txnPass) marker(h batch.Header, raw []byte) (remove, abort, aging bool) {
	had, kept := t.open[h.ProducerID], t.kept[h.ProducerID]
	delete(t.open, h.ProducerID)
	delete(t.kept, h.ProducerID)
	commit, _, err := batch.ParseControl(raw)
	if err != nil {
		return false, false, false
	}
	remove = !had && h.MaxTimestamp < t.horizon
	return remove, !commit, !remove && !kept
}
