package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/store"
)

// Share groups (KIP-932) as their stored share-partitions show them: the
// groups of a cluster with their backlog (what an autoscaler or KEDA
// scales share consumers by), one group's share-partitions, and operator
// resets to the earliest or latest offsets and deletions of that state.
// Membership lives in the brokers; a reset or deletion does not wait for
// the group to be empty (the Kafka API's AlterShareGroupOffsets does):
// members still consuming see their in-flight acknowledgements fail and
// continue from the reset state.

func (s *Server) listShareGroups(c echo.Context) error {
	return listInCluster(s, c, s.st.ShareGroupSummaries, func(g store.ShareGroupSummary) client.ShareGroup {
		return client.ShareGroup{GroupID: g.Group, Partitions: g.Partitions, Backlog: g.Backlog, UpdatedAt: g.UpdatedAt}
	})
}

func (s *Server) getShareGroup(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	offs, err := s.st.ShareGroupOffsets(c.Request().Context(), cl.OrgID, cl.ID, c.Param("group_id"))
	if err != nil {
		return storeError(err, "share group")
	}
	return c.JSON(http.StatusOK, shareGroupOut(c.Param("group_id"), offs))
}

func shareGroupOut(group string, offs []store.ShareOffset) client.ShareGroupDetail {
	out := client.ShareGroupDetail{ShareGroup: client.ShareGroup{GroupID: group, Partitions: int32(len(offs))}, Offsets: make([]client.ShareOffset, 0, len(offs))}
	for _, o := range offs {
		out.Offsets = append(out.Offsets, client.ShareOffset{Topic: o.Topic, Partition: o.Partition, StartOffset: o.Start,
			HighWatermark: o.HighWatermark, Backlog: o.Backlog()})
		out.Backlog += o.Backlog()
		if o.UpdatedAt.After(out.UpdatedAt) {
			out.UpdatedAt = o.UpdatedAt
		}
	}
	return out
}

// resetShareGroup starts every share-partition of the group over at the
// log start ("earliest") or the high watermark ("latest"). A reset to a
// timestamp goes through the Kafka API (kadm resolves it with ListOffsets).
func (s *Server) resetShareGroup(c echo.Context) error {
	// The cluster first: another tenant's cluster is not found, whatever
	// the body.
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	var req client.ShareGroupReset
	if err := decodeJSON(c, 1<<10, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if req.To != "earliest" && req.To != "latest" {
		fe.add("to", "must be earliest or latest")
	}
	if err := fe.err(); err != nil {
		return err
	}
	return s.rewriteShareGroup(c, cl, func(o store.ShareOffset) int64 {
		if req.To == "earliest" {
			return o.LogStart
		}
		return o.HighWatermark
	}, http.StatusOK)
}

func (s *Server) deleteShareGroupOffsets(c echo.Context) error {
	cl, err := s.loadCluster(c)
	if err != nil {
		return err
	}
	return s.rewriteShareGroup(c, cl, func(store.ShareOffset) int64 { return -1 }, http.StatusNoContent)
}

// rewriteShareGroup resets each share-partition of the group to start(o)
// (negative: deletes it) and answers with the group after it, or no
// content.
func (s *Server) rewriteShareGroup(c echo.Context, cl store.Cluster, start func(store.ShareOffset) int64, status int) error {
	ctx, group := c.Request().Context(), c.Param("group_id")
	offs, err := s.st.ShareGroupOffsets(ctx, cl.OrgID, cl.ID, group)
	if err != nil {
		return storeError(err, "share group")
	}
	rows := make([]store.SharePartitionState, len(offs))
	for i, o := range offs {
		rows[i] = store.SharePartitionState{ClusterID: cl.ID, Group: group, PartitionID: o.PartitionID, Start: start(o)}
	}
	if err := s.st.ResetSharePartitions(ctx, rows); err != nil {
		return storeError(err, "share group")
	}
	if status == http.StatusNoContent {
		return c.NoContent(status)
	}
	offs, err = s.st.ShareGroupOffsets(ctx, cl.OrgID, cl.ID, group)
	if err != nil {
		return storeError(err, "share group")
	}
	return c.JSON(status, shareGroupOut(group, offs))
}
