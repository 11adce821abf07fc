package broker

import (
	"container/list"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch sessions (KIP-227), for Fetch v7 and later.
//
// A client opens a session with a full request (epoch 0); the broker
// answers with a session id, remembers the partitions and what it last
// told the client about each (high watermark, last stable offset, log
// start), and from then on the client sends only what changed (epoch 1, 2,
// ...: partitions added or with a new fetch offset, ForgottenTopics
// removed) and the broker answers only partitions with records, an error,
// or offsets that moved. Epoch -1 closes the session.
//
// As in Kafka, the errors are top-level and answered at once:
// FETCH_SESSION_ID_NOT_FOUND for an unknown (or evicted) id,
// INVALID_FETCH_SESSION_EPOCH for an epoch other than the one expected,
// and FETCH_SESSION_TOPIC_ID_ERROR when a request's version uses topic
// ids (v13+) and the session's did not, or the other way round. Clients
// answer each by opening a new session.
//
// A session belongs to the virtual cluster and principal that opened it:
// its id does not resolve for anyone else, who gets
// FETCH_SESSION_ID_NOT_FOUND as for an id that never existed (and cannot
// close it).
//
// Bounds: at most CacheSlots sessions per broker (Kafka's
// max.incremental.fetch.session.cache.slots); when full, a new session
// evicts the least recently used one if it was idle for EvictAfter, else
// the smallest if the new one has more partitions (Kafka's rules, which
// keep busy consumers' sessions from being thrashed), else it is not
// created and the client fetches without one (session id 0), which is
// correct, merely larger. The brokers are shared by tenants, which Kafka's
// cache is not: a virtual cluster holds at most MaxPerCluster sessions,
// and one at its bound evicts only its own, by the same rules, so that one
// tenant's clients cannot push the others' sessions out. A session holds
// at most MaxPartitions partitions, a bound Kafka does not have: a full
// request naming more gets no session, and an incremental one that grows
// a session past it closes the session and is answered
// FETCH_SESSION_ID_NOT_FOUND, so the client goes on with full requests.
// Nor does a full request get a session when a partition it names does
// not exist or may not be read: a session holds only partitions the
// principal reads, not whatever a request names.
//
// fetchSessions is safe for concurrent use: its lock guards the index and
// the recency lists, each session's lock its partitions (its size is an
// atomic, so that choosing a victim takes no session's lock); the cache
// lock is never held while a session's is taken.

// FetchSessionLimits bound the fetch sessions a broker keeps.
type FetchSessionLimits struct {
	// CacheSlots is the most sessions kept at once (Kafka's
	// max.incremental.fetch.session.cache.slots); 0 turns sessions off.
	CacheSlots int
	// MaxPartitions is the most partitions one session holds.
	MaxPartitions int
	// EvictAfter is how long a session must be unused before any new one
	// may evict it (Kafka's fixed 2 minutes).
	EvictAfter time.Duration
	// MaxPerCluster is the most sessions one virtual cluster holds; 0
	// leaves it unbounded (up to CacheSlots).
	MaxPerCluster int
}

// DefaultFetchSessionLimits returns the defaults the flags start from.
func DefaultFetchSessionLimits() FetchSessionLimits {
	// A cluster may hold a quarter of the slots: a few tenants' consumers
	// fill the cache, no single one does.
	return FetchSessionLimits{CacheSlots: 1000, MaxPartitions: 1000, EvictAfter: 2 * time.Minute, MaxPerCluster: 250}
}

// RegisterFlags registers the fetch session limits with their defaults.
func (l *FetchSessionLimits) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultFetchSessionLimits()
	fs.IntVar(&l.CacheSlots, "fetch-session-cache-slots", d.CacheSlots, "fetch sessions (KIP-227) kept at once on this broker; 0 turns them off (Kafka's max.incremental.fetch.session.cache.slots)")
	fs.IntVar(&l.MaxPartitions, "fetch-session-max-partitions", d.MaxPartitions, "partitions one fetch session may hold; a consumer fetching more from this broker fetches without a session")
	fs.IntVar(&l.MaxPerCluster, "fetch-session-max-per-cluster", d.MaxPerCluster, "fetch sessions one virtual cluster may hold on this broker (a cluster at the bound evicts only its own); 0: no bound but the cache's")
	fs.DurationVar(&l.EvictAfter, "fetch-session-evict-after", d.EvictAfter, "how long a fetch session must be unused before a new one may evict it when the cache is full")
}

