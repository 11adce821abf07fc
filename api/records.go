package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
)

// The HTTP records API: produce records to a topic and browse a partition.
//
// The REST server does not read or write partitions itself: for each
// request it is a Kafka client of the broker pool (franz-go, at
// --kafka-bootstrap) acting as the request's own service account, logged
// in with OAUTHBEARER and a token it signs for that account and cluster
// (valid for recordsTokenTTL). So there is one authorization path: the
// brokers decide with the same role bindings and ACLs, the same quotas
// throttle, and the bytes are metered as Kafka bytes of the cluster,
// because they are. The one difference is the client host an ACL sees:
// the control plane's address, not the browser's.
//
// Unlike the rest of the API, these routes are open to every service
// account of the organisation (not only org admins): the Kafka
// permissions, not the REST role, decide. A cluster outside the
// principal's organisation (or key scope) is 404 before any broker is
// asked. Bounds: the request body (--api-max-body-bytes), at most
// maxRecordsPerRequest records either way, and a browse's keys, values
// and headers add up to at most --api-max-body-bytes (always at least one
// record).

const (
	maxRecordsPerRequest = 500
	defaultBrowseLimit   = 100
	recordsTokenTTL      = 5 * time.Minute
	// recordsTimeout bounds a request's Kafka work, so a slow or missing
	// broker cannot hold a REST request (and its client) for long.
	recordsTimeout = 15 * time.Second
	// browseRecordEstimate is the bytes of a record a browse's fetches are
	// sized for: limit × this (at least browseMinFetchBytes, at most
	// --api-max-body-bytes), so a small browse neither fetches nor is
	// metered as egress for a whole MiB it will not show. A broker always
	// returns at least one batch, so larger records still come, over more
	// fetches.
	browseRecordEstimate = 1 << 10
	browseMinFetchBytes  = 16 << 10
	// quotaRetryAfter is the Retry-After of a 429 for a broker's quota
	// refusal, which does not say how long the quota's window is.
	quotaRetryAfter = 5 * time.Second
)

// tenantMember is middleware for routes any service account of an
// organisation may use (its Kafka permissions decide what it may do).
func tenantMember(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if principal(c).Operator {
			return errForbidden("the operator token manages organisations only; use a service account's credentials")
		}
		return next(c)
	}
}

// recordsLimiter bounds the records requests in progress, in all and per
// organisation. It refuses rather than queues: a queued request would
// still hold its HTTP connection, and the client can retry after
// Retry-After as it would after a broker's throttle.
type recordsLimiter struct {
	total, perOrg int

	mu    sync.Mutex
	inUse int
	orgs  map[string]int // in progress per organisation; no zero entries
}

// acquire takes a slot for org, or says which bound is reached.
func (l *recordsLimiter) acquire(org string) (release func(), full string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.orgs[org] >= l.perOrg:
		return nil, fmt.Sprintf("the organisation has %d records requests in progress, the most allowed", l.perOrg)
	case l.inUse >= l.total:
		return nil, "the records API is at its limit of requests in progress"
	}
	l.inUse++
	l.orgs[org]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.inUse--
		if l.orgs[org]--; l.orgs[org] == 0 {
			delete(l.orgs, org)
		}
	}, ""
}

// recordsRetryAfter is the Retry-After of a 429 for a full records
// limiter: requests last at most recordsTimeout, most far less.
const recordsRetryAfter = time.Second

// limitRecords is middleware holding a records request to the limiter's
// bounds (429 problem+json with Retry-After beyond them).
func (s *Server) limitRecords(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		release, full := s.records.acquire(principal(c).OrgID)
		if release == nil {
			return errTooMany(full+"; try again later", recordsRetryAfter)
		}
		defer release()
		return next(c)
	}
}

// kafkaClient opens a client of the broker pool that acts as p in cl.
// The caller closes it.
func (s *Server) kafkaClient(ctx context.Context, p Principal, cl store.Cluster, opts ...kgo.Opt) (*kgo.Client, error) {
	tok, _, err := s.issuer.Issue(ctx, identity.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: p.Subject, ExpiresAt: jwt.NewNumericDate(time.Now().Add(recordsTokenTTL))},
		Org:              p.OrgID,
		Cluster:          cl.ID,
		Proxy:            true, // allowedFrom checked the caller's address
	})
	if err != nil {
		return nil, err
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(s.cfg.KafkaBootstrap, ",")...),
		kgo.SASL(oauth.Auth{Token: tok}.AsMechanism()),
		kgo.ClientID("eddy-rest"),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(10 * time.Second),
	}
	return kgo.NewClient(append(base, opts...)...)
}

