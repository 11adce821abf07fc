package broker

import (
	"context"
	"errors"
	"time"

	"github.com/eddy-streams/eddy/data-plane/share"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ShareFetch (API key 78).
// Versions: 0-2.
//
// KIP-932 share groups, on each partition's leader (NOT_LEADER_OR_FOLLOWER
// elsewhere). A request first updates the member's share session
// (data-plane/share sessions.go), then applies the acknowledgements it
// carries (each partition's AcknowledgeErrorCode), then acquires records
// of every partition of the session: it reads through the same path as
// Fetch, from the first available offset of the share-partition, and
// returns whole raw batches with the acquired offsets as AcquiredRecords
// (clients drop the records outside them). Acquisition is batch-optimized:
// MaxRecords is reached in whole batches (v2 ShareAcquireMode 1, record
// limit, is treated alike). Long polling waits up to MaxWaitMillis while
// nothing was acquired, for new data or for records released by others.
// Epoch -1 closes the session after its acknowledgements, releasing what
// the member holds here; so does the end of the connection that opened it,
// as in Kafka. v2 IsRenewAck renews locks and fetches nothing.
//
// Deviations: group.share.isolation.level is read_uncommitted (aborted
// transactions' records are delivered); MinBytes counts records acquired,
// not bytes (any acquisition answers); CurrentLeader and NodeEndpoints are
// left empty (-1): clients refresh metadata after NOT_LEADER_OR_FOLLOWER.
//
// Authorization: READ on the group, READ on each topic.

const shareDefaultMaxRecords = 500 // KIP-1206's default of max.poll.records

func handleShareFetch(s *Server, c *conn, req *kmsg.ShareFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
	resp.AcquisitionLockTimeoutMillis = int32(s.cfg.Share.RecordLockDuration.Milliseconds())
	group, member, code := shareMember(c, req.GroupID, req.MemberID)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if req.Version >= 2 && req.IsRenewAck && (req.MaxBytes != 0 || req.MinBytes != 0 || req.MaxRecords != 0 || req.MaxWaitMillis != 0) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	var add, forget []share.TP
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			add = append(add, share.TP{Topic: rt.TopicID, Partition: rp.Partition})
		}
	}
	for _, ft := range req.ForgottenTopicsData {
		for _, p := range ft.Partitions {
			forget = append(forget, share.TP{Topic: ft.TopicID, Partition: p})
		}
	}
	sk := share.SessionKey{Cluster: c.cluster, Group: group, Member: member}
	parts, id, err := s.shares.Session(sk, req.ShareSessionEpoch, add, forget, true)
	if err != nil {
		resp.ErrorCode = shareCode(err)
		return resp
	}
	c.shareSessions[sk] = id
	out := newShareFetchOut(resp)
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if len(rp.AcknowledgementBatches) == 0 {
				continue
			}
			acks := make([]share.Ack, len(rp.AcknowledgementBatches))
			for i, b := range rp.AcknowledgementBatches {
				acks[i] = share.Ack{First: b.FirstOffset, Last: b.LastOffset, Types: b.AcknowledgeTypes}
			}
			out.part(rt.TopicID, rp.Partition).AcknowledgeErrorCode = s.shareAck(c, group, member, rt.TopicID, rp.Partition, acks)
		}
	}
	if req.ShareSessionEpoch == -1 {
		s.shares.Close(sk)
		delete(c.shareSessions, sk)
		return resp
	}
	if req.IsRenewAck {
		return resp
	}
	maxBytes := map[share.TP]int32{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			maxBytes[share.TP{Topic: rt.TopicID, Partition: rp.Partition}] = rp.PartitionMaxBytes
		}
	}
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	w := newLogWatch()
	defer w.stop()
	watched := false
	for {
		wakes, got, failed := s.shareFetchOnce(c, req, group, member, parts, maxBytes, out)
		if got || failed || req.MaxWaitMillis <= 0 || !time.Now().Before(deadline) || c.ctx.Err() != nil {
			return resp
		}
		if !watched {
			// Watch the partitions' logs, then acquire once more so an
			// append between the two is not missed.
			watched = true
			v := s.view.Load()
			for _, tp := range parts {
				w.add(s, partitionOf(v.topicByID(c.cluster, tp.Topic), tp.Partition), false)
			}
			continue
		}
		waitAny(c.ctx, wakes, w.notify, deadline)
	}
}

