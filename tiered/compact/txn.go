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
//     older than delete.retention.ms (the rule Eddy's tombstones follow;
//     KIP-534 counts the horizon from the first compaction instead, for
//     both: issue 20). A marker thus outlives its transaction's data by at
//     least one pass: a reader still holding the index rows of the pass
//     before keeps finding the marker after the data it ends.
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
	// horizon: markers timestamped before it may go.
	horizon int64
}

func newTxnPass(aborted []store.AbortedTxn, horizon int64) *txnPass {
	t := &txnPass{aborted: map[int64][]store.AbortedTxn{}, open: map[int64]bool{}, horizon: horizon}
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

// marker reports whether the control batch raw may be removed, and
// whether it is an abort marker (whose aborted_txns row goes with it).
// A control batch it cannot parse is kept.
func (t *txnPass) marker(h batch.Header, raw []byte) (remove, abort bool) {
	had := t.open[h.ProducerID]
	delete(t.open, h.ProducerID)
	commit, _, err := batch.ParseControl(raw)
	if err != nil {
		return false, false
	}
	return !had && h.MaxTimestamp < t.horizon, !commit
}
