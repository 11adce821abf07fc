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
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator v0-v4 and the classic group APIs: JoinGroup v0-v9,
// SyncGroup v0-v5, Heartbeat v0-v4, LeaveGroup v0-v5, OffsetCommit v0-v8,
// OffsetFetch v0-v8, DescribeGroups v0-v5, ListGroups v0-v4, DeleteGroups
// v0-v2, OffsetDelete v0.
//
// Groups are spread over coordinator slots (hash of cluster and group id);
// each slot is led by one broker like a partition. A broker that does not
// own a group's slot answers NOT_COORDINATOR so the client looks it up
// again. Offset commits are fenced by the slot's leader epoch in Postgres
// (store.CommitOffsetsBatch, batched across requests by commitbatch.go),
// so a commit in flight while the slot moves fails with NOT_COORDINATOR
// instead of landing behind the new coordinator's back. Group membership
// is persisted the same way (groupstate.go). The protocol itself lives in
// data-plane/group; this file also runs offset retention for the slots this broker owns and exports consumer lag
// (eddy_group_lag, eddy_group_committed_offset). Transaction
// coordinators (key type 1) do not exist yet: COORDINATOR_NOT_AVAILABLE.
//
// Authorization comes first, before the coordinator check, as in Kafka:
// READ on the group to join, sync, heartbeat, leave and commit, DESCRIBE
// to find its coordinator, fetch its offsets or describe it, DELETE to
// delete it or its offsets; READ (commit, offset delete) or DESCRIBE
// (offset fetch) on each topic named. ListGroups shows every group to
// principals that may DESCRIBE the cluster, else those they may describe.

func handleFindCoordinator(s *Server, c *conn, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	v := s.view.Load()
	find := func(key string) (int32, string, int32, int16, *string) {
		if req.CoordinatorType != 0 {
			if !c.may(acl.TransactionalID, key, acl.Describe) {
				return -1, "", -1, kerr.TransactionalIDAuthorizationFailed.Code, nil
			}
			return -1, "", -1, kerr.CoordinatorNotAvailable.Code, strp("transactions are not supported yet")
		}
		if !c.may(acl.Group, key, acl.Describe) {
			return -1, "", -1, kerr.GroupAuthorizationFailed.Code, nil
		}
		id := v.coordinatorOf(c.cluster, key)
		b, ok := v.byBroker[id]
		if !ok {
			return -1, "", -1, kerr.CoordinatorNotAvailable.Code, strp("no coordinator is available yet")
		}
		return b.ID, b.Host, b.Port, 0, nil
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			rc := kmsg.NewFindCoordinatorResponseCoordinator()
			rc.Key = key
			rc.NodeID, rc.Host, rc.Port, rc.ErrorCode, rc.ErrorMessage = find(key)
			resp.Coordinators = append(resp.Coordinators, rc)
		}
		return resp
	}
	resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage = find(req.CoordinatorKey)
	return resp
}

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

func handleJoinGroup(s *Server, c *conn, req *kmsg.JoinGroupRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = code, -1
		return resp
	}
	return s.groups.JoinGroup(c.groupCtx(), c.cluster, req)
}

func handleSyncGroup(s *Server, c *conn, req *kmsg.SyncGroupRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	return s.groups.SyncGroup(c.groupCtx(), c.cluster, req)
}

func handleHeartbeat(s *Server, c *conn, req *kmsg.HeartbeatRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	}
	return s.groups.Heartbeat(c.groupCtx(), c.cluster, req)
}

func handleLeaveGroup(s *Server, c *conn, req *kmsg.LeaveGroupRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	return s.groups.LeaveGroup(c.groupCtx(), c.cluster, req)
}

func handleOffsetCommit(s *Server, c *conn, req *kmsg.OffsetCommitRequest) kmsg.Response {
	code := int16(0)
	fence, ok := s.slotFence(c.cluster, req.Group)
	if !c.may(acl.Group, req.Group, acl.Read) {
		code = kerr.GroupAuthorizationFailed.Code
	} else if !ok {
		code = kerr.NotCoordinator.Code
	}
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	// Partitions of topics the principal may not read, or that do not
	// exist, are refused here; the coordinator only sees commits for
	// partitions that exist in the connection's cluster.
	var unknown []kmsg.OffsetCommitResponseTopic
	known := req.Topics[:0:0]
	for _, rt := range req.Topics {
		denied := !c.may(acl.Topic, rt.Topic, acl.Read)
		var t *store.Topic
		if !denied {
			_, t = s.topic(c, rt.Topic)
		}
		kt := rt
		kt.Partitions = nil
		var ut *kmsg.OffsetCommitResponseTopic
		for _, rp := range rt.Partitions {
			if partitionOf(t, rp.Partition) != nil {
				kt.Partitions = append(kt.Partitions, rp)
				continue
			}
			if ut == nil {
				nt := kmsg.NewOffsetCommitResponseTopic()
				nt.Topic = rt.Topic
				ut = &nt
			}
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.UnknownTopicOrPartition.Code
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
			ut.Partitions = append(ut.Partitions, sp)
		}
		if len(kt.Partitions) > 0 {
			known = append(known, kt)
		}
		if ut != nil {
			unknown = append(unknown, *ut)
		}
	}
	req.Topics = known
	resp := s.groups.OffsetCommit(c.fencedCtx(fence), c.cluster, req)
	resp.Topics = append(resp.Topics, unknown...)
	return resp
}