// kafkaError turns what the brokers answered into a problem.
func kafkaError(err error, topic string) error {
	var ke *kerr.Error
	var ne net.Error
	switch {
	case errors.Is(err, kerr.ThrottlingQuotaExceeded):
		// The tenant's own quota, not an outage: the client should slow
		// down and try again, not page anyone.
		return errTooMany("the cluster's quota refused the request, try again later: "+err.Error(), quotaRetryAfter)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return errForbidden(fmt.Sprintf("the service account's role bindings and ACLs do not allow this on topic %q (%v)", topic, err))
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return errNotFound("topic")
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return newProblem(http.StatusRequestEntityTooLarge, client.ProblemTooLarge, "the brokers refused the records as too large: "+err.Error())
	case errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage), errors.Is(err, kerr.InvalidTimestamp):
		return newProblem(http.StatusUnprocessableEntity, client.ProblemInvalidChange, "the brokers refused the records: "+err.Error())
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.UnsupportedSaslMechanism):
		return newProblem(http.StatusServiceUnavailable, client.ProblemUnavailable, "the brokers do not accept the control plane's tokens (OAUTHBEARER): "+err.Error())
	case errors.As(err, &ke):
		return newProblem(http.StatusServiceUnavailable, client.ProblemUnavailable, "the brokers answered: "+err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne), errors.Is(err, kgo.ErrClientClosed):
		return newProblem(http.StatusServiceUnavailable, client.ProblemUnavailable, "no broker answered in time")
	}
	return err
}

// recordProblem is the problem of one refused record in a produce answer.
func recordProblem(err error) *client.Problem {
	var p *problem
	if !errors.As(err, &p) {
		p = newProblem(http.StatusServiceUnavailable, client.ProblemUnavailable, "the brokers refused the record: "+err.Error())
	}
	rp := p.Problem
	return &rp
}

// topicPartitions asks the brokers (as the principal) how many partitions
// topic has: the Kafka path's answer to whether it exists and may be
// described.
func topicPartitions(ctx context.Context, kc *kgo.Client, topic string) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, kc)
	if err != nil {
		return 0, kafkaError(err, topic)
	}
	if len(resp.Topics) != 1 {
		return 0, errNotFound("topic")
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		return 0, kafkaError(err, topic)
	}
	return int32(len(resp.Topics[0].Partitions)), nil
}

// openTopic opens a Kafka client acting as the request's principal in cl
// and returns it with the topic's partition count; the caller closes it.
func (s *Server) openTopic(ctx context.Context, c echo.Context, cl store.Cluster, topic string, opts ...kgo.Opt) (*kgo.Client, int32, error) {
	kc, err := s.kafkaClient(ctx, principal(c), cl, opts...)
	if err != nil {
		return nil, 0, err
	}
	n, err := topicPartitions(ctx, kc, topic)
	if err != nil {
		kc.Close()
		return nil, 0, err
	}
	return kc, n, nil
}

// loadRecordsTopic checks the topic name in the path and the cluster.
func (s *Server) loadRecordsTopic(c echo.Context) (store.Cluster, string, error) {
	topic := c.Param("topic_name")
	if topicconfig.CheckName(topic) != nil {
		return store.Cluster{}, "", errNotFound("topic")
	}
	cl, err := s.loadCluster(c)
	return cl, topic, err
}

// decodeData decodes a key, value or header value in its encoding.
func decodeData(fe *fieldErrors, field string, v *string, enc string) []byte {
	switch enc {
	case "", client.EncodingText:
		if v == nil {
			return nil
		}
		return []byte(*v)
	case client.EncodingBase64:
		if v == nil {
			return nil
		}
		b, err := base64.StdEncoding.DecodeString(*v)
		if err != nil {
			fe.add(field, "is not valid base64")
		}
		return b
	}
	fe.add(field+"_encoding", "must be %s or %s", client.EncodingText, client.EncodingBase64)
	return nil
}

