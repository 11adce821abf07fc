// Package quota holds every virtual cluster to its limits on this broker
// and meters the load the limits are divided by.
//
// # Quotas per virtual cluster, enforced across the whole pool
//
// A cluster's quotas (internal/limits: ingress_mbps for produce bytes,
// egress_mbps for fetch and share-fetch bytes, max_requests_per_sec, max_connections) hold
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
//
// # Load metering
//
// Every connection counts the request and response frames it carries, and
// its requests, against its virtual cluster (tenant) in a Meter; the
// broker's heartbeat turns the counters into the rates of a
// brokerload.Report (Meter.Report), which is what the shares above are
// computed from, across the pool.
//
// # Concurrency
//
// An Enforcer and a Meter are safe for concurrent use. A Conn belongs to
// one connection: its reader goroutine calls Request, Enforcer.Charge and
// WaitMuted, its writer goroutine Response, and Close runs once at the end.
// The Enforcer's Run loop is owned by the broker's service list.
package quota

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/brokerload"
	"github.com/eddy-streams/eddy/internal/limits"
)

const (
	// burst is how far a cluster may run ahead of its rate before it is
	// throttled: about one second of traffic, as Kafka's sample window.
	burst = time.Second
	// initialBurst is how far a cluster new to this broker (its first
	// connection, or its first after a restart) may run ahead: a tenth of
	// a second of traffic, so opening connections to a fresh broker does
	// not buy an unthrottled first second. A clock that has run since
	// earns the full burst back by idling, as a token bucket refills.
	initialBurst = burst / 10
	// maxThrottle caps one throttle (Kafka caps it at the quota window).
	maxThrottle = 10 * time.Second
)

// Store is what the Enforcer reads from Postgres (*store.Store).
type Store interface {
	ClusterLimits(ctx context.Context) (map[string]limits.Limits, error)
	StoredBytes(ctx context.Context) (map[string]int64, error)
	BrokerLoads(ctx context.Context) (map[int32][]byte, error)
}

// Limits are the pool-wide limits the Enforcer divides among the brokers
// (limits.Overrides): only the getters it reads.
type Limits interface {
	ProduceBytesPerSec(cluster string) float64
	FetchBytesPerSec(cluster string) float64
	RequestsPerSec(cluster string) float64
	Connections(cluster string) int64
	StorageBytes(cluster string) int64
}

// Config is how an Enforcer runs.
type Config struct {
	Broker   int32         // this broker's id, as in the load reports
	Interval time.Duration // between recomputations of the shares
}

// share is one cluster's quotas on this broker (0: unlimited).
type share struct {
	produce, fetch, requests float64 // per second
	connections              int64
	storageFull              string // non-empty: why produces are refused
}

// tenantQuota is a tenant's virtual clocks (GCRA theoretical arrival times).
type tenantQuota struct {
	mu                         sync.Mutex
	produceTAT, fetchTAT, rTAT time.Time
}

