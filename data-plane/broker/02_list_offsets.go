package broker

import (
	"context"
	"errors"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets (API key 2).
// Versions: 1-8.
//
// Latest (-1, the committed high watermark; with read_committed, isolation
// level 1, the last stable offset), earliest (-2, the log start
// offset), max timestamp (-3, v7+) and by timestamp. Only the leader
// answers. A timestamp lookup reads the index in Postgres to find the first
// object range whose batches reach the timestamp, then walks that one
// batch's records to find the exact record, decompressing them as it
// reads, up to batch.DecompressLimit of the topic (off the produce/fetch
// path). -4 (earliest local) is answered like -2: every committed byte is
// "local".
//
// Deviations, so that no ListOffsets decompresses more than a limit (one
// stored before produce checked decompressed sizes could be a gigabyte):
//   - -3 never decompresses. Kafka 3.8+ (KAFKA-16310) answers the offset of
//     the first record carrying the partition's max timestamp, found by
//     decompressing the batch whose header has it. Eddy finds that batch
//     by header and answers exactly for an uncompressed batch (walked in
//     place), a LogAppendTime or single-record one, or one whose first
//     record is the latest; for another compressed batch it answers the
//     batch's base offset, the earliest the record can be
//     (batch.OffsetOfMaxTimestamp). The timestamp is always exact.
//   - A timestamp lookup landing on a batch whose records decompress past
//     the limit answers that batch's base offset with timestamp -1 (every
//     record at or after the timestamp is at or after it), rather than an
//     error a client would retry forever.
//
// Internal topics are empty: every offset is 0 (internaltopics.go).
//
// Authorization: DESCRIBE on each topic.

func handleListOffsets(s *Server, c *conn, req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		denied := !c.may(acl.Topic, rt.Topic, acl.Describe)
		var t *store.Topic
		if !denied {
			_, t = s.topic(c, rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition, sp.Offset, sp.Timestamp, sp.LeaderEpoch = rp.Partition, -1, -1, -1
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if topicconfig.Internal(rt.Topic) {
				// Empty: every offset is 0 (internaltopics.go).
				if rp.Partition < 0 || rp.Partition >= s.view.Load().internalPartitions() {
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				} else {
					sp.Offset = 0
				}
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, code := s.ledFor(t, rp.Partition, rp.CurrentLeaderEpoch)
			switch {
			case code != 0:
				sp.ErrorCode = code
			default:
				sp.LeaderEpoch = p.Epoch
				start, hw := p.Offsets()
				switch rp.Timestamp {
				case -1:
					sp.Offset = hw
					if req.IsolationLevel == 1 {
						sp.Offset = p.LastStable()
					}
				case -2, -4:
					sp.Offset = start
				case -3:
					seg, ok, err := s.store.MaxTimestamp(ctx, p.ID)
					if err == nil && ok {
						sp.Offset, sp.Timestamp, err = s.offsetAtTimestamp(ctx, p.ID, seg, seg.MaxTimestamp, start, func(raw []byte) (int64, int64, bool, error) {
							off, _, err := batch.OffsetOfMaxTimestamp(raw)
							return off, seg.MaxTimestamp, err == nil, err
						})
					}
					if err != nil {
						sp.ErrorCode, _ = errCode(err)
					}
				default:
					if rp.Timestamp < 0 {
						sp.ErrorCode = kerr.InvalidRequest.Code
						break
					}
					seg, ok, err := s.store.SegmentAtTimestamp(ctx, p.ID, rp.Timestamp)
					if err == nil && ok {
						limit := batch.DecompressLimit(topicconfig.Int64(t.Configs, "max.message.bytes"))
						sp.Offset, sp.Timestamp, err = s.offsetAtTimestamp(ctx, p.ID, seg, rp.Timestamp, start, func(raw []byte) (int64, int64, bool, error) {
							off, ts, ok, err := batch.FirstAtOrAfter(raw, rp.Timestamp, limit)
							if errors.Is(err, batch.ErrTooLarge) {
								h, _ := batch.ParseHeader(raw)
								return h.BaseOffset, -1, true, nil
							}
							return off, ts, ok, err
						})
					}
					if err != nil {
						sp.ErrorCode, _ = errCode(err)
					}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// offsetAtTimestamp finds, inside one index range, the first record at or
// after logStart whose timestamp is >= ts, with find looking inside each
// batch whose header reaches ts.
func (s *Server) offsetAtTimestamp(ctx context.Context, partitionID int64, seg store.Segment, ts, logStart int64, find func(raw []byte) (int64, int64, bool, error)) (int64, int64, error) {
	data, err := s.lead.ReadRange(ctx, partitionID, seg)
	if err != nil {
		return -1, -1, err
	}
	off, rts := int64(-1), int64(-1)
	var derr error
	batch.Each(data, func(h batch.Header, raw []byte) bool {
		if h.MaxTimestamp < ts || h.LastOffset() < logStart {
			return true
		}
		o, t, ok, err := find(raw)
		if err != nil {
			derr = err
			return false
		}
		if ok && o >= logStart {
			off, rts = o, t
			return false
		}
		return true
	})
	return off, rts, derr
}
