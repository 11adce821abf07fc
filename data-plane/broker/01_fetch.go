package broker

import (
	"context"
	"errors"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/data-plane/quota"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch (API key 1).
// Versions: 4-16.
//
// Only the partition leader serves (NOT_LEADER_OR_FOLLOWER elsewhere), and
// only committed data: the high watermark is the commit point in Postgres.
// Clients that say their zone are the exception (KIP-392, zone.go): the
// leader sends one in another zone to a broker of its zone
// (PreferredReadReplica), which serves what is committed in Postgres.
// read_committed (isolation level 1) stops at the last stable offset and
// carries the aborted transactions that overlap the batches returned;
// control batches (transaction markers) are returned like any batch, for
// clients to skip. Long polling waits up to MaxWaitMillis for MinBytes; the
// high watermark and the last stable offset move together, at flush
// commits. An offset inside a batch returns that whole batch (clients skip
// the records before their offset).
//
// Fetch sessions (KIP-227, v7+) are kept as Kafka keeps them
// (fetchsession.go): an incremental request reads every partition of its
// session, in the session's order, and the response carries those with
// something new. MaxBytes, PartitionMaxBytes, MinBytes and MaxWaitMillis
// apply to what is read, as without a session.
//
// Deviation: a session belongs to the virtual cluster and principal that
// opened it, and holds at most --fetch-session-max-partitions partitions.
//
// A partition that moved away is answered NOT_LEADER_OR_FOLLOWER with its
// new leader (KIP-951: v12+ the leader, v16+ its endpoint).
//
// Internal topics hold no records: they answer empty at offset 0
// (internaltopics.go).
//
// Authorization: READ on each topic.

func handleFetch(s *Server, c *conn, req *kmsg.FetchRequest) kmsg.Response {
	s.lastData.Store(time.Now().UnixNano())
	if s.fetchHook != nil {
		s.fetchHook(c, req)
	}
	if req.Version >= 11 {
		c.setRack(req.Rack) // KIP-392 (zone.go)
	}
	plan, code := s.sessions.begin(c, req)
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = code
		return resp
	}
	resp := s.fetch(c, plan.read)
	s.meterZone(c, "fetch", quota.FetchedBytes(resp))
	s.sessions.finish(c, plan, resp)
	return resp
}

// fetch answers req in full, waiting for MinBytes up to MaxWaitMillis.
func (s *Server) fetch(c *conn, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	var deadline time.Time
	if req.MaxWaitMillis > 0 {
		deadline = time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	}
	w := newLogWatch()
	defer w.stop()
	watched := false
	for {
		resp, bytes, failed := s.fetchOnce(c, req)
		if failed || int32(bytes) >= req.MinBytes || deadline.IsZero() || !time.Now().Before(deadline) {
			return resp
		}
		if !watched {
			// Watch every partition of the request, then read once more
			// so a commit between the read and the watch is not missed.
			watched = true
			s.watchFetch(c, req, w)
			continue
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-w.notify:
		case <-t.C:
		case <-c.ctx.Done():
		}
		t.Stop()
		if c.ctx.Err() != nil {
			return resp
		}
	}
}

// logWatch is the watches of a long poll on the logs of the partitions it
// reads: notify receives when one's high watermark moves (or it is lost).
type logWatch struct {
	notify chan struct{}
	stops  []func()
}

func newLogWatch() *logWatch { return &logWatch{notify: make(chan struct{}, 1)} }

// add watches the partition pm if this broker leads it, or, with
// replicas, its committed offsets in Postgres (zone.go).
func (w *logWatch) add(s *Server, pm *store.Partition, replicas bool) {
	if pm == nil {
		return
	}
	if p := s.lead.Partition(pm.ID); p != nil {
		w.stops = append(w.stops, p.Watch(w.notify))
	} else if replicas {
		w.stops = append(w.stops, s.lead.WatchReplica(pm.ID, w.notify))
	}
}

func (w *logWatch) stop() {
	for _, stop := range w.stops {
		stop()
	}
}

func (s *Server) watchFetch(c *conn, req *kmsg.FetchRequest, w *logWatch) {
	v := s.view.Load()
	replicas := s.servesReplicas(c)
	for _, rt := range req.Topics {
		t := v.topic(c.cluster, rt.Topic)
		if req.Version >= 13 {
			t = v.topicByID(c.cluster, rt.TopicID)
		}
		if t != nil && !c.decide(acl.Topic, t.Name, acl.Read) {
			continue
		}
		for _, rp := range rt.Partitions {
			w.add(s, partitionOf(t, rp.Partition), replicas)
		}
	}
}

