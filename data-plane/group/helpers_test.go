package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memStore is an in-memory OffsetStore standing in for the Postgres store.
// It counts calls, can fail or slow down every call, and records whether two
// calls for one group ever overlapped (the coordinator promises they don't).
type memStore struct {
	mu       sync.Mutex
	offs     map[[2]string]map[[2]any]Offset // (cluster, group) → (topic, partition) → offset
	calls    map[string]int
	inflight map[[2]string]int
	overlap  bool
	fail     error
	delay    time.Duration
}

func newMemStore() *memStore {
	return &memStore{
		offs:     make(map[[2]string]map[[2]any]Offset),
		calls:    make(map[string]int),
		inflight: make(map[[2]string]int),
	}
}

// call accounts for one store call on group k and runs fn under the lock
// unless the call fails.
func (s *memStore) call(ctx context.Context, name string, k [2]string, fn func()) error {
	s.mu.Lock()
	s.calls[name]++
	s.inflight[k]++
	if s.inflight[k] > 1 && name != "list" { // lists are not per group
		s.overlap = true
	}
	fail, delay := s.fail, s.delay
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight[k]--
		s.mu.Unlock()
	}()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
	return nil
}

func (s *memStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *memStore) setDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

func (s *memStore) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

func (s *memStore) overlapped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlap
}

func (s *memStore) CommitOffsets(ctx context.Context, cluster, group string, offs []Offset) error {
	k := [2]string{cluster, group}
	return s.call(ctx, "commit", k, func() {
		if s.offs[k] == nil {
			s.offs[k] = make(map[[2]any]Offset)
		}
		for _, o := range offs {
			s.offs[k][[2]any{o.Topic, o.Partition}] = o
		}
	})
}

func (s *memStore) FetchOffsets(ctx context.Context, cluster, group string) ([]Offset, error) {
	k := [2]string{cluster, group}
	var out []Offset
	err := s.call(ctx, "fetch", k, func() { out = slices.Collect(maps.Values(s.offs[k])) })
	return out, err
}

func (s *memStore) DeleteGroupOffsets(ctx context.Context, cluster, group string, topics map[string][]int32) error {
	k := [2]string{cluster, group}
	return s.call(ctx, "delete", k, func() {
		if topics == nil {
			delete(s.offs, k)
			return
		}
		for t, ps := range topics {
			for _, p := range ps {
				delete(s.offs[k], [2]any{t, p})
			}
		}
		if len(s.offs[k]) == 0 {
			delete(s.offs, k)
		}
	})
}

func (s *memStore) ListGroupsWithOffsets(ctx context.Context, cluster string) ([]string, error) {
	var out []string
	err := s.call(ctx, "list", [2]string{cluster, ""}, func() {
		for k, offs := range s.offs {
			if k[0] == cluster && len(offs) > 0 {
				out = append(out, k[1])
			}
		}
	})
	return out, err
}

// ExpireGroupOffsets keeps no commit times: everything counts as stale.
func (s *memStore) ExpireGroupOffsets(ctx context.Context, cluster, group string, before time.Time) (int64, error) {
	k := [2]string{cluster, group}
	var n int64
	err := s.call(ctx, "expire", k, func() {
		n = int64(len(s.offs[k]))
		delete(s.offs, k)
	})
	return n, err
}

// stored returns the stored offset of a partition.
func (s *memStore) stored(cluster, group, topic string, partition int32) (Offset, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.offs[[2]string{cluster, group}][[2]any{topic, partition}]
	return o, ok
}

var errStoreDown = errors.New("store down")

// testConfig allows short sessions and has no initial rebalance delay, so
// tests control timing explicitly.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.MinSessionTimeout = time.Millisecond
	cfg.InitialRebalanceDelay = 0
	return cfg
}

