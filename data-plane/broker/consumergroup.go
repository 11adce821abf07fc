package broker

import (
	"github.com/eddy-streams/eddy/data-plane/group"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupHeartbeat v0-v1 and ConsumerGroupDescribe v0-v1 (KIP-848
// consumer groups). Ownership works as for classic groups (groups.go); the
// protocol lives in data-plane/group. The coordinator resolves subscribed
// topic names through this broker's routing view of the connection's
// virtual cluster, so a member can only ever be assigned its own tenant's
// topics.

func handleConsumerGroupHeartbeat(s *Server, c *conn, req *kmsg.ConsumerGroupHeartbeatRequest) kmsg.Response {
	if !s.owns(c, req.Group) {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	v := s.view.Load()
	cluster := c.cluster
	lookup := func(name string) (group.TopicInfo, bool) {
		t := v.topic(cluster, name)
		if t == nil {
			return group.TopicInfo{}, false
		}
		return group.TopicInfo{ID: t.ID, Name: t.Name, Partitions: int32(len(t.Partitions))}, true
	}
	return s.groups.ConsumerGroupHeartbeat(c.groupCtx(), c.cluster, req, lookup)
}

func handleConsumerGroupDescribe(s *Server, c *conn, req *kmsg.ConsumerGroupDescribeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, g := range req.Groups {
		if !s.owns(c, g) {
			rg := kmsg.NewConsumerGroupDescribeResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.NotCoordinator.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		one := *req
		one.Groups = []string{g}
		resp.Groups = append(resp.Groups, s.groups.ConsumerGroupDescribe(c.groupCtx(), c.cluster, &one).Groups...)
	}
	return resp
}
