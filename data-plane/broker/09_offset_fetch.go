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
				rg.Topics = visibleOffsets(c, requested, rg.Topics,
					func(t *kmsg.OffsetFetchResponseGroupTopic) string { return t.Topic },
					func(t *kmsg.OffsetFetchResponseGroupTopic) {
						for i := range t.Partitions {
							p := &t.Partitions[i]
							p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = -1, -1, nil, kerr.TopicAuthorizationFailed.Code
						}
					})
				if req.RequireStable && rg.ErrorCode == 0 {
					s.markUnstable(c, g.Group, func(mark unstableMark) {
						for _, t := range rg.Topics {
							for j := range t.Partitions {
								p := &t.Partitions[j]
								mark(t.Topic, p.Partition, &p.Offset, &p.ErrorCode)
							}
						}
					})
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
	resp.Topics = visibleOffsets(c, requested, resp.Topics,
		func(t *kmsg.OffsetFetchResponseTopic) string { return t.Topic },
		func(t *kmsg.OffsetFetchResponseTopic) {
			for i := range t.Partitions {
				p := &t.Partitions[i]
				p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = -1, -1, nil, kerr.TopicAuthorizationFailed.Code
			}
		})
	if req.Version >= 7 && req.RequireStable && resp.ErrorCode == 0 {
		s.markUnstable(c, req.Group, func(mark unstableMark) {
			for _, t := range resp.Topics {
				for j := range t.Partitions {
					p := &t.Partitions[j]
					mark(t.Topic, p.Partition, &p.Offset, &p.ErrorCode)
				}
			}
		})
	}
	return resp
}

// visibleOffsets keeps the fetched topics the principal may describe,
// and those it named but may not, refused; the others are left out (an
// all-topics fetch). The two forms of OffsetFetch (one group, several)
// have their own topic types, hence name and refuse.
func visibleOffsets[T any](c *conn, requested map[string]bool, topics []T, name func(*T) string, refuse func(*T)) []T {
	kept := topics[:0]
	for i := range topics {
		t := &topics[i]
		switch n := name(t); {
		case c.sees(acl.Topic, n):
			kept = append(kept, *t)
		case requested[n]:
			c.denied(acl.Topic, n, acl.Describe)
			refuse(t)
			kept = append(kept, *t)
		}
	}
	return kept
}

// unstableMark answers one partition of a require_stable fetch.
type unstableMark func(topic string, partition int32, offset *int64, code *int16)

// markUnstable has each pass every partition of a require_stable
// fetch of group to mark, which fails those with pending transactional
// offsets with UNSTABLE_OFFSET_COMMIT, or all with
// COORDINATOR_NOT_AVAILABLE (retriable) when those cannot be read, rather
// than answer a possibly stale offset.
func (s *Server) markUnstable(c *conn, group string, each func(mark unstableMark)) {
	ctx, cancel := c.txnCtx()
	defer cancel()
	unstable, err := s.store.PendingTxnOffsets(ctx, c.cluster, group)
	if err != nil {
		s.log.Warn("reading pending transactional offsets", "group", group, "err", err)
	}
	each(func(topic string, partition int32, offset *int64, code *int16) {
		switch {
		case *code != 0:
		case err != nil:
			*offset, *code = -1, kerr.CoordinatorNotAvailable.Code
		case unstable[topic][partition]:
			*offset, *code = -1, kerr.UnstableOffsetCommit.Code
		}
	})
}