// fetchOnce reads every requested partition once. failed is true when a
// partition returned an error or a preferred read replica, which Kafka
// answers without waiting.
func (s *Server) fetchOnce(c *conn, req *kmsg.FetchRequest) (resp *kmsg.FetchResponse, total int, failed bool) {
	resp = req.ResponseKind().(*kmsg.FetchResponse)
	v := s.view.Load()
	s.refreshReplicas(c, v, req)
	budget := int(req.MaxBytes)
	if budget <= 0 {
		budget = 50 << 20
	}
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		t := v.topic(c.cluster, rt.Topic)
		internal := rt.Topic // an internal topic's name, or ""
		if req.Version >= 13 {
			t = v.topicByID(c.cluster, rt.TopicID)
			// Only an id the cluster has no topic of can be an internal
			// topic's: internalByID hashes (SHA-256 per internal topic),
			// too dear for every topic of every long-poll pass.
			internal = ""
			if t == nil {
				internal = internalByID(c.cluster, rt.TopicID)
			}
		}
		if !topicconfig.Internal(internal) {
			internal = ""
		}
		// Authorization before existence, as Kafka: a topic the principal
		// may not read is refused whether it exists or not (by id, only
		// ids of the cluster's topics can be named at all).
		name := rt.Topic
		if t != nil {
			name = t.Name
		} else if internal != "" {
			name = internal
		}
		denied := (t != nil || internal != "" || req.Version < 13) && !c.may(acl.Topic, name, acl.Read)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			// Empty, never null: librdkafka rejects a null record set.
			sp.RecordBatches = []byte{}
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.PreferredReadReplica = -1
			switch pm := partitionOf(t, rp.Partition); {
			case denied:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case internal != "":
				v.internalFetch(&sp, rp.FetchOffset)
			case t == nil && req.Version >= 13:
				sp.ErrorCode = kerr.UnknownTopicID.Code
			case pm == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				p, code := s.ledPartition(pm, rp.CurrentLeaderEpoch)
				replica := code == kerr.NotLeaderForPartition.Code && s.servesReplicas(c)
				if replica {
					code = replicaEpochCheck(pm, rp.CurrentLeaderEpoch)
				}
				var pref int32 = -1
				if code == 0 && !replica && req.Version >= 11 {
					pref = s.preferredReplica(v, pm, c.zone())
				}
				switch {
				case code != 0:
					sp.ErrorCode = code
					if code == kerr.NotLeaderForPartition.Code {
						s.hintFetchLeader(resp, &sp, pm)
					}
				case pref >= 0:
					// KIP-392: read from that broker, in the client's
					// zone; no records from here.
					sp.PreferredReadReplica = pref
					sp.LogStartOffset, sp.HighWatermark = p.Offsets()
				default:
					maxBytes := int(rp.PartitionMaxBytes)
					if maxBytes <= 0 || maxBytes > budget {
						maxBytes = max(budget, 1)
					}
					var read func(context.Context, int64, int) (leader.ReadResult, error)
					switch {
					case replica && req.IsolationLevel == 1:
						read = func(ctx context.Context, off int64, n int) (leader.ReadResult, error) {
							return s.lead.ReadReplica(ctx, pm.ID, off, n, true)
						}
					case replica:
						read = func(ctx context.Context, off int64, n int) (leader.ReadResult, error) {
							return s.lead.ReadReplica(ctx, pm.ID, off, n, false)
						}
					case req.IsolationLevel == 1:
						read = p.ReadCommitted
					default:
						read = p.Read
					}
					if req.IsolationLevel == 1 {
						sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
					}
					r, err := read(c.ctx, rp.FetchOffset, maxBytes)
					sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = r.HighWatermark, r.LastStable, r.LogStart
					for _, a := range r.Aborted {
						at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
						at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
						sp.AbortedTransactions = append(sp.AbortedTransactions, at)
					}
					if err != nil {
						if !errors.Is(err, leader.ErrOffsetOutOfRange) {
							s.log.Warn("fetch read failed", "partition", pm.ID, "offset", rp.FetchOffset, "err", err)
						}
						sp.ErrorCode, _ = errCode(err)
						break
					}
					if r.Records != nil {
						sp.RecordBatches = r.Records
					}
					total += len(r.Records)
					budget -= len(r.Records)
				}
			}
			if sp.ErrorCode != 0 || sp.PreferredReadReplica >= 0 {
				failed = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, total, failed
}

// hintFetchLeader names, in a NOT_LEADER_OR_FOLLOWER answer for pm, the
// leader to go to (v12+) and its endpoint (v16+), as Produce does (KIP-951).
func (s *Server) hintFetchLeader(resp *kmsg.FetchResponse, sp *kmsg.FetchResponseTopicPartition, pm *store.Partition) {
	h, b, ok := s.leaderRedirect(pm)
	if !ok {
		return
	}
	sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = h.leader, h.epoch
	for _, rb := range resp.Brokers {
		if rb.NodeID == b.ID {
			return
		}
	}
	rb := kmsg.NewFetchResponseBroker()
	rb.NodeID, rb.Host, rb.Port, rb.Rack = b.ID, b.Host, b.Port, strp(b.Rack)
	resp.Brokers = append(resp.Brokers, rb)
}

// refreshReplicas reads at once the committed offsets of the partitions
// of req this broker would serve as a read replica (zone.go), so that a
// fetch of many of them costs Postgres one query rather than one each.
func (s *Server) refreshReplicas(c *conn, v *view, req *kmsg.FetchRequest) {
	if !s.servesReplicas(c) {
		return
	}
	var ids []int64
	for _, rt := range req.Topics {
		t := v.topic(c.cluster, rt.Topic)
		if req.Version >= 13 {
			t = v.topicByID(c.cluster, rt.TopicID)
		}
		for _, rp := range rt.Partitions {
			if pm := partitionOf(t, rp.Partition); pm != nil && s.lead.Partition(pm.ID) == nil {
				ids = append(ids, pm.ID)
			}
		}
	}
	if len(ids) > 1 {
		if err := s.lead.RefreshReplicas(c.ctx, ids); err != nil && c.ctx.Err() == nil {
			s.log.Warn("replica offsets refresh failed", "partitions", len(ids), "err", err)
		}
	}
}
