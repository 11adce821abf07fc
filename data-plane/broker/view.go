package broker

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
)

// view is an immutable routing snapshot; handlers load it once per request.
type view struct {
	brokers  []store.Broker
	byBroker map[int32]store.Broker
	clusters map[string]store.Cluster
	topics   map[string]map[string]*store.Topic // cluster → name → topic
	byID     map[[16]byte]*store.Topic
	// byPartition indexes every partition by its id.
	byPartition map[int64]*store.Partition
	// serving are the live brokers that are not draining, by id.
	serving []int32
	// servingIn are the serving brokers of each zone (--rack), by id.
	servingIn map[string][]int32
	slots     []store.Slot
	at        time.Time // when the snapshot it was built from began
	// mdParts caches Metadata's answer for a topic's partitions
	// (*store.Topic → []kmsg.MetadataResponseTopicPartition, 03_metadata.go).
	mdParts sync.Map
	// replicas holds a one-broker replica set per broker, {id}, shared by
	// every partition it leads.
	replicas map[int32][]int32
}

func newView(md *store.Metadata) *view {
	v := &view{
		brokers:  md.Brokers,
		byBroker: make(map[int32]store.Broker, len(md.Brokers)),
		clusters: md.Clusters,
		topics:   map[string]map[string]*store.Topic{},
		byID:     make(map[[16]byte]*store.Topic, len(md.Topics)),
		slots:    md.Slots,
	}
	n := 0
	for i := range md.Topics {
		n += len(md.Topics[i].Partitions)
	}
	v.byPartition = make(map[int64]*store.Partition, n)
	v.replicas = make(map[int32][]int32, len(md.Brokers))
	for _, b := range md.Brokers {
		v.byBroker[b.ID] = b
		v.replicas[b.ID] = []int32{b.ID}
		if !b.Draining {
			v.serving = append(v.serving, b.ID)
			if b.Rack != "" {
				if v.servingIn == nil {
					v.servingIn = map[string][]int32{}
				}
				v.servingIn[b.Rack] = append(v.servingIn[b.Rack], b.ID)
			}
		}
	}
	slices.Sort(v.serving)
	for _, ids := range v.servingIn {
		slices.Sort(ids)
	}
	for i := range md.Topics {
		t := &md.Topics[i]
		m := v.topics[t.ClusterID]
		if m == nil {
			m = map[string]*store.Topic{}
			v.topics[t.ClusterID] = m
		}
		m[t.Name] = t
		v.byID[t.ID] = t
		for j := range t.Partitions {
			v.byPartition[t.Partitions[j].ID] = &t.Partitions[j]
		}
	}
	return v
}

func (v *view) topic(cluster, name string) *store.Topic { return v.topics[cluster][name] }

// alone is the replica set (and ISR) of a partition led by id: {id}.
func (v *view) alone(id int32) []int32 {
	if r, ok := v.replicas[id]; ok {
		return r
	}
	return []int32{id}
}

// topicByID returns a topic only if it belongs to cluster: a tenant can
// never reach another tenant's topic by guessing its id.
func (v *view) topicByID(cluster string, id [16]byte) *store.Topic {
	if t := v.byID[id]; t != nil && t.ClusterID == cluster {
		return t
	}
	return nil
}

func partitionOf(t *store.Topic, p int32) *store.Partition {
	if t == nil || p < 0 || int(p) >= len(t.Partitions) {
		return nil
	}
	return &t.Partitions[p]
}

// leaderOf returns the live leader of a partition or -1.
func (v *view) leaderOf(p *store.Partition) int32 {
	if _, ok := v.byBroker[p.LeaderID]; ok {
		return p.LeaderID
	}
	return -1
}

