package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch (API key 9).
// Versions: 0-8.
//
// v8+ (the multi-group form) answers each group on its own. The protocol,
// with its deviations, is data-plane/group's 09_offset_fetch.go.
//
// v7+ RequireStable: partitions with offsets committed in a transaction
// that has not ended (or whose group marker is not applied yet) answer
// UNSTABLE_OFFSET_COMMIT (retriable), from Postgres (txn_offsets).
//
// Authorization: DESCRIBE on the group, then DESCRIBE on each topic:
// offsets of topics the principal may not describe are left out of an
// all-topics fetch and refused where the request named the topic.

func handleOffsetFetch(s *Server, c *conn, req *kmsg.OffsetFetchRequest) kmsg.Response {
	if req.Version >= 8 {
		// Multi-group form: answer each group on its own, NOT_COORDINATOR
		// for those whose slot is elsewhere.
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		for _, g := range req.Groups {
			if code := s.groupCheck(c, g.Group, acl.Describe); code != 0 {
				rg := kmsg.NewOffsetFetchResponseGroup()
				rg.Group, rg.ErrorCode = g.Group, code
				resp.Groups = append(resp.Groups, rg)
				continue
			}
			one := *req
			one.Groups = []kmsg.OffsetFetchRequestGroup{g}
			for _, rg := range s.groups.OffsetFetch(c.groupCtx(), c.cluster, &one).Groups {
				requested := map[string]bool{}
				for _, rt := range g.Topics {
					requested[rt.Topic] = true
				}
				kept := rg.Topics[:0]
				for _, rt := range rg.Topics {
					if c.sees(acl.Topic, rt.Topic) {
						kept = append(kept, rt)
					} else if requested[rt.Topic] {
						c.denied(acl.Topic, rt.Topic, acl.Describe)
						for i := range rt.Partitions {
							p := &rt.Partitions[i]
							p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = -1, -1, nil, kerr.TopicAuthorizationFailed.Code
						}
						kept = append(kept, rt)
					}
				}
				rg.Topics = kept
				if req.RequireStable && rg.ErrorCode == 0 {
					unstable, err := s.unstableOffsets(c, g.Group)
					for i := range rg.Topics {
						for j := range rg.Topics[i].Partitions {
							p := &rg.Topics[i].Partitions[j]
							if code := unstableCode(unstable, err, rg.Topics[i].Topic, p.Partition); code != 0 && p.ErrorCode == 0 {
								p.Offset, p.ErrorCode = -1, code
							}
						}
					}
				}
				resp.Groups = append(resp.Groups, rg)
			}
		}
		return resp
	}
	if code := s.groupCheck(c, req.Group, acl.Describe); code != 0 {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = code
		return resp
	}
	resp := s.groups.OffsetFetch(c.groupCtx(), c.cluster, req)
	// Offsets of topics the principal may not describe: left out of an
	// all-topics fetch, refused where the request named the topic.
	requested := map[string]bool{}
	for _, rt := range req.Topics {
		requested[rt.Topic] = true
	}
	kept := resp.Topics[:0]
	for _, rt := range resp.Topics {
		if c.sees(acl.Topic, rt.Topic) {
			kept = append(kept, rt)
		} else if requested[rt.Topic] {
			c.denied(acl.Topic, rt.Topic, acl.Describe)
			for i := range rt.Partitions {
				p := &rt.Partitions[i]
				p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = -1, -1, nil, kerr.TopicAuthorizationFailed.Code
			}
			kept = append(kept, rt)
		}
	}
	resp.Topics = kept
	if req.Version >= 7 && req.RequireStable && resp.ErrorCode == 0 {
		unstable, err := s.unstableOffsets(c, req.Group)
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				p := &resp.Topics[i].Partitions[j]
				if code := unstableCode(unstable, err, resp.Topics[i].Topic, p.Partition); code != 0 && p.ErrorCode == 0 {
					p.Offset, p.ErrorCode = -1, code
				}
			}
		}
	}
	return resp
}

// unstableOffsets returns the group's partitions with pending
// transactional offsets.
func (s *Server) unstableOffsets(c *conn, group string) (map[string]map[int32]bool, error) {
	ctx, cancel := c.txnCtx()
	defer cancel()
	m, err := s.store.PendingTxnOffsets(ctx, c.cluster, group)
	if err != nil {
		s.log.Warn("reading pending transactional offsets", "group", group, "err", err)
	}
	return m, err
}

// unstableCode is a require_stable fetch's error for a partition:
// UNSTABLE_OFFSET_COMMIT if it has pending offsets, and when they could
// not be read, COORDINATOR_NOT_AVAILABLE (retriable) rather than a
// possibly stale offset.
func unstableCode(unstable map[string]map[int32]bool, err error, topic string, partition int32) int16 {
	switch {
	case err != nil:
		return kerr.CoordinatorNotAvailable.Code
	case unstable[topic][partition]:
		return kerr.UnstableOffsetCommit.Code
	}
	return 0
}