// shareFetchOnce acquires records of every partition of the session once,
// into out. got: something was acquired; failed: a partition failed.
func (s *Server) shareFetchOnce(c *conn, req *kmsg.ShareFetchRequest, group, member string, parts []share.TP, maxBytes map[share.TP]int32, out *shareFetchOut) (wakes []<-chan struct{}, got, failed bool) {
	v := s.view.Load()
	budget := int(req.MaxBytes)
	if budget <= 0 {
		budget = 50 << 20
	}
	records := int(req.MaxRecords)
	if records <= 0 {
		records = shareDefaultMaxRecords
	}
	for _, tp := range parts {
		if budget <= 0 || records <= 0 {
			break
		}
		t := v.topicByID(c.cluster, tp.Topic)
		var code int16
		switch {
		case t == nil:
			code = kerr.UnknownTopicID.Code
		case !c.may(acl.Topic, t.Name, acl.Read):
			code = kerr.TopicAuthorizationFailed.Code
		}
		if code != 0 {
			out.part(tp.Topic, tp.Partition).ErrorCode = code
			failed = true
			continue
		}
		p, code := s.ledFor(t, tp.Partition, -1)
		if code != 0 {
			out.part(tp.Topic, tp.Partition).ErrorCode = code
			failed = true
			continue
		}
		limit := int(maxBytes[tp])
		if limit <= 0 || limit > budget {
			limit = min(budget, 1<<20)
		}
		logStart, hw := p.Offsets()
		k := share.Key{Cluster: c.cluster, Group: group, Topic: tp.Topic, Partition: tp.Partition}
		f, err := s.shares.Acquire(c.ctx, k, p.Epoch, share.Offsets{LogStart: logStart, HighWatermark: hw}, member, records,
			func(from int64) ([]byte, error) {
				r, err := p.Read(c.ctx, from, limit)
				return r.Records, err
			})
		if f.Wake != nil {
			wakes = append(wakes, f.Wake)
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, share.ErrFenced) {
				s.log.Warn("share fetch failed", "group", group, "partition", tp.Partition, "err", err)
			}
			out.part(tp.Topic, tp.Partition).ErrorCode = shareCode(err)
			failed = true
			continue
		}
		if len(f.Acquired) == 0 {
			continue
		}
		got = true
		sp := out.part(tp.Topic, tp.Partition)
		sp.Records = f.Records
		for _, a := range f.Acquired {
			ar := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
			ar.FirstOffset, ar.LastOffset, ar.DeliveryCount = a.First, a.Last, a.Deliveries
			sp.AcquiredRecords = append(sp.AcquiredRecords, ar)
			records -= int(a.Last - a.First + 1)
		}
		budget -= len(f.Records)
	}
	return wakes, got, failed
}

// shareFetchOut builds a ShareFetch response one partition at a time.
type shareFetchOut struct {
	resp  *kmsg.ShareFetchResponse
	index map[share.TP][2]int
}

func newShareFetchOut(resp *kmsg.ShareFetchResponse) *shareFetchOut {
	return &shareFetchOut{resp: resp, index: map[share.TP][2]int{}}
}

// part returns the response's entry of a partition, adding it.
func (o *shareFetchOut) part(topic [16]byte, partition int32) *kmsg.ShareFetchResponseTopicPartition {
	tp := share.TP{Topic: topic, Partition: partition}
	if at, ok := o.index[tp]; ok {
		return &o.resp.Topics[at[0]].Partitions[at[1]]
	}
	ti := -1
	for i := range o.resp.Topics {
		if o.resp.Topics[i].TopicID == topic {
			ti = i
		}
	}
	if ti < 0 {
		rt := kmsg.NewShareFetchResponseTopic()
		rt.TopicID = topic
		o.resp.Topics = append(o.resp.Topics, rt)
		ti = len(o.resp.Topics) - 1
	}
	sp := kmsg.NewShareFetchResponseTopicPartition()
	sp.Partition = partition
	sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
	sp.Records = []byte{}
	rt := &o.resp.Topics[ti]
	rt.Partitions = append(rt.Partitions, sp)
	o.index[tp] = [2]int{ti, len(rt.Partitions) - 1}
	return &rt.Partitions[len(rt.Partitions)-1]
}
