package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ShareGroupDescribe (API key 77).
// Versions: 0-1.
//
// KIP-932 share groups, on their coordinator (see 76). A share group
// without members here is GROUP_ID_NOT_FOUND. AuthorizedOperations is not
// computed (INT32_MIN, "not requested").
//
// Authorization: DESCRIBE on each group.

func handleShareGroupDescribe(s *Server, c *conn, req *kmsg.ShareGroupDescribeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	v := s.view.Load()
	names := func(id [16]byte) string {
		if t := v.topicByID(c.cluster, id); t != nil {
			return t.Name
		}
		return ""
	}
	for _, g := range req.GroupIDs {
		if code := s.groupCheck(c, g, acl.Describe); code != 0 {
			rg := kmsg.NewShareGroupDescribeResponseGroup()
			rg.GroupID, rg.ErrorCode = g, code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		resp.Groups = append(resp.Groups, s.shareGroups.Describe(c.cluster, []string{g}, names)...)
	}
	return resp
}
