package broker

import (
	"context"
	"errors"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Bounds on per-tenant state the broker keeps on a tenant's behalf.
//
// Producer ids: every InitProducerId allocates an id, and every id that
// writes leaves state in each partition it touches (see leader's producer
// expiry), so ids are rationed per cluster by a token bucket shared by the
// pool (store.AllocateProducerID), sized by the cluster's effective
// producer_ids_per_hour and producer_id_burst (its own limits capped by
// its plan's, internal/limits). Kafka has no such quota (KIP-936, a
// producer-id rate, is not implemented); over the rate InitProducerId is
// answered as Kafka answers a request over its other rate quota (KIP-599,
// topic mutations): THROTTLING_QUOTA_EXCEEDED with throttle_time_ms set to
// when a token is available. Clients treat the error as retriable and
// retry after the throttle time.

// allocateProducerID takes an id from the connection's cluster budget: it
// returns the id, or the error code and throttle time to answer.
func (s *Server) allocateProducerID(c *conn) (id int64, code int16, throttleMillis int32) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	perSecond, burst := s.limits.ProducerIDs(c.cluster)
	id, wait, err := s.store.AllocateProducerID(ctx, c.cluster, perSecond, burst)
	switch {
	case errors.Is(err, store.ErrLimit):
		return -1, kerr.ThrottlingQuotaExceeded.Code, int32(min(wait, time.Hour) / time.Millisecond)
	case err != nil:
		s.log.Warn("producer id allocation failed", "err", err)
		return -1, kerr.CoordinatorNotAvailable.Code, 0
	}
	return id, 0, 0
}

// GroupCount lets the group coordinator cap a cluster's groups
// (group.GroupCounter).
func (g groupStore) GroupCount(ctx context.Context, cluster, group string) (int, bool, error) {
	return g.st.GroupCount(ctx, cluster, group)
}

// MaxGroups is the cluster's effective max_groups (group.GroupLimiter).
func (g groupStore) MaxGroups(cluster string) int { return int(g.s.limits.Groups(cluster)) }