// Validate checks the limits, naming the flag of a bad one.
func (l *FetchSessionLimits) Validate() error {
	switch {
	case l.CacheSlots < 0:
		return fmt.Errorf("broker: --fetch-session-cache-slots must not be negative, got %d", l.CacheSlots)
	case l.MaxPartitions <= 0:
		return fmt.Errorf("broker: --fetch-session-max-partitions must be positive, got %d", l.MaxPartitions)
	case l.MaxPerCluster < 0:
		return fmt.Errorf("broker: --fetch-session-max-per-cluster must not be negative, got %d", l.MaxPerCluster)
	case l.EvictAfter < 0:
		return fmt.Errorf("broker: --fetch-session-evict-after must not be negative, got %s", l.EvictAfter)
	}
	return nil
}

// sessionKey names a partition in a session: by topic id from v13, by
// name below (a session uses one or the other, never both).
type sessionKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// sessionPart is one partition of a session: what the client last asked
// for it, and what it was last told.
type sessionPart struct {
	key sessionKey
	req kmsg.FetchRequestTopicPartition
	// hwm, lso, logStart as last answered; -1 until answered, and the
	// high watermark again after an error, so that the partition is
	// answered next time.
	hwm, lso, logStart int64
	// moved marks, inside one answer (under the session's lock), a
	// partition that returned records: it goes to the back.
	moved bool
}

type fetchSession struct {
	id      int32
	cluster string
	owner   string // cluster and principal (sessionOwner)
	usesIDs bool   // opened with v13+

	elem  *list.Element // in fetchSessions.lru; under the cache's lock
	celem *list.Element // in its cluster's list; under the cache's lock
	used  time.Time     // under the cache's lock
	size  atomic.Int32  // len(parts), for eviction without s.mu

	mu    sync.Mutex
	epoch int32 // the epoch the next request must carry
	parts []*sessionPart
	index map[sessionKey]*sessionPart
}

type fetchSessions struct {
	lim FetchSessionLimits

	mu       sync.Mutex
	byID     map[int32]*fetchSession
	lru      *list.List            // of *fetchSession, most recently used at the front
	clusters map[string]*list.List // the same, of each cluster; no empty list

	open      prometheus.Gauge
	evictions prometheus.Counter
	errors    *prometheus.CounterVec
}

func newFetchSessions(lim FetchSessionLimits, reg prometheus.Registerer) *fetchSessions {
	fs := &fetchSessions{
		lim:      lim,
		byID:     map[int32]*fetchSession{},
		lru:      list.New(),
		clusters: map[string]*list.List{},
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_broker_fetch_sessions", Help: "Fetch sessions (KIP-227) open on this broker."}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_broker_fetch_session_evictions_total", Help: "Fetch sessions evicted to make room for a new one."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_broker_fetch_session_errors_total", Help: "Fetch requests refused for their session, by Kafka error."},
			[]string{"error"}),
	}
	if reg != nil {
		reg.MustRegister(fs.open, fs.evictions, fs.errors)
	}
	return fs
}

// sessionOwner is who may use a session: the connection's virtual cluster
// and principal.
func sessionOwner(c *conn) string { return c.cluster + "\x00" + c.principalName() }

// keyOf names a partition in a session of a request of version: by topic
// id from v13, by name below.
func keyOf(version int16, topic string, topicID [16]byte, partition int32) sessionKey {
	if version >= 13 {
		return sessionKey{topicID: topicID, partition: partition}
	}
	return sessionKey{topic: topic, partition: partition}
}

