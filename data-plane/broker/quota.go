package broker

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-streams/eddy/internal/brokerload"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Quotas per virtual cluster, enforced across the whole pool.
//
// A cluster's quotas (virtual_clusters: ingress_mbps for produce bytes,
// egress_mbps for fetch bytes, max_requests_per_sec, max_connections) hold
// for the pool as a whole. Every broker enforces its share of each: the
// fraction of the cluster's traffic it carried in the latest load reports
// of all live brokers (brokers.load), but never less than 1/N of the
// quota for N live brokers — so a tenant that moves its traffic to a
// broker is not starved there before the next recomputation. The shares
// can therefore add up to a little more than 1 while traffic shifts.
//
// Throttling is Kafka's (KIP-13, KIP-219): each byte or request is charged
// to a per-cluster virtual clock (GCRA); when the clock runs more than a
// burst allowance ahead of now, the response carries throttle_time_ms and
// the broker stops reading from the connection for that long. Responses
// of versions that predate KIP-219 (the client does not back off itself)
// are delayed instead. Throttled requests are still served: Kafka never
// rejects for bandwidth quotas.
//
// Connections beyond the cluster's share are closed on their first
// request after authentication. Partition limits are enforced in the
// store (POLICY_VIOLATION on CreateTopics/CreatePartitions); a cluster at
// its storage limit gets POLICY_VIOLATION for produces until retention or
// deletes bring it back under.

const (
	// quotaBurst is how far a cluster may run ahead of its rate before it
	// is throttled: about one second of traffic, as Kafka's sample window.
	quotaBurst = time.Second
	// maxThrottle caps one throttle (Kafka caps it at the quota window).
	maxThrottle = 10 * time.Second
)

// clusterLimits are one cluster's quotas on this broker (0: unlimited).
type clusterLimits struct {
	produce, fetch, requests float64 // per second
	connections              int64
	storageFull              string // non-empty: why produces are refused
}

// tenantQuota is a tenant's virtual clocks (GCRA theoretical arrival times).
type tenantQuota struct {
	mu                         sync.Mutex
	produceTAT, fetchTAT, rTAT time.Time
}

// quotas holds the limits every tenant is held to on this broker.
type quotas struct {
	limits   atomic.Pointer[map[string]clusterLimits]
	local    atomic.Pointer[brokerload.Report] // this broker's last report
	throttle *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

func newQuotas(reg prometheus.Registerer) *quotas {
	q := &quotas{
		throttle: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_quota_throttle_seconds_total", Help: "Throttle time handed to clients, by virtual cluster and quota."},
			[]string{"cluster", "quota"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_quota_refusals_total", Help: "Connections closed or produces refused for quota, by virtual cluster and limit."},
			[]string{"cluster", "limit"}),
	}
	empty := map[string]clusterLimits{}
	q.limits.Store(&empty)
	if reg != nil {
		reg.MustRegister(q.throttle, q.refused)
	}
	return q
}

func (q *quotas) observeLocal(r brokerload.Report) { q.local.Store(&r) }

func (q *quotas) of(cluster string) clusterLimits { return (*q.limits.Load())[cluster] }

// gcra charges cost at rate to the clock at *tat and returns how long the
// client must wait for the clock to be within the burst allowance again.
func gcra(tat *time.Time, now time.Time, cost, rate float64) time.Duration {
	if rate <= 0 || cost <= 0 {
		return 0
	}
	t := *tat
	if t.Before(now) {
		t = now
	}
	t = t.Add(time.Duration(cost / rate * float64(time.Second)))
	// A client that ignores throttling must not push the clock into the
	// far future: it stays within one maximal throttle.
	if lim := now.Add(quotaBurst + maxThrottle); t.After(lim) {
		t = lim
	}
	*tat = t
	return max(0, t.Sub(now)-quotaBurst)
}

// noThrottle lists APIs never throttled: what a client needs to connect
// and authenticate (Kafka exempts these too).
var noThrottle = map[int16]bool{apiVersionsKey: true, 17: true, 36: true}

// chargeQuota charges a handled request (frame of reqBytes; resp may be
// nil for acks=0) to the connection's cluster. It sets throttle_time_ms in
// resp and mutes the connection (KIP-219), or returns how long to delay
// the response for clients that predate KIP-219. An error closes the
// connection (over the connection quota).
func (c *conn) chargeQuota(key int16, reqBytes int, resp kmsg.Response) (time.Duration, error) {
	t := c.load.t.Load()
	if t == nil || noThrottle[key] {
		return 0, nil
	}
	q := c.s.quotas
	lim := q.of(t.name)
	if lim.connections > 0 && t.conns.Load() > lim.connections && !c.load.admitted {
		q.refused.WithLabelValues(t.name, "connections").Inc()
		return 0, fmt.Errorf("connection quota of cluster %s exceeded (%d on this broker)", t.name, lim.connections)
	}
	c.load.admitted = true
	now := time.Now()
	var produce, fetch, reqs time.Duration
	t.quota.mu.Lock()
	switch key {
	case 0:
		produce = gcra(&t.quota.produceTAT, now, float64(reqBytes), lim.produce)
	case 1:
		if fr, ok := resp.(*kmsg.FetchResponse); ok {
			fetch = gcra(&t.quota.fetchTAT, now, float64(fetchedBytes(fr)), lim.fetch)
		}
	}
	reqs = gcra(&t.quota.rTAT, now, 1, lim.requests)
	t.quota.mu.Unlock()
	d := min(max(produce, fetch, reqs), maxThrottle)
	if d <= 0 {
		return 0, nil
	}
	for name, v := range map[string]time.Duration{"produce": produce, "fetch": fetch, "requests": reqs} {
		if v > 0 {
			q.throttle.WithLabelValues(t.name, name).Add(v.Seconds())
		}
	}
	after := true // acks=0: no response; muting is all there is
	if tr, ok := resp.(kmsg.ThrottleResponse); ok {
		var cur int32
		cur, after = tr.Throttle()
		if st, ok := resp.(kmsg.SetThrottleResponse); ok {
			st.SetThrottle(max(cur, int32(d/time.Millisecond)))
		}
	} else if resp != nil {
		after = false
	}
	if after {
		c.load.mutedUntil = now.Add(d)
		return 0, nil
	}
	return d, nil
}

func fetchedBytes(fr *kmsg.FetchResponse) int {
	n := 0
	for _, t := range fr.Topics {
		for _, p := range t.Partitions {
			n += len(p.RecordBatches)
		}
	}
	return n
}

// waitMuted holds the connection's reader while it is throttled (KIP-219:
// the broker mutes the channel), ending early on shutdown.
func (c *conn) waitMuted() {
	for {
		d := time.Until(c.load.mutedUntil)
		if d <= 0 || c.stopping.Load() {
			return
		}
		t := time.NewTimer(min(d, 100*time.Millisecond))
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return
		}
	}
}

