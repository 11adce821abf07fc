package broker

import (
	"context"
	"errors"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateAcls (API key 30).
// Versions: 0-3.
//
// ACLs belong to the connection's virtual cluster: the grants an ACL makes
// or refuses apply only in it, whatever principal or resource it names. An
// ACL identical to an existing one succeeds, as in Kafka. Brokers apply
// changes within moments, on open connections too (authz.go).
//
// Deviations: principals are User:<service-account-id> or User:*, hosts *
// or an IP address, and resource types topic, group, cluster and
// transactional id (INVALID_REQUEST otherwise).
//
// Authorization: ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED
// otherwise).

func handleCreateACLs(s *Server, c *conn, req *kmsg.CreateACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	allowed := c.may(acl.Cluster, acl.ClusterName, acl.Alter)
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	for _, cr := range req.Creations {
		r := kmsg.NewCreateACLsResponseResult()
		if !allowed {
			r.ErrorCode, r.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, strp("not authorized to create ACLs")
			resp.Results = append(resp.Results, r)
			continue
		}
		rt, pt, op, perm, ok := acl.FromKafka(cr.ResourceType, cr.ResourcePatternType, cr.Operation, cr.PermissionType)
		if !ok {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, strp("resource type, pattern type, operation and permission must be concrete values (topic, group, cluster or transactional id; literal or prefixed)")
			resp.Results = append(resp.Results, r)
			continue
		}
		a := acl.ACL{Cluster: c.cluster, Principal: cr.Principal, ResourceType: rt, ResourceName: cr.ResourceName,
			PatternType: pt, Operation: op, Permission: perm, Host: cr.Host}
		if err := a.Validate(); err != nil {
			var fe *acl.FieldError
			msg := err.Error()
			if errors.As(err, &fe) {
				msg = fe.Field + " " + fe.Message
			}
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, strp(msg)
			resp.Results = append(resp.Results, r)
			continue
		}
		// An identical ACL exists: success, as in Kafka.
		if _, err := s.store.CreateACL(ctx, store.AnyOrg, a); err != nil && !errors.Is(err, store.ErrExists) {
			r.ErrorCode, _ = errCode(err)
			r.ErrorMessage = strp(err.Error())
			if r.ErrorCode == kerr.UnknownServerError.Code {
				s.log.Warn("create acl failed", "cluster", c.cluster, "err", err)
				r.ErrorMessage = strp("the ACL could not be stored; try again")
			}
		}
		resp.Results = append(resp.Results, r)
	}
	return resp
}
