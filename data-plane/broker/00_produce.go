package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce (API key 0).
// Versions: 3-12.
//
// Record batches of magic 2 only, as Kafka 4 requires. acks=0 gets no
// response; acks=1 is answered once the batch is in the local WAL; acks=all
// once the flush that carries it is committed in Postgres — waiting off the
// connection's reader, so a client's pipelined produce requests share
// flushes (responses still go out in order).
//
// Transactions (docs/transactions.md), as Kafka 4: the first transactional
// batch of a producer's transaction on a partition is checked in Postgres
// to be in the producer's ongoing transaction (KIP-890 part 1; v12, which
// implies transaction version 2, adds the partition to the transaction
// instead, KIP-890 part 2, retrying CONCURRENT_TRANSACTIONS for up to
// 100 ms); later batches of the transaction are not. The answers are
// Kafka's: not in the transaction, or no transactional id, gives
// INVALID_TXN_STATE; a transactional id owned by another producer id
// INVALID_PRODUCER_ID_MAPPING; a stale epoch INVALID_PRODUCER_EPOCH; an
// ending transaction CONCURRENT_TRANSACTIONS from v12 and, as for a check
// that could not run, NOT_ENOUGH_REPLICAS (retriable) below it.
//
// Deviations: producing to a missing topic
// creates it when the cluster allows automatic creation (topicadmin.go; the
// request then fails with the retriable UNKNOWN_TOPIC_OR_PARTITION so the
// client refreshes metadata and retries); a compressed batch whose
// records decompress to more than batch.DecompressLimit (32 times
// max.message.bytes, at most 256 MiB) is refused with MESSAGE_TOO_LARGE,
// a bound Kafka does not have.
//
// Timestamps (KIP-937): with message.timestamp.type=CreateTime a batch
// whose first or greatest timestamp is outside the topic's window
// (message.timestamp.before.max.ms, .after.max.ms) is refused with
// INVALID_TIMESTAMP, judged from the batch header alone
// (topicconfig.Timestamps.Check says what that misses); with
// LogAppendTime the leader stamps the header (batch.SetLogAppendTime).
//
// Internal topics are read-only: INVALID_TOPIC_EXCEPTION, as Kafka answers
// clients appending to them (internaltopics.go).
//
// Authorization: WRITE on each topic (and on the transactional id, if any)
// — authz.go.

type pendingAck struct {
	p    *leader.Partition
	pm   *store.Partition
	last int64
	resp *kmsg.ProduceResponseTopicPartition
}