// delayed wraps a deferred wait (or none) with a delay: the pre-KIP-219
// way of throttling.
func delayed(wait func(), d time.Duration, ctx context.Context) func() {
	return func() {
		if wait != nil {
			wait()
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// storageRefusal reports whether a produce is refused because the cluster
// is at its storage limit, with the response: POLICY_VIOLATION on every
// partition (nil for acks=0).
func (s *Server) storageRefusal(c *conn, req *kmsg.ProduceRequest) (kmsg.Response, bool) {
	why := s.quotas.of(c.cluster).storageFull
	if why == "" {
		return nil, false
	}
	s.quotas.refused.WithLabelValues(c.cluster, "storage").Inc()
	if req.Acks == 0 {
		return nil, true
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			sp.ErrorCode = kerr.PolicyViolation.Code
			sp.ErrorMessage = &why
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, true
}

// quotaLoop recomputes this broker's share of every cluster's quotas from
// the pool's load reports every interval, and the clusters' stored bytes
// every storageEvery rounds.
func (s *Server) quotaLoop(ctx context.Context) {
	const storageEvery = 5
	t := time.NewTicker(s.cfg.QuotaInterval)
	defer t.Stop()
	for round := 0; ; round++ {
		if err := s.refreshQuotas(ctx, round%storageEvery == 0); err != nil && ctx.Err() == nil {
			s.log.Warn("quota refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) refreshQuotas(ctx context.Context, storage bool) error {
	cqs, err := s.store.ClusterQuotas(ctx, storage)
	if err != nil {
		return err
	}
	raw, err := s.store.BrokerLoads(ctx)
	if err != nil {
		return err
	}
	reports := map[int32]brokerload.Report{}
	for id, b := range raw {
		r, err := brokerload.Parse(b)
		if err != nil {
			s.log.Debug("unreadable load report", "broker", id, "err", err)
		}
		reports[id] = r
	}
	if r := s.quotas.local.Load(); r != nil {
		reports[s.cfg.ID] = *r // fresher than our own row
	}
	old := *s.quotas.limits.Load()
	next := make(map[string]clusterLimits, len(cqs))
	for _, cq := range cqs {
		l := clusterLimits{
			produce:     float64(cq.ProduceBytes) * share(reports, s.cfg.ID, cq.ID, func(r brokerload.Rates) float64 { return r.BytesIn }),
			fetch:       float64(cq.FetchBytes) * share(reports, s.cfg.ID, cq.ID, func(r brokerload.Rates) float64 { return r.BytesOut }),
			requests:    float64(cq.RequestsPerSec) * share(reports, s.cfg.ID, cq.ID, func(r brokerload.Rates) float64 { return r.Requests }),
			connections: int64(math.Ceil(float64(cq.Connections) * share(reports, s.cfg.ID, cq.ID, func(r brokerload.Rates) float64 { return float64(r.Connections) }))),
		}
		switch {
		case cq.StoredBytes >= 0 && cq.StoredBytes >= cq.MaxStorageBytes:
			l.storageFull = fmt.Sprintf("cluster %s stores %d bytes, at its storage limit of %d bytes (max_storage_gb); delete records or topics, or raise the limit",
				cq.ID, cq.StoredBytes, cq.MaxStorageBytes)
		case cq.StoredBytes < 0:
			l.storageFull = old[cq.ID].storageFull // not re-measured this round
		}
		if l.storageFull != "" && old[cq.ID].storageFull == "" {
			s.log.Warn("cluster at its storage limit; produces are refused", "cluster", cq.ID, "stored_bytes", cq.StoredBytes)
		}
		next[cq.ID] = l
	}
	s.quotas.limits.Store(&next)
	return nil
}

// share is the fraction of a cluster's quota broker self enforces: its
// part of the cluster's observed traffic (dimension dim), at least 1/N.
func share(reports map[int32]brokerload.Report, self int32, cluster string, dim func(brokerload.Rates) float64) float64 {
	n := len(reports)
	if _, ok := reports[self]; !ok {
		n++
	}
	floor := 1 / float64(max(n, 1))
	var mine, total float64
	for id, r := range reports {
		v := dim(r.Clusters[cluster])
		total += v
		if id == self {
			mine = v
		}
	}
	if total <= 0 {
		return floor
	}
	return max(mine/total, floor)
}
