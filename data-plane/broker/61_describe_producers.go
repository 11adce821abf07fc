package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeProducers (API key 61).
// Versions: 0-0.
//
// The producers with state on each partition (KIP-664), from its leader:
// id, epoch, last sequence, last timestamp, the coordinator epoch of the
// last marker and the first offset of the open transaction.
//
// Deviation: the last timestamp and the coordinator epoch are kept in the
// leader's memory only, so a producer that has not written since the
// partition moved here answers -1 for them.
//
// Authorization: READ on each topic.

func handleDescribeProducers(s *Server, c *conn, req *kmsg.DescribeProducersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		denied := !c.may(acl.Topic, rt.Topic, acl.Read)
		t := s.view.Load().topic(c.cluster, rt.Topic)
		for _, part := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = part
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if p, code := s.ledFor(t, part, -1); code != 0 {
				sp.ErrorCode = code
			} else {
				for _, pi := range p.Producers() {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = pi.ProducerID, int32(pi.Epoch), pi.LastSequence
					ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pi.LastTimestamp, pi.CoordinatorEpoch, pi.TxnFirstOffset
					sp.ActiveProducers = append(sp.ActiveProducers, ap)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
