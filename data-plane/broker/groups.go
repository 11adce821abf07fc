package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/eddy-streams/eddy/data-plane/group"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Group coordination shared by the group APIs (FindCoordinator, the
// classic group APIs and the KIP-848 ones; each in its own file).
//
// Groups are spread over coordinator slots (hash of cluster and group id);
// each slot is led by one broker like a partition. A broker that does not
// own a group's slot answers NOT_COORDINATOR so the client looks it up
// again. Offset commits are fenced by the slot's leader epoch in Postgres
// (store.CommitOffsetsBatch, batched across requests by commitbatch.go),
// so a commit in flight while the slot moves fails with NOT_COORDINATOR
// instead of landing behind the new coordinator's back. Group membership
// is persisted the same way (groupstate.go). The protocol itself lives in
// data-plane/group; this file also runs offset retention for the slots
// this broker owns and exports consumer lag (eddy_group_lag,
// eddy_group_committed_offset).
//
// Authorization comes first, before the coordinator check, as in Kafka
// (groupCheck); what each API asks for is in its file's header.

// owns reports whether this broker coordinates group.
func (s *Server) owns(c *conn, group string) bool {
	_, ok := s.slotFence(c.cluster, group)
	return ok
}

// slotFence returns the slot fence of a group of cluster when this broker
// coordinates it: the slot and the leader epoch at which this broker holds
// it. Offset commits and group states carry it to Postgres (see
// store.CommitOffsetsBatch), so a write in flight when the slot moves can
// never land after the new coordinator loaded the group.
func (s *Server) slotFence(cluster, group string) (store.SlotFence, bool) {
	v := s.view.Load()
	if v == nil || len(v.slots) == 0 {
		return store.SlotFence{}, false
	}
	sl := v.slots[slotFor(cluster, group, len(v.slots))]
	if sl.LeaderID != s.cfg.ID {
		return store.SlotFence{}, false
	}
	if _, live := v.byBroker[sl.LeaderID]; !live {
		return store.SlotFence{}, false
	}
	return store.SlotFence{Slot: sl.Slot, BrokerID: s.cfg.ID, LeaderEpoch: sl.LeaderEpoch}, true
}

type fenceKey struct{}

// fencedCtx is groupCtx carrying the slot fence for the offset store.
func (c *conn) fencedCtx(f store.SlotFence) context.Context {
	return context.WithValue(c.groupCtx(), fenceKey{}, f)
}

// splitGroups returns the groups of a batched request that pass groupCheck,
// in order, so the coordinator answers them in one call; refuse is called
// for each of the others with its error code.
func (s *Server) splitGroups(c *conn, groups []string, op acl.Operation, refuse func(group string, code int16)) []string {
	var allowed []string
	for _, g := range groups {
		if code := s.groupCheck(c, g, op); code != 0 {
			refuse(g, code)
			continue
		}
		allowed = append(allowed, g)
	}
	return allowed
}

// groupCheck authorizes op on group and then checks this broker
// coordinates it: 0, GROUP_AUTHORIZATION_FAILED or NOT_COORDINATOR.
func (s *Server) groupCheck(c *conn, group string, op acl.Operation) int16 {
	if !c.may(acl.Group, group, op) {
		return kerr.GroupAuthorizationFailed.Code
	}
	if !s.owns(c, group) {
		return kerr.NotCoordinator.Code
	}
	return 0
}

// offsetStore adapts the store to the coordinator; commits go
// through the batcher.
type offsetStore struct {
	st      *store.Store
	commits *commitBatcher
}

// CommitOffsets writes under the slot fence the commit's handler put in
// ctx, batched with other requests' commits (commitbatch.go); a commit that
// lost its slot fails with group.ErrNotCoordinator.
func (o offsetStore) CommitOffsets(ctx context.Context, cluster, grp string, offs []group.Offset) error {
	fence, ok := ctx.Value(fenceKey{}).(store.SlotFence)
	if !ok {
		return fmt.Errorf("broker: offset commit for group %s without a slot fence: %w", grp, group.ErrNotCoordinator)
	}
	rows := make([]store.GroupOffset, len(offs))
	for i, x := range offs {
		rows[i] = store.GroupOffset{Topic: x.Topic, Partition: x.Partition, Offset: x.Offset, LeaderEpoch: x.LeaderEpoch, Metadata: x.Metadata}
	}
	err := o.commits.commit(ctx, store.OffsetCommit{ClusterID: cluster, Group: grp, Fence: fence, Offsets: rows})
	if errors.Is(err, store.ErrFenced) {
		return fmt.Errorf("%w: %w", group.ErrNotCoordinator, err)
	}
	return err
}

