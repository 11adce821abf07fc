package broker

import (
	"context"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords (API key 21).
// Versions: 0-2.
//
// Moves the log start offset forward (offset -1 means the high watermark).
// Only the leader accepts it; whole index rows below the new start are
// dropped at once, the objects later by garbage collection.
//
// Authorization: DELETE on each topic.

func handleDeleteRecords(s *Server, c *conn, req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, time.Duration(max(req.TimeoutMillis, 5000))*time.Millisecond)
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		denied := !c.may(acl.Topic, rt.Topic, acl.Delete)
		var t *store.Topic
		if !denied {
			_, t = s.topic(c, rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			pm := partitionOf(t, rp.Partition)
			var p interface {
				SetLogStart(int64)
				Offsets() (int64, int64)
			}
			if pm != nil {
				if lp := s.lead.Partition(pm.ID); lp != nil {
					p = lp
				}
			}
			switch {
			case pm == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case p == nil:
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				_, hw := p.Offsets()
				if rp.Offset > hw || rp.Offset < -1 {
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
					break
				}
				low, err := s.store.AdvanceLogStart(ctx, pm.ID, rp.Offset)
				if err != nil {
					sp.ErrorCode, _ = errCode(err)
					break
				}
				p.SetLogStart(low)
				sp.LowWatermark = low
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
