package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/brokerload"
)

// Quota usage: how close a cluster is to its effective limits now, from
// what the control plane already knows. Rates, connections and throttling
// come from the live brokers' last load reports (internal/brokerload,
// written with every heartbeat), summed over the pool as the limits hold
// for the pool; partitions, topics and groups from the metadata; stored
// bytes from the ledger's last storage sample. Read-only: limits change
// through PATCH /v1/clusters/{id}.

func (s *Server) getQuotaUsage(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	occ, err := s.st.Occupancy(ctx, cl.ID)
	if err != nil {
		return err
	}
	loads, err := s.st.BrokerLoads(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	out := client.QuotaUsage{ClusterID: cl.ID, AsOf: now.UTC(), Limits: cl.Limits.Capped(cl.Ceilings),
		Partitions: cl.Partitions, Topics: occ.Topics, Groups: occ.Groups, StoredBytes: occ.StoredBytes}
	if !occ.StorageSampledAt.IsZero() {
		at := occ.StorageSampledAt.UTC()
		out.StorageSampledAt = &at
	}
	var last time.Time
	for id, b := range loads {
		r, err := brokerload.Parse(b)
		if err != nil {
			// One broker's unreadable report must not hide the others'.
			s.log.Warn("quota usage: unreadable broker load report", "broker", id, "err", err)
			continue
		}
		out.BrokersReporting++
		rt, ok := r.Clusters[cl.ID]
		if !ok {
			continue
		}
		out.BytesInPerSec += rt.BytesIn
		out.BytesOutPerSec += rt.BytesOut
		out.RequestsPerSec += rt.Requests
		out.Connections += rt.Connections
		out.ThrottleSecondsPerSec += rt.Throttle
		if rt.LastThrottledAt.After(last) && now.Sub(rt.LastThrottledAt) < brokerload.RecentThrottle {
			last = rt.LastThrottledAt
		}
	}
	if !last.IsZero() {
		last = last.UTC()
		out.LastThrottledAt = &last
	}
	return c.JSON(http.StatusOK, out)
}
