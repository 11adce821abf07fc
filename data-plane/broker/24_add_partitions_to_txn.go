package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddPartitionsToTxn (API key 24).
// Versions: 0-5.
//
// v0-3 are the client's form: the partitions join the producer's
// transaction, which becomes Ongoing (store.AddTxnPartitions). v4+ are
// Kafka's broker-to-broker batched form: several transactional ids at
// once, each answered on its own, and VerifyOnly asks, without adding,
// whether each partition is in the ongoing transaction (0, or
// INVALID_TXN_STATE). The transition errors are the coordinator's
// (txn.go): NOT_COORDINATOR, INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED
// (INVALID_PRODUCER_EPOCH before v2), CONCURRENT_TRANSACTIONS while the
// last transaction's markers are written. A partition that does not exist
// fails with UNKNOWN_TOPIC_OR_PARTITION and the others of the request with
// OPERATION_NOT_ATTEMPTED, as in Kafka.
//
// Deviation: v4+ need no CLUSTER_ACTION (Kafka keeps them for brokers).
// Eddy's partition leaders check Postgres themselves; a client may ask,
// and is authorized as for v0-3, within its own cluster.
//
// Authorization: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), WRITE on each topic
// (TOPIC_AUTHORIZATION_FAILED).

func handleAddPartitionsToTxn(s *Server, c *conn, req *kmsg.AddPartitionsToTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version >= 4 {
		for _, rt := range req.Transactions {
			topics := make([]txnTopic, len(rt.Topics))
			for i, t := range rt.Topics {
				topics[i] = txnTopic{t.Topic, t.Partitions}
			}
			codes := s.addTxnPartitions(c, req.Version, store.TxnChange{
				TxnKey:     store.TxnKey{ClusterID: c.cluster, TransactionalID: rt.TransactionalID},
				ProducerID: rt.ProducerID, ProducerEpoch: rt.ProducerEpoch,
			}, rt.VerifyOnly, topics)
			st := kmsg.NewAddPartitionsToTxnResponseTransaction()
			st.TransactionalID = rt.TransactionalID
			for i, t := range topics {
				tt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				tt.Topic = t.topic
				for j, p := range t.partitions {
					tp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
					tp.Partition, tp.ErrorCode = p, codes[i][j]
					tt.Partitions = append(tt.Partitions, tp)
				}
				st.Topics = append(st.Topics, tt)
			}
			resp.Transactions = append(resp.Transactions, st)
		}
		return resp
	}
	topics := make([]txnTopic, len(req.Topics))
	for i, t := range req.Topics {
		topics[i] = txnTopic{t.Topic, t.Partitions}
	}
	codes := s.addTxnPartitions(c, req.Version, store.TxnChange{
		TxnKey:     store.TxnKey{ClusterID: c.cluster, TransactionalID: req.TransactionalID},
		ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch,
	}, false, topics)
	for i, t := range topics {
		tt := kmsg.NewAddPartitionsToTxnResponseTopic()
		tt.Topic = t.topic
		for j, p := range t.partitions {
			tp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			tp.Partition, tp.ErrorCode = p, codes[i][j]
			tt.Partitions = append(tt.Partitions, tp)
		}
		resp.Topics = append(resp.Topics, tt)
	}
	return resp
}

type txnTopic struct {
	topic      string
	partitions []int32
}

// addTxnPartitions answers one transaction of the request: an error code
// per partition, shaped like topics.
func (s *Server) addTxnPartitions(c *conn, version int16, ch store.TxnChange, verify bool, topics []txnTopic) [][]int16 {
	codes := make([][]int16, len(topics))
	for i, t := range topics {
		codes[i] = make([]int16, len(t.partitions))
	}
	fill := func(code int16, onlyOK bool) {
		for i := range codes {
			for j := range codes[i] {
				if !onlyOK || codes[i][j] == 0 {
					codes[i][j] = code
				}
			}
		}
	}
	api := "AddPartitionsToTxn"
	defer func() { s.txnMet.observe(api, firstCode(codes)) }()
	if !c.may(acl.TransactionalID, ch.TransactionalID, acl.Write) {
		fill(kerr.TransactionalIDAuthorizationFailed.Code, false)
		return codes
	}
	var ids []int64
	where := map[int64][2]int{}
	failed := false
	for i, t := range topics {
		if !c.may(acl.Topic, t.topic, acl.Write) {
			for j := range codes[i] {
				codes[i][j] = kerr.TopicAuthorizationFailed.Code
			}
			failed = true
			continue
		}
		_, tm := s.topic(c, t.topic)
		for j, p := range t.partitions {
			pm := partitionOf(tm, p)
			if pm == nil {
				codes[i][j], failed = kerr.UnknownTopicOrPartition.Code, true
				continue
			}
			if _, dup := where[pm.ID]; !dup {
				ids = append(ids, pm.ID)
			}
			where[pm.ID] = [2]int{i, j}
		}
	}
	if failed {
		fill(kerr.OperationNotAttempted.Code, true)
		return codes
	}
	fence, ok := s.slotFence(c.cluster, ch.TransactionalID)
	if !ok {
		fill(kerr.NotCoordinator.Code, false)
		return codes
	}
	ch.Fence = fence
	ctx, cancel := c.txnCtx()
	defer cancel()
	if !verify {
		if err := s.store.AddTxnPartitions(ctx, ch, ids); err != nil {
			fill(s.txnCode(err, fencedCode(version, 2)), false)
		}
		return codes
	}
	api = "AddPartitionsToTxn verify"
	in, err := s.store.TxnHasPartitions(ctx, ch, ids)
	if err != nil {
		fill(s.txnCode(err, fencedCode(version, 2)), false)
		return codes
	}
	for i, t := range topics {
		tm := s.view.Load().topic(c.cluster, t.topic)
		for j, p := range t.partitions {
			if pm := partitionOf(tm, p); pm == nil || !in[pm.ID] {
				codes[i][j] = kerr.InvalidTxnState.Code
			}
		}
	}
	return codes
}

// firstCode is the first error of codes, for metrics.
func firstCode(codes [][]int16) int16 {
	for _, cs := range codes {
		for _, c := range cs {
			if c != 0 {
				return c
			}
		}
	}
	return 0
}
