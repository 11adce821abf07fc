package broker

import (
	"context"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeClientQuotas (API key 48).
// Versions: 0-1.
//
// Describes the virtual cluster's quotas as those of the default user
// entity: producer_byte_rate and consumer_byte_rate from its effective
// limits (clientquotas.go), read from Postgres so an alteration through
// another broker shows at once.
//
// Deviation: Eddy's quotas are the cluster's, shared by its clients, not
// per user or client id; filters naming a user or another entity type
// match nothing. A malformed filter (an exact match without a name, a
// default one with a name, an unknown match type, an entity type filtered
// twice) is INVALID_REQUEST.
//
// Authorization: DESCRIBE_CONFIGS on the cluster.

func handleDescribeClientQuotas(s *Server, c *conn, req *kmsg.DescribeClientQuotasRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if !c.may(acl.Cluster, acl.ClusterName, acl.DescribeConfigs) {
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, strp("not authorized to describe client quotas")
		return resp
	}
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	match, err := matchesClusterEntity(req.Components, req.Strict)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, strp(err.Error())
		return resp
	}
	if !match {
		return resp
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	own, ceilings, err := s.store.Limits(ctx, c.cluster)
	if err != nil {
		code, msg := errCode(err)
		resp.ErrorCode, resp.ErrorMessage = code, strp(msg)
		return resp
	}
	e := kmsg.NewDescribeClientQuotasResponseEntry()
	ent := kmsg.NewDescribeClientQuotasResponseEntryEntity()
	ent.Type = quotaEntityUser
	e.Entity = append(e.Entity, ent)
	e.Values = quotaValues(own.Capped(ceilings))
	resp.Entries = append(resp.Entries, e)
	return resp
}