// encodeData shows valid UTF-8 as text and anything else as base64.
func encodeData(b []byte, null bool) (*string, string) {
	if null {
		return nil, client.EncodingText
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, client.EncodingText
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s, client.EncodingBase64
}

// partitioner honours a record's explicit partition and otherwise hashes
// the key as Kafka's Java client does (sticky for records without one).
type partitioner struct{ explicit map[*kgo.Record]bool }

type topicPartitioner struct {
	explicit map[*kgo.Record]bool
	next     kgo.TopicPartitioner
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return topicPartitioner{p.explicit, kgo.StickyKeyPartitioner(nil).ForTopic(topic)}
}

func (p topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return p.explicit[r] || p.next.RequiresConsistency(r)
}

func (p topicPartitioner) Partition(r *kgo.Record, n int) int {
	if p.explicit[r] {
		return int(r.Partition)
	}
	return p.next.Partition(r, n)
}

func (s *Server) produceRecords(c echo.Context) error {
	cl, topic, err := s.loadRecordsTopic(c)
	if err != nil {
		return err
	}
	var req client.ProduceRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if len(req.Records) == 0 || len(req.Records) > maxRecordsPerRequest {
		fe.add("records", "must hold 1 to %d records, not %d", maxRecordsPerRequest, len(req.Records))
	}
	recs := make([]*kgo.Record, 0, len(req.Records))
	explicit := map[*kgo.Record]bool{}
	for i, in := range req.Records {
		f := fmt.Sprintf("records[%d].", i)
		r := &kgo.Record{Topic: topic,
			Key:   decodeData(&fe, f+"key", in.Key, in.KeyEncoding),
			Value: decodeData(&fe, f+"value", in.Value, in.ValueEncoding),
		}
		for j, h := range in.Headers {
			hf := fmt.Sprintf("%sheaders[%d].", f, j)
			if h.Key == "" {
				fe.add(hf+"key", "must not be empty")
			}
			v := h.Value
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: decodeData(&fe, hf+"value", &v, h.Encoding)})
		}
		if in.Partition != nil {
			if *in.Partition < 0 {
				fe.add(f+"partition", "must not be negative")
			}
			r.Partition = *in.Partition
			explicit[r] = true
		}
		recs = append(recs, r)
	}
	if err := fe.err(); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(c.Request().Context(), recordsTimeout)
	defer cancel()
	// Not idempotent: the client lives for this one request, so
	// idempotence would buy nothing but an InitProducerID per request,
	// which writes to Postgres and spends the cluster's producer-id quota
	// that the tenant's own Kafka producers share.
	kc, n, err := s.openTopic(ctx, c, cl, topic, kgo.RecordPartitioner(partitioner{explicit}),
		kgo.ProducerBatchMaxBytes(int32(min(s.cfg.MaxBodyBytes, 1<<30))), kgo.UnknownTopicRetries(1),
		kgo.DisableIdempotentWrite())
	if err != nil {
		return err
	}
	defer kc.Close()
	for i, r := range recs {
		if explicit[r] && r.Partition >= n {
			fe.add(fmt.Sprintf("records[%d].partition", i), "the topic has %d partitions", n)
		}
	}
	if err := fe.err(); err != nil {
		return err
	}
	// Each record's own result: records of one request go to several
	// partitions, and some may land while others are refused. A problem
	// for the whole request would hide those that landed, and a client
	// retrying it (under the same Idempotency-Key, which records only
	// answers below 500) would write them twice.
	errs := map[*kgo.Record]error{}
	for _, res := range kc.ProduceSync(ctx, recs...) {
		if res.Err != nil {
			errs[res.Record] = res.Err
		}
	}
	if len(errs) == len(recs) {
		return kafkaError(errs[recs[0]], topic)
	}
	out := client.ProduceResponse{Records: make([]client.ProducedRecord, len(recs))}
	for i, r := range recs {
		out.Records[i] = client.ProducedRecord{Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC()}
		if err := errs[r]; err != nil {
			out.Records[i].Offset = -1
			out.Records[i].Error = recordProblem(kafkaError(err, topic))
		}
	}
	return c.JSON(http.StatusOK, out)
}

// browseQuery reads offset, timestamp and limit.
func browseQuery(c echo.Context) (partition int32, offset, ts int64, limit int, err error) {
	var fe fieldErrors
	offset, ts, limit = -1, -1, defaultBrowseLimit
	p, perr := strconv.ParseInt(c.Param("partition"), 10, 32)
	if perr != nil || p < 0 {
		fe.add("partition", "must be a partition number")
	}
	if v := c.QueryParam("offset"); v != "" {
		o, err := strconv.ParseInt(v, 10, 64)
		if err != nil || o < 0 {
			fe.add("offset", "must be a non-negative integer")
		}
		offset = o
	}
	if v := c.QueryParam("timestamp"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || t.UnixMilli() < 0 {
			fe.add("timestamp", "must be an RFC 3339 time after 1970")
		}
		ts = t.UnixMilli()
		if offset >= 0 {
			fe.add("timestamp", "give offset or timestamp, not both")
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > maxRecordsPerRequest {
			fe.add("limit", "must be from 1 to %d", maxRecordsPerRequest)
		}
		limit = l
	}
	return int32(p), offset, ts, limit, fe.err()
}

// listOffset asks the partition's leader for the offset at ts (-2 the
// log start, -1 the high watermark, else the first record at or after
// ts; -1 when there is none).
func listOffset(ctx context.Context, kc *kgo.Client, topic string, partition int32, ts int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = topic
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition, p.Timestamp, p.CurrentLeaderEpoch = partition, ts, -1
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, kc)
	if err != nil {
		return 0, kafkaError(err, topic)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, errNotFound("partition")
	}
	rp := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
		return 0, kafkaError(err, topic)
	}
	return rp.Offset, nil
}