// fetchPlan is what one Fetch request reads: the request itself for a
// sessionless or full fetch, else one naming every partition of the
// session, in the session's order.
type fetchPlan struct {
	read *kmsg.FetchRequest
	// sess is the session used by an incremental fetch; open is set for a
	// full fetch that should open one once answered.
	sess *fetchSession
	open bool
}

// begin applies the session fields of req: it closes, checks and updates
// sessions and says what to read, or returns the top-level error code to
// answer at once.
func (fs *fetchSessions) begin(c *conn, req *kmsg.FetchRequest) (fetchPlan, int16) {
	if req.Version < 7 {
		return fetchPlan{read: req}, 0
	}
	owner := sessionOwner(c)
	if req.SessionEpoch <= 0 { // 0 opens, -1 closes; both are full fetches
		if req.SessionID != 0 {
			fs.remove(req.SessionID, owner)
		}
		open := req.SessionEpoch == 0 && fs.lim.CacheSlots > 0
		return fetchPlan{read: req, open: open}, 0
	}
	fs.mu.Lock()
	sess := fs.byID[req.SessionID]
	if sess == nil || sess.owner != owner {
		fs.mu.Unlock()
		return fs.refuse(kerr.FetchSessionIDNotFound)
	}
	sess.used = time.Now()
	fs.lru.MoveToFront(sess.elem)
	fs.clusters[sess.cluster].MoveToFront(sess.celem)
	fs.mu.Unlock()

	sess.mu.Lock()
	switch {
	case req.SessionEpoch != sess.epoch:
		sess.mu.Unlock()
		return fs.refuse(kerr.InvalidFetchSessionEpoch)
	case sess.usesIDs != (req.Version >= 13):
		sess.mu.Unlock()
		return fs.refuse(kerr.FetchSessionTopicIDError)
	}
	// As Kafka: added and changed partitions first, then the forgotten.
	for i := range req.Topics {
		rt := &req.Topics[i]
		for _, rp := range rt.Partitions {
			k := keyOf(req.Version, rt.Topic, rt.TopicID, rp.Partition)
			if sp := sess.index[k]; sp != nil {
				sp.req = rp
				continue
			}
			sp := &sessionPart{key: k, req: rp, hwm: -1, lso: -1, logStart: -1}
			sess.parts = append(sess.parts, sp)
			sess.index[k] = sp
		}
	}
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			delete(sess.index, keyOf(req.Version, ft.Topic, ft.TopicID, p))
		}
	}
	if len(sess.index) != len(sess.parts) {
		kept := sess.parts[:0]
		for _, sp := range sess.parts {
			if sess.index[sp.key] == sp {
				kept = append(kept, sp)
			}
		}
		clear(sess.parts[len(kept):])
		sess.parts = kept
	}
	sess.size.Store(int32(len(sess.parts)))
	if len(sess.parts) > fs.lim.MaxPartitions {
		sess.mu.Unlock()
		fs.remove(sess.id, owner)
		return fs.refuse(kerr.FetchSessionIDNotFound)
	}
	sess.epoch = nextEpoch(sess.epoch)
	read := sess.request(req)
	sess.mu.Unlock()
	return fetchPlan{read: read, sess: sess}, 0
}

func (fs *fetchSessions) refuse(err *kerr.Error) (fetchPlan, int16) {
	fs.errors.WithLabelValues(err.Message).Inc()
	return fetchPlan{}, err.Code
}