func (o offsetStore) FetchOffsets(ctx context.Context, cluster, grp string) ([]group.Offset, error) {
	rows, err := o.st.FetchOffsets(ctx, cluster, grp)
	if err != nil {
		return nil, err
	}
	out := make([]group.Offset, len(rows))
	for i, x := range rows {
		out[i] = group.Offset{Topic: x.Topic, Partition: x.Partition, Offset: x.Offset, LeaderEpoch: x.LeaderEpoch, Metadata: x.Metadata}
	}
	return out, nil
}

func (o offsetStore) DeleteGroupOffsets(ctx context.Context, cluster, grp string, topics map[string][]int32) error {
	return o.st.DeleteGroupOffsets(ctx, cluster, grp, topics)
}

func (o offsetStore) ListGroupsWithOffsets(ctx context.Context, cluster string) ([]string, error) {
	return o.st.GroupsWithOffsets(ctx, cluster)
}

// groupCtx carries the client's id and address to the coordinator (member
// ids and DescribeGroups show them).
func (c *conn) groupCtx() context.Context {
	return group.WithClient(c.ctx, c.client())
}

// client is the connection's client id and host, as group members show
// them.
func (c *conn) client() group.Client {
	host, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
	return group.Client{ID: c.clientID, Host: host}
}

func (o offsetStore) ExpireGroupOffsets(ctx context.Context, cluster, grp string, before time.Time) (int64, error) {
	return o.st.ExpireGroupOffsets(ctx, cluster, grp, before)
}

// ownsGroup reports whether this broker coordinates group of cluster.
func (s *Server) ownsGroup(cluster, group string) bool {
	return s.view.Load().coordinatorOf(cluster, group) == s.cfg.ID
}

// expireOffsetsLoop applies offsets retention (Kafka's
// offsets.retention.minutes) to the groups this broker coordinates, then
// removes Empty groups left without offsets, every
// tenth of the retention (between a second and ten minutes) until ctx ends.
func (s *Server) expireOffsetsLoop(ctx context.Context) {
	interval := min(max(s.cfg.Group.OffsetsRetention/10, time.Second), 10*time.Minute)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.expireOffsets(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("offset expiry failed", "err", err)
		}
	}
}

func (s *Server) expireOffsets(ctx context.Context) error {
	stale, err := s.store.StaleGroups(ctx, time.Now().Add(-s.cfg.Group.OffsetsRetention))
	if err != nil {
		return err
	}
	for _, k := range stale {
		if !s.ownsGroup(k.ClusterID, k.Group) {
			continue
		}
		if _, err := s.groups.ExpireOffsets(ctx, k.ClusterID, k.Group); err != nil {
			return err
		}
	}
	_, err = s.groups.RemoveEmptyGroups(ctx)
	return err
}

// groupLagCollector exports consumer lag per group and partition, for the
// groups this broker coordinates, read from Postgres at scrape time (so
// every committed offset counts, also of groups not loaded in memory).
type groupLagCollector struct {
	s                    *Server
	lag, stable, offsets *prometheus.Desc
}

func newGroupLagCollector(s *Server) *groupLagCollector {
	labels := []string{"virtual_cluster", "group", "topic", "partition"}
	return &groupLagCollector{
		s: s,
		lag: prometheus.NewDesc("eddy_group_lag",
			"Records between a group's committed offset and the partition's high watermark.", labels, nil),
		// A read_committed consumer can read only up to the last stable
		// offset; the broker cannot tell which isolation level a group's
		// members fetch with, so both lags are exported.
		stable: prometheus.NewDesc("eddy_group_stable_lag",
			"Records between a group's committed offset and the partition's last stable offset (the lag of a read_committed group).", labels, nil),
		offsets: prometheus.NewDesc("eddy_group_committed_offset",
			"A group's committed offset of a partition.", labels, nil),
	}
}

func (c *groupLagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.stable
	ch <- c.offsets
}

func (c *groupLagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.s.store.GroupLags(ctx)
	if err != nil {
		c.s.log.Warn("collecting group lag", "err", err)
		return
	}
	for _, r := range rows {
		if !c.s.ownsGroup(r.ClusterID, r.Group) {
			continue
		}
		p := strconv.Itoa(int(r.Partition))
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(max(r.HighWatermark-r.Committed, 0)), r.ClusterID, r.Group, r.Topic, p)
		ch <- prometheus.MustNewConstMetric(c.stable, prometheus.GaugeValue, float64(max(r.LastStable-r.Committed, 0)), r.ClusterID, r.Group, r.Topic, p)
		ch <- prometheus.MustNewConstMetric(c.offsets, prometheus.GaugeValue, float64(r.Committed), r.ClusterID, r.Group, r.Topic, p)
	}
}
