package broker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The transaction coordinator shared by the transaction APIs
// (InitProducerId with a transactional id, AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit, EndTxn, DescribeTransactions,
// ListTransactions; each in its own file). docs/transactions.md tells the
// whole story.
//
// A transactional id hashes, with its cluster, to a coordinator slot as a
// group id does; the slot's leader is its coordinator and every other
// broker answers NOT_COORDINATOR. The coordinator keeps nothing in memory:
// each request is one transition in Postgres (internal/store, txn.go),
// fenced by the slot's leader epoch, so the broker that gains a slot after
// a crash carries on where the last one stopped.
//
// The slot's leader also runs, in the loop below: the timeouts of its
// transactions (an Ongoing transaction past transaction.timeout.ms is
// aborted and its producer fenced), and the group markers of the groups
// it coordinates (a transaction's pending offsets committed or dropped),
// woken by NOTIFY eddy_txn_markers, by a slot it gains and every
// TransactionCheckInterval. The partition markers are the partition
// leaders' (data-plane/leader).

// txnVersionMax is the transaction version (KIP-890 part 2) advertised
// as the finalized feature transaction.version, when the APIs it needs are
// served at their version-2 versions (txnVersion).
const txnVersionMax = 2

// txnVersion is the finalized transaction.version: 2 once Produce v12,
// EndTxn v5 and TxnOffsetCommit v5 are served, else 0. A client that sees
// 2 stops sending AddPartitionsToTxn before producing (the produce adds
// its partition), so advertising it without the produce side would break
// every transactional producer.
func txnVersion() int16 {
	if apis[0].max >= 12 && apis[26].max >= 5 && apis[28].max >= 5 {
		return txnVersionMax
	}
	return 0
}

// txnCode maps an error of a transaction transition to a Kafka code:
// fenced is what this API version answers a fenced producer
// (PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH before KIP-588).
func (s *Server) txnCode(err error, fenced int16) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, store.ErrFenced):
		return kerr.NotCoordinator.Code
	case errors.Is(err, store.ErrProducerFenced):
		return fenced
	case errors.Is(err, store.ErrProducerIDMapping), errors.Is(err, store.ErrTxnCompleting), errors.Is(err, store.ErrTxnState),
		errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrNotFound):
		code, _ := errCode(err)
		return code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.CoordinatorNotAvailable.Code
	default:
		// Postgres trouble: retriable, and the details stay in our logs.
		s.log.Warn("transaction coordinator", "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
}

// txnAnswer is txnCode for a transition that may allocate a producer id:
// over the cluster's budget, THROTTLING_QUOTA_EXCEEDED and how long to
// wait (as bounds.go answers idempotent producers).
func (s *Server) txnAnswer(err error, wait time.Duration, fenced int16) (code int16, throttleMillis int32) {
	if errors.Is(err, store.ErrLimit) {
		return kerr.ThrottlingQuotaExceeded.Code, int32(min(wait, time.Hour) / time.Millisecond)
	}
	return s.txnCode(err, fenced), 0
}

// fencedCode is PRODUCER_FENCED from version since (KIP-588), else
// INVALID_PRODUCER_EPOCH.
func fencedCode(version, since int16) int16 {
	if version >= since {
		return kerr.ProducerFenced.Code
	}
	return kerr.InvalidProducerEpoch.Code
}

// txnBudget is the producer id budget of a cluster: its effective limits
// (bounds.go), which InitProducerId without a transactional id uses too.
func (s *Server) txnBudget(cluster string) store.ProducerIDBudget {
	perSecond, burst := s.limits.ProducerIDs(cluster)
	return store.ProducerIDBudget{PerSecond: perSecond, Burst: burst}
}

// txnCtx bounds one transition.
func (c *conn) txnCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, 10*time.Second)
}

// txnMetrics are the coordinator's eddy_txn_* metrics.
type txnMetrics struct {
	transitions *prometheus.CounterVec
	open        prometheus.Gauge
	markers     prometheus.Gauge
	timeouts    prometheus.Counter
	groupMarks  *prometheus.CounterVec
}

func newTxnMetrics(reg prometheus.Registerer) *txnMetrics {
	m := &txnMetrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_txn_transitions_total", Help: "Transaction coordinator requests by API and outcome (ok or the Kafka error)."},
			[]string{"api", "outcome"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_txn_open", Help: "Ongoing transactions of the coordinator slots this broker leads (at the last check)."}),
		markers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_txn_markers_outstanding", Help: "Transaction markers not yet written, of the transactions of the slots this broker leads (at the last check)."}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_txn_timeouts_total", Help: "Transactions aborted by this broker because their transaction.timeout.ms passed."}),
		groupMarks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_txn_group_markers_total", Help: "Transaction group markers applied by this broker, by result (commit, abort)."},
			[]string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.transitions, m.open, m.markers, m.timeouts, m.groupMarks)
	}
	return m
}