func handleProduce(s *Server, c *conn, req *kmsg.ProduceRequest) kmsg.Response {
	s.lastData.Store(time.Now().UnixNano())
	if resp, refused := s.quotas.StorageRefusal(c.cluster, req); refused {
		return resp // the cluster is at its storage limit (quota.go)
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	now := time.Now().UnixMilli()
	var waits []pendingAck
	// The one deadline of this request's waits on moves (leaderhint.go),
	// never past its own timeout.
	redirectBy := time.Now().Add(min(redirectWait, max(time.Duration(req.TimeoutMillis)*time.Millisecond, 0)))
	txnDenied := req.TransactionID != nil && !c.may(acl.TransactionalID, *req.TransactionID, acl.Write)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		denied := txnDenied || !c.may(acl.Topic, rt.Topic, acl.Write)
		if internal := topicconfig.Internal(rt.Topic); denied || internal {
			// Internal topics are read-only, to whoever may write them.
			code, msg := kerr.InvalidTopicException.Code, strp("cannot append to internal topic "+rt.Topic)
			if denied {
				code, msg = kerr.TopicAuthorizationFailed.Code, nil
			}
			if txnDenied {
				code = kerr.TransactionalIDAuthorizationFailed.Code
			}
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode, sp.ErrorMessage = rp.Partition, code, msg
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		_, t := s.topic(c, rt.Topic)
		if t == nil {
			s.autoCreate(c, rt.Topic)
		}
		var configs map[string]string
		if t != nil {
			configs = t.Configs
		}
		maxBytes := int(topicconfig.Int64(configs, "max.message.bytes"))
		stamps := topicconfig.TimestampsOf(configs)
		// Sized up front: waits keep pointers into this slice.
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			out := &st.Partitions[i]
			*out = kmsg.NewProduceResponseTopicPartition()
			out.Partition = rp.Partition
			out.BaseOffset, out.LogAppendTime, out.LogStartOffset = -1, -1, -1

			pm := partitionOf(t, rp.Partition)
			if pm == nil {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			p := s.awaitLead(c.ctx, pm, redirectBy)
			if p == nil {
				out.ErrorCode = kerr.NotLeaderForPartition.Code
				s.hintLeader(resp, out, pm)
				continue
			}
			hdrs, err := batch.Validate(rp.Records, maxBytes)
			if err == nil {
				// Streamed into nothing: MESSAGE_TOO_LARGE past the
				// limit, CORRUPT_MESSAGE if undecodable.
				err = batch.CheckDecompressed(rp.Records, hdrs, batch.DecompressLimit(int64(maxBytes)))
			}
			for i := 0; err == nil && i < len(hdrs); i++ {
				err = stamps.Check(hdrs[i].BaseTimestamp, hdrs[i].MaxTimestamp, now)
			}
			if err != nil {
				if out.ErrorCode == 0 {
					out.ErrorCode, _ = errCode(err)
				}
				out.ErrorMessage = strp(err.Error())
				continue
			}
			res, err := s.appendProduced(c, req, p, rp.Records, hdrs, stamps.LogAppendTime)
			if err != nil {
				code, msg := produceErrCode(err, req.Version)
				out.ErrorCode, out.ErrorMessage = code, strp(msg)
				if errors.Is(err, leader.ErrNotLeader) {
					s.afterHandOff(c.ctx, pm.ID, redirectBy)
					s.hintLeader(resp, out, pm)
				}
				continue
			}
			s.meter.Produced(pm.ID, len(rp.Records)) // load report
			s.meterZone(c, "produce", len(rp.Records))
			out.BaseOffset, out.LogAppendTime = res.BaseOffset, res.LogAppendTime
			out.LogStartOffset, _ = p.Offsets()
			if req.Acks == -1 {
				waits = append(waits, pendingAck{p: p, pm: pm, last: res.LastOffset, resp: out})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return nil
	}
	if len(waits) > 0 {
		// Wait for the commits off the connection's reader (conn.serve),
		// so pipelined requests are appended meanwhile.
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		connCtx := c.ctx
		c.deferred = func() {
			ctx, cancel := context.WithTimeout(connCtx, timeout)
			defer cancel()
			for _, w := range waits {
				if err := w.p.WaitCommitted(ctx, w.last); err != nil {
					w.resp.BaseOffset = -1
					if errors.Is(err, leader.ErrNotLeader) {
						w.resp.ErrorCode = kerr.NotLeaderForPartition.Code
						s.afterHandOff(ctx, w.pm.ID, redirectBy)
						s.hintLeader(resp, w.resp, w.pm)
					} else {
						w.resp.ErrorCode = kerr.RequestTimedOut.Code
					}
				}
			}
		}
	}
	return resp
}

// appendProduced appends a partition's batches, checking a transactional
// producer's transaction first when the partition needs it.
func (s *Server) appendProduced(c *conn, req *kmsg.ProduceRequest, p *leader.Partition, records []byte, hdrs []batch.Header, logAppend bool) (leader.AppendResult, error) {
	i := slices.IndexFunc(hdrs, batch.Header.Transactional)
	if i < 0 {
		return p.Append(records, hdrs, logAppend)
	}
	h := hdrs[i]
	if req.TransactionID == nil {
		return leader.AppendResult{}, fmt.Errorf("%w: a transactional batch without a transactional id", leader.ErrInvalidTxnState)
	}
	if !h.Idempotent() {
		return leader.AppendResult{}, fmt.Errorf("%w: a transactional batch without a producer id", store.ErrProducerIDMapping)
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	// A marker appended between the check and the append voids the check
	// (leader.ErrTxnRaced): check again, a few times.
	for try := 0; ; try++ {
		g, needed := p.TxnCheck(h.ProducerID, h.ProducerEpoch)
		if needed {
			if err := s.checkTxn(ctx, c, req, h, p); err != nil {
				return leader.AppendResult{}, err
			}
		}
		res, err := p.AppendTxn(records, hdrs, logAppend, g)
		if !errors.Is(err, leader.ErrTxnRaced) || try == 3 {
			return res, err
		}
	}
}

// checkTxn checks in Postgres that a transactional produce belongs to its
// producer's ongoing transaction, or (version 12, transaction version 2)
// adds the partition to it.
func (s *Server) checkTxn(ctx context.Context, c *conn, req *kmsg.ProduceRequest, h batch.Header, p *leader.Partition) error {
	check := s.store.VerifyTxnPartition
	if req.Version >= 12 {
		check = s.store.AddTxnPartition
	}
	// Kafka retries an ending transaction for a version-2 produce
	// rather than send the client back with it.
	retryUntil := time.Now().Add(100 * time.Millisecond)
	for {
		err := check(ctx, store.TxnKey{ClusterID: c.cluster, TransactionalID: *req.TransactionID}, h.ProducerID, h.ProducerEpoch, p.ID)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrTxnState) && !errors.Is(err, store.ErrProducerIDMapping) &&
			!errors.Is(err, store.ErrProducerFenced) && !errors.Is(err, store.ErrTxnCompleting) {
			s.log.Warn("transaction check failed", "partition", p.ID, "err", err)
			return errTxnCheck
		}
		if !errors.Is(err, store.ErrTxnCompleting) || req.Version < 12 || time.Now().After(retryUntil) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// produceErrCode is errCode with the answers Kafka gives a transactional
// produce, which depend on the version.
func produceErrCode(err error, version int16) (int16, string) {
	const unverified = "Unable to verify the partition has been added to the transaction"
	switch {
	case errors.Is(err, store.ErrTxnState), errors.Is(err, leader.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code, "Partition was not added to the transaction"
	case errors.Is(err, store.ErrProducerIDMapping):
		return kerr.InvalidProducerIDMapping.Code, err.Error()
	case errors.Is(err, store.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code, err.Error()
	case errors.Is(err, store.ErrTxnCompleting) && version >= 12:
		return kerr.ConcurrentTransactions.Code, err.Error()
	case errors.Is(err, store.ErrTxnCompleting), errors.Is(err, leader.ErrTxnRaced):
		return kerr.NotEnoughReplicas.Code, unverified + ". Underlying error: CONCURRENT_TRANSACTIONS"
	case errors.Is(err, errTxnCheck):
		return kerr.NotEnoughReplicas.Code, unverified
	}
	return errCode(err)
}

// errTxnCheck: Postgres could not answer a transaction check (Kafka's
// coordinator being unavailable), retriable.
var errTxnCheck = errors.New("broker: transaction check failed")

// hintLeader names, in a NOT_LEADER_OR_FOLLOWER answer for pm, the leader
// to go to and its endpoint (KIP-951; produce v10+ carries them, older
// versions ignore them).
func (s *Server) hintLeader(resp *kmsg.ProduceResponse, out *kmsg.ProduceResponseTopicPartition, pm *store.Partition) {
	h, b, ok := s.leaderRedirect(pm)
	if !ok {
		return
	}
	out.CurrentLeader.LeaderID, out.CurrentLeader.LeaderEpoch = h.leader, h.epoch
	for _, rb := range resp.Brokers {
		if rb.NodeID == b.ID {
			return
		}
	}
	rb := kmsg.NewProduceResponseBroker()
	rb.NodeID, rb.Host, rb.Port, rb.Rack = b.ID, b.Host, b.Port, strp(b.Rack)
	resp.Brokers = append(resp.Brokers, rb)
}