// nextEpoch wraps as Kafka does: past MaxInt32 comes 1 (0 and -1 mean
// open and close).
func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// request is req naming every partition of the session, grouped by topic
// in the order of the session. Called with s.mu held.
func (s *fetchSession) request(req *kmsg.FetchRequest) *kmsg.FetchRequest {
	read := *req
	read.Topics, read.ForgottenTopics = nil, nil
	for _, sp := range s.parts {
		n := len(read.Topics)
		if n == 0 || read.Topics[n-1].Topic != sp.key.topic || read.Topics[n-1].TopicID != sp.key.topicID {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = sp.key.topic, sp.key.topicID
			read.Topics = append(read.Topics, rt)
			n++
		}
		read.Topics[n-1].Partitions = append(read.Topics[n-1].Partitions, sp.req)
	}
	return &read
}

// finish completes a fetch of plan with its response: it opens the
// session a full fetch asked for, or drops from an incremental response
// the partitions with nothing new for the client, and records what the
// client is told.
func (fs *fetchSessions) finish(c *conn, plan fetchPlan, resp *kmsg.FetchResponse) {
	switch {
	case plan.open:
		resp.SessionID = fs.create(c, plan.read, resp)
	case plan.sess != nil:
		resp.SessionID = plan.sess.id
		plan.sess.answer(plan.read.Version, resp)
	}
}

// answer filters an incremental response, records what it tells the
// client, and moves the partitions that returned records to the back of
// the session, so that a MaxBytes budget reaches the others next time
// (the client cannot reorder an incremental request).
func (s *fetchSession) answer(version int16, resp *kmsg.FetchResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	moved := 0 // partitions that returned records: they go to the back
	topics := resp.Topics[:0]
	for _, rt := range resp.Topics {
		parts := rt.Partitions[:0]
		for _, rp := range rt.Partitions {
			sp := s.index[keyOf(version, rt.Topic, rt.TopicID, rp.Partition)]
			if sp == nil { // forgotten meanwhile by a concurrent request
				continue
			}
			if !sp.update(&rp) {
				continue
			}
			if len(rp.RecordBatches) > 0 {
				if !sp.moved {
					sp.moved = true
					moved++
				}
			}
			parts = append(parts, rp)
		}
		if len(parts) > 0 {
			rt.Partitions = parts
			topics = append(topics, rt)
		}
	}
	resp.Topics = topics
	if moved == 0 {
		return
	}
	back := make([]*sessionPart, 0, moved)
	kept := s.parts[:0]
	for _, sp := range s.parts {
		if sp.moved {
			sp.moved = false
			back = append(back, sp)
		} else {
			kept = append(kept, sp)
		}
	}
	s.parts = append(kept, back...)
}

// update records what rp tells the client and reports whether an
// incremental response must carry it (Kafka's
// CachedPartition.maybeUpdateResponseData).
func (sp *sessionPart) update(rp *kmsg.FetchResponseTopicPartition) bool {
	must := len(rp.RecordBatches) > 0 || rp.ErrorCode != 0 || rp.PreferredReadReplica >= 0 ||
		rp.HighWatermark != sp.hwm || rp.LastStableOffset != sp.lso || rp.LogStartOffset != sp.logStart
	sp.hwm, sp.lso, sp.logStart = rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset
	if rp.ErrorCode != 0 {
		sp.hwm = -1
	}
	return must
}

