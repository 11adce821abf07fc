package broker

import (
	"time"

	"github.com/eddy-streams/eddy/data-plane/share"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterShareGroupOffsets (API key 91).
// Versions: 0-0.
//
// KIP-932 share groups, on the group's coordinator, while the group has no
// members (NON_EMPTY_GROUP otherwise): each named share-partition starts
// over at StartOffset with nothing in flight. Resets to the earliest or
// latest offset or a timestamp are resolved by the client (kadm, the REST
// API) with ListOffsets first, as in Kafka; -1 and -2 are accepted as the
// high watermark and the log start too. An offset outside the log is
// OFFSET_OUT_OF_RANGE; a partition named again is INVALID_REQUEST. The
// partitions' leaders drop the state they hold: its state epoch no longer matches (see migration 0020).
//
// Deviation: membership is not persisted, so right after a coordinator
// move a group whose members have not yet rejoined counts as empty.
//
// Authorization: READ on the group, READ on each topic.

func handleAlterShareGroupOffsets(s *Server, c *conn, req *kmsg.AlterShareGroupOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	if resp.ErrorCode = s.shareAdminCheck(c, req.GroupID, acl.Read); resp.ErrorCode != 0 {
		return resp
	}
	v := s.view.Load()
	var rows []store.SharePartitionState
	var keys []share.Key
	var written [][2]int // topic and partition index of each row
	// A partition named twice would put two rows for one key in one
	// upsert, which Postgres rejects whole: the repeat is INVALID_REQUEST
	// (its offset may differ from the first's), the first is applied.
	seen := make(map[int64]bool)
	for _, qt := range req.Topics {
		rt := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		rt.Topic = qt.Topic
		t := v.topic(c.cluster, qt.Topic)
		if t != nil {
			rt.TopicID = t.ID
		}
		for _, qp := range qt.Partitions {
			rp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			rp.Partition = qp.Partition
			pm := partitionOf(t, qp.Partition)
			switch {
			case !c.may(acl.Topic, qt.Topic, acl.Read):
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case pm == nil:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case seen[pm.ID]:
				rp.ErrorCode = kerr.InvalidRequest.Code
			default:
				seen[pm.ID] = true
				st, err := s.store.LoadPartition(c.ctx, pm.ID, time.Now())
				if err != nil {
					rp.ErrorCode, _ = errCode(err)
					break
				}
				off := qp.StartOffset
				switch off {
				case -1:
					off = st.HighWatermark
				case -2:
					off = st.LogStartOffset
				}
				if off < st.LogStartOffset || off > st.HighWatermark {
					rp.ErrorCode = kerr.OffsetOutOfRange.Code
					break
				}
				rows = append(rows, store.SharePartitionState{ClusterID: c.cluster, Group: req.GroupID, PartitionID: pm.ID, Start: off})
				keys = append(keys, share.Key{Cluster: c.cluster, Group: req.GroupID, Topic: t.ID, Partition: qp.Partition})
			}
			if rp.ErrorCode == 0 {
				written = append(written, [2]int{len(resp.Topics), len(rt.Partitions)})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if err := s.resetShares(c, rows, keys); err != nil {
		code, _ := errCode(err)
		for _, at := range written {
			resp.Topics[at[0]].Partitions[at[1]].ErrorCode = code
		}
	}
	return resp
}

// shareAdminCheck authorizes op on a share group, checks this broker
// coordinates it and that it has no members, as the offset APIs that
// change it require: 0 or the error code.
func (s *Server) shareAdminCheck(c *conn, group string, op acl.Operation) int16 {
	if code := s.groupCheck(c, group, op); code != 0 {
		return code
	}
	if s.shareGroups.Members(c.cluster, group) > 0 {
		return kerr.NonEmptyGroup.Code
	}
	return 0
}

// resetShares writes operator resets (negative Start: deletions) and drops what
// this broker holds of those share-partitions; other leaders find out at
// their next write.
func (s *Server) resetShares(c *conn, rows []store.SharePartitionState, keys []share.Key) error {
	if len(rows) == 0 {
		return nil
	}
	if err := s.store.ResetSharePartitions(c.ctx, rows); err != nil {
		s.log.Warn("resetting share-group offsets", "err", err)
		return err
	}
	reset := make(map[share.Key]bool, len(keys))
	for _, k := range keys {
		reset[k] = true
	}
	s.shares.Forget(func(k share.Key) bool { return reset[k] })
	return nil
}
