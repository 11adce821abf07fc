package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe (API key 69).
// Versions: 0-1.
//
// KIP-848 consumer groups. Ownership works as for classic groups
// (groups.go); the protocol, with its deviations, is data-plane/group's
// 69_consumer_group_describe.go.
//
// Authorization: DESCRIBE on each group.

func handleConsumerGroupDescribe(s *Server, c *conn, req *kmsg.ConsumerGroupDescribeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, g := range req.Groups {
		if code := s.groupCheck(c, g, acl.Describe); code != 0 {
			rg := kmsg.NewConsumerGroupDescribeResponseGroup()
			rg.Group, rg.ErrorCode = g, code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		one := *req
		one.Groups = []string{g}
		resp.Groups = append(resp.Groups, s.groups.ConsumerGroupDescribe(c.groupCtx(), c.cluster, &one).Groups...)
	}
	return resp
}