func (m *txnMetrics) observe(api string, code int16) {
	outcome := "ok"
	if code != 0 {
		outcome = strconv.Itoa(int(code))
		if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
			outcome = e.Message
		}
	}
	m.transitions.WithLabelValues(api, outcome).Inc()
}

// ledSlots returns the fences of the coordinator slots this broker leads.
func (s *Server) ledSlots() map[int32]store.SlotFence {
	v := s.view.Load()
	out := map[int32]store.SlotFence{}
	if _, live := v.byBroker[s.cfg.ID]; !live {
		return out
	}
	for _, sl := range v.slots {
		if sl.LeaderID == s.cfg.ID {
			out[sl.Slot] = store.SlotFence{Slot: sl.Slot, BrokerID: s.cfg.ID, LeaderEpoch: sl.LeaderEpoch}
		}
	}
	return out
}

// txnLoop runs the coordinator's background work until ctx ends: group
// markers when Postgres announces some (or a slot is gained), and every
// TransactionCheckInterval also timeouts and the metrics.
func (s *Server) txnLoop(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.store.Poke(ctx, "eddy_txn_markers", s.txnPoke, func(err error) {
			s.log.Warn("transaction marker listener failed; retrying", "err", err)
		})
	}()
	defer wg.Wait()
	t := time.NewTicker(s.cfg.TransactionCheckInterval)
	defer t.Stop()
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			full = true
		case <-s.txnPoke:
		}
		if err := s.applyGroupMarkers(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("applying transaction group markers", "err", err)
		}
		if full {
			if err := s.abortExpiredTxns(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("aborting expired transactions", "err", err)
			}
		}
	}
}

// pokeTxns wakes txnLoop.
func (s *Server) pokeTxns() {
	select {
	case s.txnPoke <- struct{}{}:
	default:
	}
}

// groupMarkerBatch bounds the group markers read per pass.
const groupMarkerBatch = 1000

// applyGroupMarkers applies the pending group markers of the groups this
// broker coordinates, each fenced by the group's slot, and has the group
// coordinator drop its cache of the group's offsets.
func (s *Server) applyGroupMarkers(ctx context.Context) error {
	marks, err := s.store.GroupMarkers(ctx, groupMarkerBatch)
	if err != nil {
		return err
	}
	for _, m := range marks {
		fence, ok := s.slotFence(m.ClusterID, m.Group)
		if !ok {
			continue
		}
		applied := false
		err := s.groups.ApplyOffsets(ctx, m.ClusterID, m.Group, func(ctx context.Context) error {
			var err error
			applied, err = s.store.ApplyGroupMarker(ctx, m, fence)
			return err
		})
		if err != nil {
			return err
		}
		if applied {
			result := "abort"
			if m.Commit {
				result = "commit"
			}
			s.txnMet.groupMarks.WithLabelValues(result).Inc()
		}
	}
	return nil
}

// abortExpiredTxns aborts the transactions of this broker's slots whose
// timeout passed, and refreshes the gauges.
func (s *Server) abortExpiredTxns(ctx context.Context) error {
	led := s.ledSlots()
	slots := make([]int32, 0, len(led))
	for sl := range led {
		slots = append(slots, sl)
	}
	expired, err := s.store.ExpiredTxns(ctx, slots)
	if err != nil {
		return err
	}
	for _, t := range expired {
		aborted, err := s.store.AbortExpiredTxn(ctx, t, led[t.Slot], s.txnBudget(t.ClusterID))
		if errors.Is(err, store.ErrFenced) {
			continue // the slot moved: its new leader takes over
		}
		if err != nil {
			return err
		}
		if aborted {
			s.txnMet.timeouts.Inc()
			s.log.Info("transaction timed out: aborted", "cluster", t.ClusterID, "transactional_id", t.TransactionalID,
				"producer_id", t.ProducerID, "epoch", t.ProducerEpoch, "timeout_ms", t.TimeoutMs)
		}
	}
	load, err := s.store.TxnLoadOf(ctx, slots)
	if err != nil {
		return err
	}
	s.txnMet.open.Set(float64(load.Open))
	s.txnMet.markers.Set(float64(load.Markers))
	return nil
}