func newTestCoordinator(t *testing.T, cfg Config, store OffsetStore) *Coordinator {
	t.Helper()
	if store == nil {
		store = newMemStore()
	}
	c := New(cfg, store, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(c.Close)
	return c
}

// testCtx returns a context that bounds a test step, so a hang fails the
// test instead of the suite.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// consumer is a simulated group member driving the coordinator the way a
// client does. Its fields are used by one goroutine at a time.
type consumer struct {
	c        *Coordinator
	cluster  string
	group    string
	clientID string
	instance *string
	version  int16 // JoinGroup version; other requests use their max

	session   time.Duration
	rebalance time.Duration
	protocols []kmsg.JoinGroupRequestProtocol

	id         string
	generation int32
	leaderID   string
	members    []kmsg.JoinGroupResponseMember
	assignment string
}

func newConsumer(c *Coordinator, cluster, group, clientID string) *consumer {
	return &consumer{
		c: c, cluster: cluster, group: group, clientID: clientID,
		version:    9,
		session:    time.Second,
		rebalance:  time.Second,
		protocols:  protocols("range", "meta"),
		generation: -1,
	}
}

func protocols(nameMeta ...string) []kmsg.JoinGroupRequestProtocol {
	var out []kmsg.JoinGroupRequestProtocol
	for i := 0; i+1 < len(nameMeta); i += 2 {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = nameMeta[i]
		p.Metadata = []byte(nameMeta[i+1])
		out = append(out, p)
	}
	return out
}

func (m *consumer) isLeader() bool { return m.id != "" && m.id == m.leaderID }

func (m *consumer) joinRequest() *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = m.version
	req.Group = m.group
	req.MemberID = m.id
	req.InstanceID = m.instance
	req.SessionTimeoutMillis = int32(m.session / time.Millisecond)
	req.RebalanceTimeoutMillis = int32(m.rebalance / time.Millisecond)
	req.ProtocolType = "consumer"
	req.Protocols = m.protocols
	return req
}

// joinOnce sends one JoinGroup and records what it learns.
func (m *consumer) joinOnce(ctx context.Context) *kmsg.JoinGroupResponse {
	ctx = WithClient(ctx, Client{ID: m.clientID, Host: "/127.0.0.1"})
	resp := m.c.JoinGroup(ctx, m.cluster, m.joinRequest())
	switch resp.ErrorCode {
	case 0:
		m.id, m.generation, m.leaderID, m.members = resp.MemberID, resp.Generation, resp.LeaderID, resp.Members
	case kerr.MemberIDRequired.Code:
		m.id = resp.MemberID
	}
	return resp
}

// join joins like a client: it retries once with the id handed out by
// MEMBER_ID_REQUIRED.
func (m *consumer) join(ctx context.Context) *kmsg.JoinGroupResponse {
	resp := m.joinOnce(ctx)
	if resp.ErrorCode == kerr.MemberIDRequired.Code {
		resp = m.joinOnce(ctx)
	}
	return resp
}

// sync sends SyncGroup; a leader assigns "assigned-to-<member id>" to every
// member it was told about.
func (m *consumer) sync(ctx context.Context) *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group = m.group
	req.Generation = m.generation
	req.MemberID = m.id
	req.InstanceID = m.instance
	pt, p := "consumer", m.protocols[0].Name
	req.ProtocolType, req.Protocol = &pt, &p
	if m.isLeader() {
		for _, jm := range m.members {
			a := kmsg.NewSyncGroupRequestGroupAssignment()
			a.MemberID = jm.MemberID
			a.MemberAssignment = []byte("assigned-to-" + jm.MemberID)
			req.GroupAssignment = append(req.GroupAssignment, a)
		}
	}
	req.Version = 5
	resp := m.c.SyncGroup(ctx, m.cluster, req)
	if resp.ErrorCode == 0 {
		m.assignment = string(resp.MemberAssignment)
	}
	return resp
}

func (m *consumer) heartbeat(ctx context.Context) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group = m.group
	req.Generation = m.generation
	req.MemberID = m.id
	req.InstanceID = m.instance
	return m.c.Heartbeat(ctx, m.cluster, req).ErrorCode
}

func (m *consumer) leave(ctx context.Context) int16 {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = m.group
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = m.id
	lm.InstanceID = m.instance
	req.Members = []kmsg.LeaveGroupRequestMember{lm}
	resp := m.c.LeaveGroup(ctx, m.cluster, req)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	return resp.Members[0].ErrorCode
}

func (m *consumer) commit(ctx context.Context, topic string, partition int32, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group = m.group
	req.Generation = m.generation
	req.MemberID = m.id
	req.InstanceID = m.instance
	req.Topics = []kmsg.OffsetCommitRequestTopic{commitTopic(topic, partition, offset, "")}
	return m.c.OffsetCommit(ctx, m.cluster, req).Topics[0].Partitions[0].ErrorCode
}