// create opens a session for a full fetch that was answered with resp and
// returns its id, or 0 when none is kept (too many partitions, one that
// does not exist or may not be read, or no room the session may take).
func (fs *fetchSessions) create(c *conn, req *kmsg.FetchRequest, resp *kmsg.FetchResponse) int32 {
	n := 0
	for _, rt := range req.Topics {
		n += len(rt.Partitions)
	}
	if n > fs.lim.MaxPartitions || !readable(resp) {
		return 0
	}
	sess := &fetchSession{
		cluster: c.cluster, owner: sessionOwner(c), usesIDs: req.Version >= 13, epoch: 1,
		parts: make([]*sessionPart, 0, n), index: make(map[sessionKey]*sessionPart, n),
	}
	sess.size.Store(int32(n))
	// Room first, and the slot taken, before the session is built: a
	// request that gets no session costs no more than the check. The
	// session is locked until built; its id is not yet the client's.
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if !fs.add(sess, n) {
		return 0
	}
	for i := range req.Topics {
		rt := &req.Topics[i]
		for _, rp := range rt.Partitions {
			k := keyOf(req.Version, rt.Topic, rt.TopicID, rp.Partition)
			if sess.index[k] != nil {
				continue // named twice; Kafka keeps one
			}
			sp := &sessionPart{key: k, req: rp, hwm: -1, lso: -1, logStart: -1}
			sess.parts = append(sess.parts, sp)
			sess.index[k] = sp
		}
	}
	sess.size.Store(int32(len(sess.parts)))
	for _, rt := range resp.Topics {
		for i := range rt.Partitions {
			rp := &rt.Partitions[i]
			if sp := sess.index[keyOf(req.Version, rt.Topic, rt.TopicID, rp.Partition)]; sp != nil {
				sp.update(rp)
			}
		}
	}
	return sess.id
}

// readable reports whether every partition of a full fetch's answer
// exists and may be read: only then is a session worth keeping.
func readable(resp *kmsg.FetchResponse) bool {
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			switch rp.ErrorCode {
			case kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code, kerr.TopicAuthorizationFailed.Code:
				return false
			}
		}
	}
	return true
}

// add makes room for sess, of size partitions, and indexes it under a new
// id; false when there is no room it may take.
func (fs *fetchSessions) add(sess *fetchSession, size int) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	now := time.Now()
	own := fs.clusters[sess.cluster]
	switch {
	case fs.lim.MaxPerCluster > 0 && own != nil && own.Len() >= fs.lim.MaxPerCluster:
		if !fs.evictFor(own, size, now) {
			return false
		}
	case len(fs.byID) >= fs.lim.CacheSlots:
		if !fs.evictFor(fs.lru, size, now) {
			return false
		}
	}
	for sess.id == 0 || fs.byID[sess.id] != nil {
		sess.id = rand.Int32N(math.MaxInt32) + 1
	}
	sess.used = now
	sess.elem = fs.lru.PushFront(sess)
	if fs.clusters[sess.cluster] == nil {
		fs.clusters[sess.cluster] = list.New()
	}
	sess.celem = fs.clusters[sess.cluster].PushFront(sess)
	fs.byID[sess.id] = sess
	fs.open.Set(float64(len(fs.byID)))
	return true
}

// evictFor evicts one session of candidates (the whole cache's recency
// list, or one cluster's) to make room for a new session of size
// partitions, by Kafka's rules (see the top of this file). Called with
// fs.mu held; sizes are read without the sessions' locks.
func (fs *fetchSessions) evictFor(candidates *list.List, size int, now time.Time) bool {
	victim := candidates.Back().Value.(*fetchSession)
	if now.Sub(victim.used) < fs.lim.EvictAfter {
		victim = nil
		smallest := int32(math.MaxInt32)
		// From the least recently used: of equally small ones, the
		// oldest goes.
		for e := candidates.Back(); e != nil; e = e.Prev() {
			s := e.Value.(*fetchSession)
			if n := s.size.Load(); n < smallest {
				victim, smallest = s, n
			}
		}
		if int(smallest) >= size {
			return false
		}
	}
	fs.drop(victim)
	fs.evictions.Inc()
	return true
}

// remove closes the session id if owner owns it.
func (fs *fetchSessions) remove(id int32, owner string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if s := fs.byID[id]; s != nil && s.owner == owner {
		fs.drop(s)
		fs.open.Set(float64(len(fs.byID)))
	}
}

// drop forgets s. Called with fs.mu held.
func (fs *fetchSessions) drop(s *fetchSession) {
	fs.lru.Remove(s.elem)
	own := fs.clusters[s.cluster]
	own.Remove(s.celem)
	if own.Len() == 0 {
		delete(fs.clusters, s.cluster)
	}
	delete(fs.byID, s.id)
}