// Enforcer holds the quotas every tenant is held to on this broker.
type Enforcer struct {
	cfg      Config
	st       Store
	limits   *limits.Overrides
	log      *slog.Logger
	shares   atomic.Pointer[map[string]share]
	local    atomic.Pointer[brokerload.Report] // this broker's last report
	throttle *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

// New returns an Enforcer that stores every cluster's pool-wide limits in
// lim as it reads them, and knows no cluster (holds none to a quota) until
// Run's first round.
func New(cfg Config, st Store, lim *limits.Overrides, log *slog.Logger, reg prometheus.Registerer) *Enforcer {
	e := &Enforcer{
		cfg: cfg, st: st, limits: lim, log: log,
		throttle: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_quota_throttle_seconds_total", Help: "Throttle time handed to clients, by virtual cluster and quota."},
			[]string{"virtual_cluster", "quota"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_quota_refusals_total", Help: "Connections closed or produces refused for quota, by virtual cluster and limit."},
			[]string{"virtual_cluster", "limit"}),
	}
	empty := map[string]share{}
	e.shares.Store(&empty)
	if reg != nil {
		reg.MustRegister(e.throttle, e.refused)
	}
	return e
}

// ObserveLocal takes this broker's own latest load report, fresher than
// the one in its row, for the next recomputation.
func (e *Enforcer) ObserveLocal(r brokerload.Report) { e.local.Store(&r) }

func (e *Enforcer) of(cluster string) share { return (*e.shares.Load())[cluster] }

// gcra charges cost at rate to the clock at *tat and returns how long the
// client must wait for the clock to be within the burst allowance again.
func gcra(tat *time.Time, now time.Time, cost, rate float64) time.Duration {
	if rate <= 0 || cost <= 0 {
		return 0
	}
	t := *tat
	switch {
	case t.IsZero():
		t = now.Add(burst - initialBurst)
	case t.Before(now):
		t = now
	}
	t = t.Add(time.Duration(cost / rate * float64(time.Second)))
	// A client that ignores throttling must not push the clock into the
	// far future: it stays within one maximal throttle.
	if lim := now.Add(burst + maxThrottle); t.After(lim) {
		t = lim
	}
	*tat = t
	return max(0, t.Sub(now)-burst)
}

// noThrottle lists APIs never throttled: what a client needs to connect
// and authenticate (Kafka exempts these too).
var noThrottle = map[int16]bool{int16(kmsg.ApiVersions): true, int16(kmsg.SASLHandshake): true, int16(kmsg.SASLAuthenticate): true}

// Charge charges a handled request (API key, a frame of reqBytes; resp
// may be nil for acks=0) to the connection's cluster. It sets
// throttle_time_ms in resp and mutes the connection (KIP-219), or returns
// how long to delay the response for clients that predate KIP-219. An
// error means the connection is over its cluster's connection quota and
// must be closed.
func (e *Enforcer) Charge(c *Conn, key int16, reqBytes int, resp kmsg.Response) (time.Duration, error) {
	t := c.t.Load()
	if t == nil || noThrottle[key] {
		return 0, nil
	}
	lim := e.of(t.name)
	if lim.connections > 0 && t.conns.Load() > lim.connections && !c.admitted {
		e.refused.WithLabelValues(t.name, "connections").Inc()
		return 0, fmt.Errorf("connection quota of cluster %s exceeded (%d on this broker)", t.name, lim.connections)
	}
	c.admitted = true
	now := time.Now()
	var produce, fetch, reqs time.Duration
	t.quota.mu.Lock()
	switch kmsg.Key(key) {
	case kmsg.Produce:
		produce = gcra(&t.quota.produceTAT, now, float64(reqBytes), lim.produce)
	case kmsg.Fetch:
		if fr, ok := resp.(*kmsg.FetchResponse); ok {
			fetch = gcra(&t.quota.fetchTAT, now, float64(FetchedBytes(fr)), lim.fetch)
		}
	case kmsg.ShareFetch:
		// Records a share group reads are egress like a fetch's.
		if sr, ok := resp.(*kmsg.ShareFetchResponse); ok {
			fetch = gcra(&t.quota.fetchTAT, now, float64(shareFetchedBytes(sr)), lim.fetch)
		}
	}
	reqs = gcra(&t.quota.rTAT, now, 1, lim.requests)
	t.quota.mu.Unlock()
	d := min(max(produce, fetch, reqs), maxThrottle)
	if d <= 0 {
		return 0, nil
	}
	t.throttled.Add(int64(d))
	t.lastThrottled.Store(now.UnixNano())
	for name, v := range map[string]time.Duration{"produce": produce, "fetch": fetch, "requests": reqs} {
		if v > 0 {
			e.throttle.WithLabelValues(t.name, name).Add(v.Seconds())
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
		c.mutedUntil = now.Add(d)
		return 0, nil
	}
	return d, nil
}

// FetchedBytes is the record bytes a Fetch response carries: what the
// egress quota charges, and what zone metering counts.
func FetchedBytes(fr *kmsg.FetchResponse) int {
	n := 0
	for _, t := range fr.Topics {
		for _, p := range t.Partitions {
			n += len(p.RecordBatches)
		}
	}
	return n
}

func shareFetchedBytes(sr *kmsg.ShareFetchResponse) int {
	n := 0
	for _, t := range sr.Topics {
		for _, p := range t.Partitions {
			n += len(p.Records)
		}
	}
	return n
}

// WaitMuted holds the connection's reader while it is throttled (KIP-219:
// the broker mutes the channel), ending early when ctx ends or stopping
// is set (the broker drains).
func (c *Conn) WaitMuted(ctx context.Context, stopping *atomic.Bool) {
	for {
		d := time.Until(c.mutedUntil)
		if d <= 0 || stopping.Load() {
			return
		}
		t := time.NewTimer(min(d, 100*time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// Delayed wraps a deferred wait (or none) with a delay of d, cut short
// when ctx ends: the pre-KIP-219 way of throttling.
func Delayed(ctx context.Context, wait func(), d time.Duration) func() {
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

// StorageRefusal reports whether a produce to cluster is refused because
// the cluster is at its storage limit, with the response: POLICY_VIOLATION
// on every partition (nil for acks=0).
func (e *Enforcer) StorageRefusal(cluster string, req *kmsg.ProduceRequest) (kmsg.Response, bool) {
	why := e.of(cluster).storageFull
	if why == "" {
		return nil, false
	}
	e.refused.WithLabelValues(cluster, "storage").Inc()
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

// Run recomputes this broker's share of every cluster's quotas from the
// pool's load reports every interval, and the clusters' stored bytes
// every storageEvery rounds, until ctx ends.
func (e *Enforcer) Run(ctx context.Context) {
	const storageEvery = 5
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for round := 0; ; round++ {
		if err := e.refresh(ctx, round%storageEvery == 0); err != nil && ctx.Err() == nil {
			e.log.Warn("quota refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *Enforcer) refresh(ctx context.Context, storage bool) error {
	ls, err := e.st.ClusterLimits(ctx)
	if err != nil {
		return err
	}
	var stored map[string]int64 // nil: not measured this round
	if storage {
		if stored, err = e.st.StoredBytes(ctx); err != nil {
			return err
		}
	}
	raw, err := e.st.BrokerLoads(ctx)
	if err != nil {
		return err
	}
	reports := map[int32]brokerload.Report{}
	for id, b := range raw {
		r, err := brokerload.Parse(b)
		if err != nil {
			e.log.Debug("unreadable load report", "broker", id, "err", err)
		}
		reports[id] = r
	}
	if r := e.local.Load(); r != nil {
		reports[e.cfg.Broker] = *r // fresher than our own row
	}
	e.limits.Set(ls)
	e.shares.Store(e.divide(e.limits, ls, stored, reports))
	return nil
}

// divide computes this broker's share of the limits lim holds for each
// cluster of ls, and which clusters are at their storage limit (stored:
// nil when not measured this round, keeping what the last round found).
func (e *Enforcer) divide(lim Limits, ls map[string]limits.Limits, stored map[string]int64, reports map[int32]brokerload.Report) *map[string]share {
	old := *e.shares.Load()
	self := e.cfg.Broker
	next := make(map[string]share, len(ls))
	for id := range ls {
		l := share{
			produce:     lim.ProduceBytesPerSec(id) * shareOf(reports, self, id, func(r brokerload.Rates) float64 { return r.BytesIn }),
			fetch:       lim.FetchBytesPerSec(id) * shareOf(reports, self, id, func(r brokerload.Rates) float64 { return r.BytesOut }),
			requests:    lim.RequestsPerSec(id) * shareOf(reports, self, id, func(r brokerload.Rates) float64 { return r.Requests }),
			connections: int64(math.Ceil(float64(lim.Connections(id)) * shareOf(reports, self, id, func(r brokerload.Rates) float64 { return float64(r.Connections) }))),
		}
		sb, measured := stored[id]
		switch {
		case measured && sb >= lim.StorageBytes(id):
			l.storageFull = fmt.Sprintf("cluster %s stores %d bytes, at its storage limit of %d bytes (max_storage_gb); delete records or topics, or raise the limit",
				id, sb, lim.StorageBytes(id))
		case !measured:
			l.storageFull = old[id].storageFull // not re-measured this round
		}
		if l.storageFull != "" && old[id].storageFull == "" {
			e.log.Warn("cluster at its storage limit; produces are refused", "cluster", id, "stored_bytes", sb)
		}
		next[id] = l
	}
	return &next
}

// shareOf is the fraction of a cluster's quota broker self enforces: its
// part of the cluster's observed traffic (dimension dim), at least 1/N.
func shareOf(reports map[int32]brokerload.Report, self int32, cluster string, dim func(brokerload.Rates) float64) float64 {
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
