package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/store"
)

// Consumer groups as their committed offsets show them: the groups of a
// cluster with their total lag, and one group's offsets and lag per
// partition. Membership lives in the brokers' coordinators; this is the
// durable view (what `kafka-consumer-groups --describe` shows as offsets
// and lag).

func (s *Server) listGroups(c echo.Context) error {
	return listInCluster(s, c, s.st.Groups, func(g store.GroupSummary) client.ConsumerGroup {
		return client.ConsumerGroup{GroupID: g.Group, Partitions: g.Partitions, TotalLag: g.TotalLag, LastCommitAt: g.CommittedAt}
	})
}

// listInCluster answers one page of a listing of the path's cluster:
// fetch reads it, conv makes each item the client's.
func listInCluster[S, T any](s *Server, c echo.Context, fetch func(ctx context.Context, orgID, clusterID string, p store.Page) ([]S, string, error), conv func(S) T) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	items, next, err := fetch(c.Request().Context(), cl.OrgID, cl.ID, p)
	if err != nil {
		return storeError(err, "cluster")
	}
	return c.JSON(http.StatusOK, list(items, next, conv))
}

func (s *Server) getGroup(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	offs, err := s.st.GroupOffsets(c.Request().Context(), cl.OrgID, cl.ID, c.Param("group_id"))
	if err != nil {
		return storeError(err, "consumer group")
	}
	out := client.ConsumerGroupDetail{ConsumerGroup: client.ConsumerGroup{GroupID: c.Param("group_id")}, Offsets: make([]client.GroupOffset, 0, len(offs))}
	for _, o := range offs {
		out.Offsets = append(out.Offsets, client.GroupOffset{Topic: o.Topic, Partition: o.Partition, CommittedOffset: o.Offset,
			HighWatermark: o.HighWatermark, Lag: o.Lag(), Metadata: o.Metadata, CommittedAt: o.CommittedAt})
		out.TotalLag += o.Lag()
		if o.CommittedAt.After(out.LastCommitAt) {
			out.LastCommitAt = o.CommittedAt
		}
	}
	out.Partitions = int32(len(offs))
	return c.JSON(http.StatusOK, out)
}

// Lag history: what control-plane/laghistory sampled. One page holds at
// most maxLagSamples samples (a day of the default one a minute) and
// maxLagPoints partition lags (a day of a group of 69 partitions: a group
// of thousands of partitions gets shorter pages, not megabytes); a caller
// pages on from next_since.
const (
	maxLagSamples     = 1440
	maxLagPoints      = 100_000
	defaultLagHistory = 24 * time.Hour
)

func (s *Server) getLagHistory(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	var fe fieldErrors
	since := time.Now().Add(-defaultLagHistory)
	if v := c.QueryParam("since"); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err != nil {
			fe.add("since", "must be an RFC 3339 time")
		} else {
			since = t
		}
	}
	limit := maxLagSamples
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLagSamples {
			fe.add("limit", "must be an integer from 1 to %d", maxLagSamples)
		}
		limit = n
	}
	if err := fe.err(); err != nil {
		return err
	}
	group := c.Param("group_id")
	samples, more, err := s.st.GroupLagHistory(c.Request().Context(), cl.OrgID, cl.ID, group, since, limit, maxLagPoints)
	if err != nil {
		return storeError(err, "cluster")
	}
	out := client.LagHistory{GroupID: group, Samples: make([]client.LagSample, 0, len(samples))}
	for _, ls := range samples {
		o := client.LagSample{At: ls.At.UTC(), TotalLag: ls.TotalLag, Partitions: make([]client.PartitionLag, len(ls.Partitions))}
		for i, p := range ls.Partitions {
			o.Partitions[i] = client.PartitionLag{Topic: p.Topic, Partition: p.Partition, Lag: p.Lag}
		}
		out.Samples = append(out.Samples, o)
	}
	if more {
		next := samples[len(samples)-1].At.UTC()
		out.NextSince = &next
	}
	return c.JSON(http.StatusOK, out)
}
