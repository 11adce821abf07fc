package broker

import (
	"github.com/eddy-streams/eddy/data-plane/group"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupHeartbeat (API key 68).
// Versions: 0-1.
//
// KIP-848 consumer groups. Ownership works as for classic groups
// (groups.go); the protocol, with its deviations, is data-plane/group's
// 68_consumer_group_heartbeat.go. The coordinator resolves subscribed topic
// names through this broker's routing view of the connection's virtual
// cluster, so a member can only ever be assigned its own tenant's topics.
//
// Authorization: READ on the group; subscribed topics the member may not
// DESCRIBE are treated as missing, and a SubscribedTopicRegex never matches
// them (as Kafka authorizes regex resolution since 4.0) nor internal
// topics.

func handleConsumerGroupHeartbeat(s *Server, c *conn, req *kmsg.ConsumerGroupHeartbeatRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = code
		return resp
	}
	return s.groups.ConsumerGroupHeartbeat(c.groupCtx(), c.cluster, req, groupTopics(s.view.Load(), c))
}

// groupTopics is the connection's view of its cluster's topics for the
// group coordinator. Its version is the view's snapshot time: a new view
// may hold created or deleted topics, and the coordinator bounds how often
// it re-resolves regexes anyway. Internal topics are not in the view's
// topics, so regexes never match them.
func groupTopics(v *view, c *conn) group.Topics {
	return group.Topics{
		Lookup: func(name string) (group.TopicInfo, bool) {
			t := subscribable(v, c, name)
			if t == nil {
				return group.TopicInfo{}, false
			}
			return group.TopicInfo{ID: t.ID, Name: t.Name, Partitions: int32(len(t.Partitions))}, true
		},
		Names: func() []string {
			ts := v.topics[c.cluster]
			out := make([]string, 0, len(ts))
			for name := range ts {
				if c.sees(acl.Topic, name) {
					out = append(out, name)
				}
			}
			return out
		},
		Version: uint64(v.at.UnixNano()),
	}
}

// subscribable returns the topic of the connection's cluster a group member
// subscribes to by name, or nil: topics the member may not describe are as
// good as missing, as in Kafka, and never assigned. It runs on the group
// coordinators' loops, so it must stay quick (it reads the view only).
func subscribable(v *view, c *conn, name string) *store.Topic {
	t := v.topic(c.cluster, name)
	if t == nil || !c.sees(acl.Topic, name) {
		return nil
	}
	return t
}
