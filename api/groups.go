package api

import (
	"context"
	"net/http"

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
