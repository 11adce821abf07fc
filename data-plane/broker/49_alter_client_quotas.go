package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterClientQuotas (API key 49).
// Versions: 0-1.
//
// Sets the virtual cluster's limits that Kafka's producer_byte_rate and
// consumer_byte_rate are, on the default user entity (clientquotas.go),
// within the plan's ceilings: above one is POLICY_VIOLATION, out of the
// limit's range INVALID_REQUEST, each with a message. An entry's
// operations apply together or not at all.
//
// Deviation: Eddy's quotas are the cluster's, shared by its clients;
// other entities (a named user, client ids, IPs) and other quota keys are
// INVALID_REQUEST, as is an entry naming a quota key twice.
//
// Authorization: ALTER_CONFIGS on the cluster.

func handleAlterClientQuotas(s *Server, c *conn, req *kmsg.AlterClientQuotasRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	allowed := c.may(acl.Cluster, acl.ClusterName, acl.AlterConfigs)
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	for _, re := range req.Entries {
		se := kmsg.NewAlterClientQuotasResponseEntry()
		for _, e := range re.Entity {
			ent := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ent.Type, ent.Name = e.Type, e.Name
			se.Entity = append(se.Entity, ent)
		}
		switch {
		case !allowed:
			se.ErrorCode, se.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, strp("not authorized to alter client quotas")
		case !isClusterEntity(re.Entity):
			se.ErrorCode, se.ErrorMessage = kerr.InvalidRequest.Code,
				strp("Eddy's client quotas are the virtual cluster's, shared by all its clients: alter those of the default user entity")
		case duplicateQuotaKey(re.Ops) != "":
			se.ErrorCode, se.ErrorMessage = kerr.InvalidRequest.Code,
				strp(fmt.Sprintf("quota %s is altered more than once in the entry", duplicateQuotaKey(re.Ops)))
		default:
			se.ErrorCode, se.ErrorMessage = s.alterQuotas(ctx, c, re.Ops, req.ValidateOnly)
		}
		resp.Entries = append(resp.Entries, se)
	}
	return resp
}

func (s *Server) alterQuotas(ctx context.Context, c *conn, ops []kmsg.AlterClientQuotasRequestEntryOp, validateOnly bool) (int16, *string) {
	_, err := s.store.SetLimits(ctx, c.cluster, validateOnly, func(l *limits.Limits, ceilings limits.Limits) error {
		for _, op := range ops {
			if err := applyQuota(l, ceilings, op.Key, op.Value, op.Remove); err != nil {
				return fmt.Errorf("%w: %v", store.ErrInvalid, err)
			}
		}
		return nil
	})
	if err == nil {
		return 0, nil
	}
	// ErrLimit (POLICY_VIOLATION) and ErrInvalid (INVALID_REQUEST) carry
	// the store's message, naming the limit and its bound or ceiling.
	code, msg := errCode(err)
	return code, strp(msg)
}