func commitTopic(topic string, partition int32, offset int64, metadata string) kmsg.OffsetCommitRequestTopic {
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition = partition
	p.Offset = offset
	p.LeaderEpoch = 7
	p.Metadata = &metadata
	t.Partitions = append(t.Partitions, p)
	return t
}

// parallel runs fn for every consumer concurrently and waits.
func parallel(ms []*consumer, fn func(i int, m *consumer)) {
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() { fn(i, m) })
	}
	wg.Wait()
}

// formGroup has n new consumers join concurrently and complete the
// rebalance; it fails the test unless they end up in one generation with
// one leader and their assignments. configure, if not nil, adjusts each
// consumer first. The coordinator needs an initial rebalance delay long
// enough for all n joins to arrive.
func formGroup(t *testing.T, c *Coordinator, cluster, group string, n int, configure func(i int, m *consumer)) []*consumer {
	t.Helper()
	ms := joinGroup(t, c, cluster, group, n, configure)
	syncAll(t, ms)
	return ms
}

// joinGroup is formGroup without the SyncGroup: it leaves the group in
// CompletingRebalance.
func joinGroup(t *testing.T, c *Coordinator, cluster, group string, n int, configure func(i int, m *consumer)) []*consumer {
	t.Helper()
	ctx := testCtx(t)
	ms := make([]*consumer, n)
	for i := range ms {
		ms[i] = newConsumer(c, cluster, group, fmt.Sprintf("client-%d", i))
		if configure != nil {
			configure(i, ms[i])
		}
	}
	codes := make([]int16, n)
	parallel(ms, func(i int, m *consumer) { codes[i] = m.join(ctx).ErrorCode })
	for i, code := range codes {
		if code != 0 {
			t.Fatalf("member %d: JoinGroup error %v", i, codeName(code))
		}
	}
	for _, m := range ms {
		if m.generation != ms[0].generation {
			t.Fatalf("members joined generations %d and %d", ms[0].generation, m.generation)
		}
	}
	return ms
}

// syncAll has every consumer SyncGroup concurrently and checks that they
// share one generation and each got its own assignment.
func syncAll(t *testing.T, ms []*consumer) {
	t.Helper()
	ctx := testCtx(t)
	leaders := 0
	for _, m := range ms {
		if m.generation != ms[0].generation {
			t.Fatalf("members in generations %d and %d", ms[0].generation, m.generation)
		}
		if m.isLeader() {
			leaders++
			if len(m.members) != len(ms) {
				t.Fatalf("leader got %d members, want %d", len(m.members), len(ms))
			}
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders, want 1", leaders)
	}
	codes := make([]int16, len(ms))
	parallel(ms, func(i int, m *consumer) { codes[i] = m.sync(ctx).ErrorCode })
	for i, m := range ms {
		if codes[i] != 0 {
			t.Fatalf("member %d: SyncGroup error %v", i, codeName(codes[i]))
		}
		if want := "assigned-to-" + m.id; m.assignment != want {
			t.Fatalf("member %d: assignment %q, want %q", i, m.assignment, want)
		}
	}
}

// rejoinAll has every consumer rejoin concurrently (as after
// REBALANCE_IN_PROGRESS) and then sync.
func rejoinAll(t *testing.T, ms []*consumer) {
	t.Helper()
	ctx := testCtx(t)
	codes := make([]int16, len(ms))
	parallel(ms, func(i int, m *consumer) { codes[i] = m.join(ctx).ErrorCode })
	for i, code := range codes {
		if code != 0 {
			t.Fatalf("member %d: rejoin error %v", i, codeName(code))
		}
	}
	syncAll(t, ms)
}

// describe returns the description of one group.
func describe(t *testing.T, c *Coordinator, cluster, group string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 6
	req.Groups = []string{group}
	return c.DescribeGroups(testCtx(t), cluster, req).Groups[0]
}

// eventually polls cond until it holds or the deadline passes (in a
// bubble, of fake time).
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, within, what, poll.True(cond))
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).Error()
}

func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %s, want %s", what, codeName(got), codeName(want))
	}
}