func handleOffsetFetch(s *Server, c *conn, req *kmsg.OffsetFetchRequest) kmsg.Response {
	if req.Version >= 8 {
		// Multi-group form: answer each group on its own, NOT_COORDINATOR
		// for those whose slot is elsewhere.
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		for _, g := range req.Groups {
			if code := s.groupCheck(c, g.Group, acl.Describe); code != 0 {
				rg := kmsg.NewOffsetFetchResponseGroup()
				rg.Group, rg.ErrorCode = g.Group, code
				resp.Groups = append(resp.Groups, rg)
				continue
			}
			one := *req
			one.Groups = []kmsg.OffsetFetchRequestGroup{g}
			for _, rg := range s.groups.OffsetFetch(c.groupCtx(), c.cluster, &one).Groups {
				requested := map[string]bool{}
				for _, rt := range g.Topics {
					requested[rt.Topic] = true
				}
				kept := rg.Topics[:0]
				for _, rt := range rg.Topics {
					if c.sees(acl.Topic, rt.Topic) {
						kept = append(kept, rt)
					} else if requested[rt.Topic] {
						c.denied(acl.Topic, rt.Topic, acl.Describe)
						for i := range rt.Partitions {
							p := &rt.Partitions[i]
							p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = -1, -1, nil, kerr.TopicAuthorizationFailed.Code
						}
						kept = append(kept, rt)
					}
				}
				rg.Topics = kept
				resp.Groups = append(resp.Groups, rg)
			}
		}
		return resp
	}
	if code := s.groupCheck(c, req.Group, acl.Describe); code != 0 {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = code
		return resp
	}
	resp := s.groups.OffsetFetch(c.groupCtx(), c.cluster, req)
	// Offsets of topics the principal may not describe: left out of an
	// all-topics fetch, refused where the request named the topic.
	requested := map[string]bool{}
	for _, rt := range req.Topics {
		requested[rt.Topic] = true
	}
	kept := resp.Topics[:0]
	for _, rt := range resp.Topics {
		if c.sees(acl.Topic, rt.Topic) {
			kept = append(kept, rt)
		} else if requested[rt.Topic] {
			c.denied(acl.Topic, rt.Topic, acl.Describe)
			for i := range rt.Partitions {
				p := &rt.Partitions[i]
				p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = -1, -1, nil, kerr.TopicAuthorizationFailed.Code
			}
			kept = append(kept, rt)
		}
	}
	resp.Topics = kept
	return resp
}

func handleDescribeGroups(s *Server, c *conn, req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	allowed := s.splitGroups(c, req.Groups, acl.Describe, func(g string, code int16) {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, code
		resp.Groups = append(resp.Groups, rg)
	})
	if len(allowed) > 0 {
		some := *req
		some.Groups = allowed
		resp.Groups = append(resp.Groups, s.groups.DescribeGroups(c.groupCtx(), c.cluster, &some).Groups...)
	}
	return resp
}

// ListGroups lists the groups this broker coordinates, as Kafka does;
// admin clients ask every broker and merge.
func handleListGroups(s *Server, c *conn, req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := s.groups.ListGroups(c.groupCtx(), c.cluster, req)
	all := c.decide(acl.Cluster, acl.ClusterName, acl.Describe)
	kept := resp.Groups[:0]
	for _, g := range resp.Groups {
		if s.owns(c, g.Group) && (all || c.sees(acl.Group, g.Group)) {
			kept = append(kept, g)
		}
	}
	resp.Groups = kept
	return resp
}

func handleDeleteGroups(s *Server, c *conn, req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	allowed := s.splitGroups(c, req.Groups, acl.Delete, func(g string, code int16) {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, code
		resp.Groups = append(resp.Groups, rg)
	})
	if len(allowed) > 0 {
		some := *req
		some.Groups = allowed
		resp.Groups = append(resp.Groups, s.groups.DeleteGroups(c.groupCtx(), c.cluster, &some).Groups...)
	}
	return resp
}

func handleOffsetDelete(s *Server, c *conn, req *kmsg.OffsetDeleteRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Delete); code != 0 {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = code
		return resp
	}
	// Topics the principal may not read are refused here, the rest go to
	// the coordinator.
	var denied []kmsg.OffsetDeleteResponseTopic
	kept := req.Topics[:0:0]
	for _, rt := range req.Topics {
		if c.may(acl.Topic, rt.Topic, acl.Read) {
			kept = append(kept, rt)
			continue
		}
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
			st.Partitions = append(st.Partitions, sp)
		}
		denied = append(denied, st)
	}
	one := *req
	one.Topics = kept
	resp := s.groups.OffsetDelete(c.groupCtx(), c.cluster, &one)
	resp.Topics = append(resp.Topics, denied...)
	return resp
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
	host, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
	return group.WithClient(c.ctx, group.Client{ID: c.clientID, Host: host})
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
	s            *Server
	lag, offsets *prometheus.Desc
}

func newGroupLagCollector(s *Server) *groupLagCollector {
	labels := []string{"cluster", "group", "topic", "partition"}
	return &groupLagCollector{
		s: s,
		lag: prometheus.NewDesc("eddy_group_lag",
			"Records between a group's committed offset and the partition's high watermark.", labels, nil),
		offsets: prometheus.NewDesc("eddy_group_committed_offset",
			"A group's committed offset of a partition.", labels, nil),
	}
}

func (c *groupLagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
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
		ch <- prometheus.MustNewConstMetric(c.offsets, prometheus.GaugeValue, float64(r.Committed), r.ClusterID, r.Group, r.Topic, p)
	}
}
