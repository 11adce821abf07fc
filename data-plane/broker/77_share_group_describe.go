package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ShareGroupDescribe (API key 77).
// Versions: 0-1.
//
// KIP-932 share groups, on their coordinator (see 76). A share group
// without members here is Empty if it has stored share-partition state
// (as Kafka, whose groups outlive their members), GROUP_ID_NOT_FOUND
// otherwise. AuthorizedOperations is not computed (INT32_MIN, "not
// requested").
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
		described := s.shareGroups.Describe(c.cluster, []string{g}, names)
		for i := range described {
			rg := &described[i]
			if rg.ErrorCode != kerr.GroupIDNotFound.Code {
				continue
			}
			stored, err := s.store.HasShareState(c.ctx, c.cluster, g)
			switch {
			case err != nil:
				rg.ErrorCode, _ = errCode(err)
			case stored:
				rg.ErrorCode, rg.GroupState = 0, "Empty"
			}
		}
		resp.Groups = append(resp.Groups, described...)
	}
	return resp
}