func (s *Server) browseRecords(c echo.Context) error {
	cl, topic, err := s.loadRecordsTopic(c)
	if err != nil {
		return err
	}
	partition, offset, ts, limit, err := browseQuery(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), recordsTimeout)
	defer cancel()
	maxBytes := int32(min(s.cfg.MaxBodyBytes, 1<<30))
	fetchBytes := min(maxBytes, int32(max(limit*browseRecordEstimate, browseMinFetchBytes)))
	// KeepControlRecords: kgo drops transaction markers, so a browse whose
	// tail is one would wait for an offset that never comes; kept, they
	// advance next_offset without being shown.
	kc, n, err := s.openTopic(ctx, c, cl, topic, kgo.FetchMaxBytes(fetchBytes), kgo.FetchMaxPartitionBytes(fetchBytes),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.KeepControlRecords())
	if err != nil {
		return err
	}
	defer kc.Close()
	if partition >= n {
		return errNotFound("partition")
	}
	out := client.Records{Records: []client.Record{}}
	if out.LogStartOffset, err = listOffset(ctx, kc, topic, partition, -2); err != nil {
		return err
	}
	if out.HighWatermark, err = listOffset(ctx, kc, topic, partition, -1); err != nil {
		return err
	}
	from := out.LogStartOffset
	switch {
	case offset >= 0:
		from = max(offset, out.LogStartOffset)
	case ts >= 0:
		if from, err = listOffset(ctx, kc, topic, partition, ts); err != nil {
			return err
		}
		if from < 0 {
			from = out.HighWatermark
		}
	}
	from = min(from, out.HighWatermark)
	out.NextOffset = from
	if from >= out.HighWatermark {
		return c.JSON(http.StatusOK, out)
	}

	kc.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}})
	size := 0
	for len(out.Records) < limit && out.NextOffset < out.HighWatermark && size < int(maxBytes) {
		fs := kc.PollFetches(ctx)
		if ctx.Err() != nil {
			if out.NextOffset == from {
				// Not one record (or marker) in recordsTimeout: an answer
				// of none would claim the partition is empty up to here.
				return newProblem(http.StatusServiceUnavailable, client.ProblemUnavailable, "no broker answered in time")
			}
			break // what was read so far; next_offset says where to go on
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < out.NextOffset || len(out.Records) >= limit || size >= int(maxBytes) {
				return // before the start (a compacted batch), or over a bound
			}
			if r.Offset >= out.HighWatermark {
				// Written after the high watermark was read: not shown, so
				// next_offset never passes high_watermark. Records come in
				// offset order, so nothing below it is left to read.
				out.NextOffset = out.HighWatermark
				return
			}
			if r.Attrs.IsControl() {
				out.NextOffset = r.Offset + 1 // a transaction marker: no data
				return
			}
			rec := client.Record{Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(), Headers: []client.RecordHeader{}}
			rec.Key, rec.KeyEncoding = encodeData(r.Key, r.Key == nil)
			rec.Value, rec.ValueEncoding = encodeData(r.Value, r.Value == nil)
			size += len(r.Key) + len(r.Value)
			for _, h := range r.Headers {
				v, enc := encodeData(h.Value, false)
				rec.Headers = append(rec.Headers, client.RecordHeader{Key: h.Key, Value: *v, Encoding: enc})
				size += len(h.Key) + len(h.Value)
			}
			out.Records = append(out.Records, rec)
			out.NextOffset = r.Offset + 1
		})
		// Any fetch error ends the browse: kgo would keep answering it, and
		// a recurring one after a record would otherwise hold the request
		// to recordsTimeout.
		if errs := fs.Errors(); len(errs) > 0 {
			if out.NextOffset == from {
				return kafkaError(errs[0].Err, topic)
			}
			break
		}
	}
	return c.JSON(http.StatusOK, out)
}