// metadataLeader is the leader Metadata names for p: its live leader or,
// while it has none (its broker died and placement has not run yet, or it
// was just created), the broker it is moving to, else a serving broker
// picked by its id; -1 only when no broker serves. Clients that give up
// on LEADER_NOT_AVAILABLE (kafka-go) or wait for their next periodic
// refresh (sarama: 10 minutes) then send to a live broker, which answers
// the retriable NOT_LEADER_OR_FOLLOWER until the partition has its leader
// and the client's next metadata request names it.
func (v *view) metadataLeader(p *store.Partition) int32 {
	if l := v.leaderOf(p); l >= 0 {
		return l
	}
	if b, ok := v.byBroker[p.MovingTo]; ok && !b.Draining {
		return p.MovingTo
	}
	if len(v.serving) == 0 {
		return -1
	}
	return v.serving[p.ID%int64(len(v.serving))]
}

// slotFor maps a group (or transactional id) to its coordinator slot.
func slotFor(cluster, key string, n int) int {
	if n == 0 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(cluster))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// coordinatorOf returns the live broker coordinating key, or -1.
func (v *view) coordinatorOf(cluster, key string) int32 {
	if len(v.slots) == 0 {
		return -1
	}
	sl := v.slots[slotFor(cluster, key, len(v.slots))]
	if _, ok := v.byBroker[sl.LeaderID]; ok {
		return sl.LeaderID
	}
	return -1
}

func (s *Server) metadataLoop(ctx context.Context) {
	poke := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.listenMetadata(ctx, poke) }()
	defer wg.Wait()
	defer s.handOffs.wg.Wait()

	t := time.NewTicker(s.cfg.MetadataInterval)
	defer t.Stop()
	failed := false // the last reload failed: retry at the next tick
	for {
		var req refreshReq
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !failed && !s.brokersChanged(ctx) {
				continue
			}
		case <-poke:
		case req = <-s.refresh:
			// Requests that queued up while a reload ran are answered
			// by it: its snapshot began after they were made.
			if s.view.Load().at.After(req.asked) {
				req.reply <- nil
				continue
			}
		}
		err := s.reload(ctx)
		failed = err != nil
		if req.reply != nil {
			req.reply <- err
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("metadata refresh failed", "err", err)
		}
	}
}

// brokersChanged reports whether the live brokers differ from the view's
// (a session expired, which nothing announces), or the view is older than
// MetadataFullInterval, or the check failed: a reload is due.
func (s *Server) brokersChanged(ctx context.Context) bool {
	v := s.view.Load()
	if v == nil || time.Since(v.at) >= s.cfg.MetadataFullInterval {
		return true
	}
	live, err := s.store.LiveBrokers(ctx)
	return err != nil || !slices.Equal(live, v.brokers)
}

// listenMetadata pokes the metadata loop whenever Postgres announces a
// change of topics or leadership (NOTIFY eddy_metadata), so the routing
// view follows within milliseconds; the periodic re-read every
// MetadataFullInterval is the fallback.
func (s *Server) listenMetadata(ctx context.Context, poke chan<- struct{}) {
	s.store.Poke(ctx, "eddy_metadata", poke, func(err error) {
		s.log.Warn("metadata listener failed; retrying", "err", err)
	})
}

