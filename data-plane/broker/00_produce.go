package broker

import (
	"context"
	"errors"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce (API key 0).
// Versions: 3-11.
//
// Record batches of magic 2 only, as Kafka 4 requires. acks=0 gets no
// response; acks=1 is answered once the batch is in the local WAL; acks=all
// once the flush that carries it is committed in Postgres — waiting off the
// connection's reader, so a client's pipelined produce requests share
// flushes (responses still go out in order).
//
// Deviations: transactional batches are refused with INVALID_RECORD
// (transactions are not supported yet); producing to a missing topic
// creates it when the cluster allows automatic creation (topicadmin.go; the
// request then fails with the retriable UNKNOWN_TOPIC_OR_PARTITION so the
// client refreshes metadata and retries); a compressed batch whose
// records decompress to more than batch.DecompressLimit (32 times
// max.message.bytes, at most 256 MiB) is refused with MESSAGE_TOO_LARGE,
// a bound Kafka does not have.
//
// Authorization: WRITE on each topic (and on the transactional id, if any)
// — authz.go.

type pendingAck struct {
	p    *leader.Partition
	last int64
	resp *kmsg.ProduceResponseTopicPartition
}

func handleProduce(s *Server, c *conn, req *kmsg.ProduceRequest) kmsg.Response {
	if resp, refused := s.quotas.StorageRefusal(c.cluster, req); refused {
		return resp // the cluster is at its storage limit (quota.go)
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var waits []pendingAck
	txnDenied := req.TransactionID != nil && !c.may(acl.TransactionalID, *req.TransactionID, acl.Write)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		if denied := txnDenied || !c.may(acl.Topic, rt.Topic, acl.Write); denied {
			code := kerr.TopicAuthorizationFailed.Code
			if txnDenied {
				code = kerr.TransactionalIDAuthorizationFailed.Code
			}
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		_, t := s.topic(c, rt.Topic)
		if t == nil {
			s.autoCreate(c, rt.Topic)
		}
		var configs map[string]string
		if t != nil {
			configs = t.Configs
		}
		maxBytes := int(topicconfig.Int64(configs, "max.message.bytes"))
		logAppend := topicconfig.Value(configs, "message.timestamp.type") == "LogAppendTime"
		// Sized up front: waits keep pointers into this slice.
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			out := &st.Partitions[i]
			*out = kmsg.NewProduceResponseTopicPartition()
			out.Partition = rp.Partition
			out.BaseOffset, out.LogAppendTime, out.LogStartOffset = -1, -1, -1

			pm := partitionOf(t, rp.Partition)
			if pm == nil {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			p := s.lead.Partition(pm.ID)
			if p == nil {
				out.ErrorCode = kerr.NotLeaderForPartition.Code
				continue
			}
			hdrs, err := batch.Validate(rp.Records, maxBytes)
			if err == nil {
				for _, hd := range hdrs {
					if hd.Transactional() {
						err = errors.New("transactions are not supported yet")
						out.ErrorCode = kerr.InvalidRecord.Code
					}
				}
			}
			if err == nil {
				// Streamed into nothing: MESSAGE_TOO_LARGE past the
				// limit, CORRUPT_MESSAGE if undecodable.
				err = batch.CheckDecompressed(rp.Records, hdrs, batch.DecompressLimit(int64(maxBytes)))
			}
			if err != nil {
				if out.ErrorCode == 0 {
					out.ErrorCode, _ = errCode(err)
				}
				out.ErrorMessage = strp(err.Error())
				continue
			}
			res, err := p.Append(rp.Records, hdrs, logAppend)
			if err != nil {
				code, msg := errCode(err)
				out.ErrorCode, out.ErrorMessage = code, strp(msg)
				continue
			}
			s.meter.Produced(pm.ID, len(rp.Records)) // load report
			out.BaseOffset, out.LogAppendTime = res.BaseOffset, res.LogAppendTime
			out.LogStartOffset, _ = p.Offsets()
			if req.Acks == -1 {
				waits = append(waits, pendingAck{p: p, last: res.LastOffset, resp: out})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return nil
	}
	if len(waits) > 0 {
		// Wait for the commits off the connection's reader (conn.serve),
		// so pipelined requests are appended meanwhile.
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		connCtx := c.ctx
		c.deferred = func() {
			ctx, cancel := context.WithTimeout(connCtx, timeout)
			defer cancel()
			for _, w := range waits {
				if err := w.p.WaitCommitted(ctx, w.last); err != nil {
					w.resp.BaseOffset = -1
					if errors.Is(err, leader.ErrNotLeader) {
						w.resp.ErrorCode = kerr.NotLeaderForPartition.Code
					} else {
						w.resp.ErrorCode = kerr.RequestTimedOut.Code
					}
				}
			}
		}
	}
	return resp
}