// topic looks up a topic of the connection's cluster. On a miss it re-reads
// the routing view once (unless it is only moments old), so a topic just
// created through another broker is found.
func (s *Server) topic(c *conn, name string) (*view, *store.Topic) {
	v := s.view.Load()
	if t := v.topic(c.cluster, name); t != nil || time.Since(v.at) < 20*time.Millisecond {
		return v, t
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if err := s.refreshNow(ctx); err != nil {
		return v, nil
	}
	v = s.view.Load()
	return v, v.topic(c.cluster, name)
}

// reload reads a fresh snapshot, publishes it and reconciles leadership.
func (s *Server) reload(ctx context.Context) error {
	start := time.Now()
	s.met.reloads.Inc()
	md, err := s.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	// Groups of slots this broker now leads are loaded before the view
	// routes them here: their members carry on where the previous
	// coordinator left them.
	gained := gainedSlots(s.view.Load(), md.Slots, s.cfg.ID)
	if len(gained) > 0 {
		if err := s.loadGroups(ctx, gained, len(md.Slots)); err != nil {
			return fmt.Errorf("loading groups of coordinator slots %v: %w", gained, err)
		}
	}
	v := newView(md)
	v.at = start
	old := s.view.Swap(v)
	s.closeDisallowed(old, v)
	s.forgetHandOffs(v)
	if len(gained) > 0 {
		s.pokeTxns() // the group markers the last leader left (txn.go)
	}

	want := map[int64]int32{}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			if p.LeaderID == s.cfg.ID {
				want[p.ID] = p.LeaderEpoch
			}
		}
	}
	if err := s.lead.Sync(ctx, want); err != nil {
		return err
	}
	s.loaded.Store(true)
	s.startHandOffs(ctx, md) // graceful moves away from here (handoff.go)
	// Groups whose coordinator slot moved away are forgotten; their members
	// find the new coordinator after NOT_COORDINATOR. (A slot this broker
	// leads again at a new epoch was reloaded above.)
	if old != nil && len(old.slots) == len(v.slots) {
		lost := map[int]bool{}
		for i, sl := range v.slots {
			if old.slots[i].LeaderID == s.cfg.ID && sl.LeaderID != s.cfg.ID {
				lost[i] = true
			}
		}
		if len(lost) > 0 {
			n := len(v.slots)
			s.groups.Forget(func(cluster, group string) bool { return lost[slotFor(cluster, group, n)] })
			s.shareGroups.Forget(func(cluster, group string) bool { return lost[slotFor(cluster, group, n)] })
		}
	}
	return nil
}

// refreshReq asks the metadata loop for a view read after asked.
type refreshReq struct {
	asked time.Time
	reply chan error
}

// refreshNow waits for a view whose snapshot began after this call: the
// metadata loop reloads, or answers at once if a reload already did.
func (s *Server) refreshNow(ctx context.Context) error {
	req := refreshReq{asked: time.Now(), reply: make(chan error, 1)}
	select {
	case s.refresh <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitLeaders re-reads the view until every partition of the named
// topics has a live leader or ctx ends. New topics are placed by the
// control plane within moments; waiting here spares clients a round of
// LEADER_NOT_AVAILABLE retries.
func (s *Server) awaitLeaders(ctx context.Context, cluster string, names []string) *view {
	for {
		if err := s.refreshNow(ctx); err != nil {
			return s.view.Load()
		}
		v := s.view.Load()
		if allLed(v, cluster, names) {
			return v
		}
		select {
		case <-ctx.Done():
			return v
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func allLed(v *view, cluster string, names []string) bool {
	for _, n := range names {
		t := v.topic(cluster, n)
		if t == nil {
			continue
		}
		for i := range t.Partitions {
			if v.leaderOf(&t.Partitions[i]) < 0 {
				return false
			}
		}
	}
	return true
}

// ledPartition returns the partition if this broker leads it at the
// client's leader epoch (-1: the client does not say), else the Kafka error
// a client expects: NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH (the client
// is ahead of a deposed leader's view: it must refresh) or
// UNKNOWN_LEADER_EPOCH (this broker has not caught up yet).
// ledFor is ledPartition for partition of t, which may not exist
// (UNKNOWN_TOPIC_OR_PARTITION): what every partition-addressed request
// checks before it touches the partition.
func (s *Server) ledFor(t *store.Topic, partition, clientEpoch int32) (*leader.Partition, int16) {
	pm := partitionOf(t, partition)
	if pm == nil {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	return s.ledPartition(pm, clientEpoch)
}

func (s *Server) ledPartition(pm *store.Partition, clientEpoch int32) (*leader.Partition, int16) {
	p := s.lead.Partition(pm.ID)
	switch {
	case p == nil:
		return nil, kerr.NotLeaderForPartition.Code
	case clientEpoch >= 0 && clientEpoch < p.Epoch:
		return nil, kerr.FencedLeaderEpoch.Code
	case clientEpoch > p.Epoch:
		return nil, kerr.UnknownLeaderEpoch.Code
	}
	return p, 0
}

// controllerID names a live broker as the "controller": admin requests
// can go to any broker, so clients only need a stable answer.
func (s *Server) controllerID(v *view) int32 {
	if len(v.brokers) == 0 {
		return s.cfg.ID
	}
	return v.brokers[0].ID
}
