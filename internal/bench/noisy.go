package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// Noisy is the noisy-neighbour scenario: two tenants, each a virtual
// cluster of its own with the default limits, on the same brokers. Tenant
// B produces at QuietRate with acks=all, first with tenant A idle, then
// while A produces as fast as it can (and so runs into its quota); the
// result is how much B's produce latency suffers, and how A was throttled.
// It runs against Eddy only (kfake has neither tenants nor quotas) and
// needs Eddy's database, where it creates the two tenants.
type Noisy struct {
	Name           string        `json:"name"`
	RecordSize     int           `json:"record_size"`
	Partitions     int           `json:"partitions"`      // of each tenant's topic
	QuietRate      float64       `json:"quiet_rate_mb_s"` // tenant B's rate
	NoisyProducers int           `json:"noisy_producers"` // tenant A's producing clients
	Duration       time.Duration `json:"duration"`        // of each of B's two measured phases
	Warmup         time.Duration `json:"warmup"`          // A at full speed before B's second phase
}

// NoisyName names the scenario in the standard set (for --only).
const NoisyName = "noisy-neighbour"

// StandardNoisy is the scenario `make bench` runs, about 40 s at scale 1.
func StandardNoisy(scale float64) Noisy {
	d := func(s float64) time.Duration { return time.Duration(s * scale * float64(time.Second)) }
	return Noisy{Name: NoisyName, RecordSize: 1024, Partitions: 8, QuietRate: 1, NoisyProducers: 2,
		Duration: d(12), Warmup: d(3)}
}

// Validate reports the first invalid setting.
func (n Noisy) Validate() error {
	switch {
	case n.RecordSize < 1 || n.RecordSize > 1<<20:
		return fmt.Errorf("bench: %s: record size must be 1 B to 1 MiB", n.Name)
	case n.Partitions < 1 || n.NoisyProducers < 1:
		return fmt.Errorf("bench: %s: partitions and producers must be at least 1", n.Name)
	case n.QuietRate <= 0:
		return fmt.Errorf("bench: %s: tenant B's rate must be positive", n.Name)
	case n.Duration < 100*time.Millisecond || n.Warmup < 0:
		return fmt.Errorf("bench: %s: duration must be at least 100ms and warm-up not negative", n.Name)
	}
	return nil
}

// quiet and noisy are the workloads of tenants B and A.
func (n Noisy) quiet() Workload {
	return Workload{Name: n.Name + "-b", RecordSize: n.RecordSize, Partitions: n.Partitions, Producers: 1,
		Rate: n.QuietRate, Duration: n.Duration, Acks: "all", Compression: "none", Partitioner: "sticky",
		Linger: time.Millisecond}
}

func (n Noisy) noisy() Workload {
	w := n.quiet()
	w.Name, w.Producers, w.Rate, w.Duration = n.Name+"-a", n.NoisyProducers, 0, n.Warmup+n.Duration
	return w
}

// NoisyResult is the scenario's outcome.
type NoisyResult struct {
	Scenario Noisy `json:"scenario"`
	// QuietAlone and QuietShared are tenant B with A idle and with A at
	// full speed; Noisy is A over its whole run (warm-up included).
	QuietAlone  *Result `json:"tenant_b_a_idle"`
	QuietShared *Result `json:"tenant_b_a_full_speed"`
	Noisy       *Result `json:"tenant_a"`
	// QuietAloneRequests and QuietSharedRequests are B's produce requests
	// from being written to their response being read: the brokers' part
	// of B's latency, without the time records wait in the client (whose
	// process A's producers share).
	QuietAloneRequests  Percentiles `json:"tenant_b_a_idle_requests_ms"`
	QuietSharedRequests Percentiles `json:"tenant_b_a_full_speed_requests_ms"`
	// NoisyIngressMBps is A's produce quota (its cluster's limit, over
	// all brokers).
	NoisyIngressMBps int32 `json:"tenant_a_ingress_limit_mb_s"`
	// P50Ratio and P99Ratio are B's produce latency with A at full speed
	// over B's with A idle (target: P99Ratio at most 1.5).
	P50Ratio float64  `json:"b_p50_ratio"`
	P99Ratio float64  `json:"b_p99_ratio"`
	Throttle Throttle `json:"tenant_a_throttle"`
}

// Throttle is what tenant A's clients were told to wait: the ThrottleMillis
// of every produce response, as kgo's throttle hook reports them.
type Throttle struct {
	Responses int64 `json:"produce_responses"`
	Throttled int64 `json:"throttled_responses"` // ThrottleMillis > 0
	// TotalMs sums ThrottleMillis over the responses; P50 and P99 are over
	// every produce response, the unthrottled ones counting as 0.
	TotalMs float64 `json:"total_ms"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// throttleHook counts tenant A's produce responses (OnBrokerRead) and
// records every throttle time kgo reports (OnBrokerThrottle, for each
// response with ThrottleMillis > 0). A's clients send produce requests,
// and only a few others (metadata, producer ids), so the throttle times
// are taken to be the produce responses'.
type throttleHook struct {
	mu        sync.Mutex
	responses int64
	ms        []float64 // one per throttled response
}

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	h.mu.Lock()
	h.ms = append(h.ms, float64(d)/float64(time.Millisecond))
	h.mu.Unlock()
}

func (h *throttleHook) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == int16(kmsg.Produce) && err == nil {
		h.mu.Lock()
		h.responses++
		h.mu.Unlock()
	}
}

func (h *throttleHook) result() Throttle {
	h.mu.Lock()
	ms := slices.Clone(h.ms)
	t := Throttle{Responses: h.responses, Throttled: int64(len(ms))}
	h.mu.Unlock()
	for _, v := range ms {
		t.TotalMs += v
	}
	// The unthrottled responses count as 0.
	ms = append(ms, make([]float64, max(0, t.Responses-t.Throttled))...)
	if len(ms) == 0 {
		return t
	}
	slices.Sort(ms)
	at := func(p float64) float64 { return ms[int(p*float64(len(ms)-1))] }
	t.P50Ms, t.P99Ms, t.MaxMs = at(0.5), at(0.99), at(1)
	return t
}

// requestHook times requests of one kind (key; the zero value times
// produce requests) from being written to their response being read.
type requestHook struct {
	key int16
	lat latencies
}

func (h *requestHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key == h.key && e.Err() == nil {
		h.lat.add(e.TimeToWrite + e.ReadWait + e.TimeToRead)
	}
}

// tenant is a virtual cluster made for the scenario, with an API key.
type tenant struct {
	org, cluster string
	opt          kgo.Opt // SASL/PLAIN with the key
}

// makeTenant creates an organisation with one cluster of the default
// limits and a key for it, as a customer signing up would have them.
func makeTenant(ctx context.Context, st *store.Store, name string) (tenant, error) {
	_, bootstrap := identity.NewSecret() // the org-wide key is not used
	o, sa, _, err := st.CreateOrg(ctx, name, bootstrap, nil)
	if err != nil {
		return tenant{}, err
	}
	c, err := st.CreateCluster(ctx, o.ID, name, limits.Defaults(), nil)
	if err != nil {
		return tenant{}, err
	}
	secret, hash := identity.NewSecret()
	k, err := st.CreateAPIKey(ctx, o.ID, sa.ID, c.ID, "made by eddy bench", hash, identity.SCRAMCredentials(secret))
	if err != nil {
		return tenant{}, err
	}
	return tenant{org: o.ID, cluster: c.ID, opt: kgo.SASL(plain.Auth{User: k.ID, Pass: secret}.AsMechanism())}, nil
}

// runNoisy runs the scenario against eddy's brokers.
func runNoisy(ctx context.Context, eddy target, n Noisy, progress func(string)) (*NoisyResult, error) {
	st, err := store.Open(ctx, eddy.dbURL, 2)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	suffix := strings.ToLower(rand.Text()[:6])
	var tenants [2]tenant
	for i, who := range []string{"a", "b"} {
		if tenants[i], err = makeTenant(ctx, st, fmt.Sprintf("bench-%s-%s-%s", n.Name, who, suffix)); err != nil {
			return nil, fmt.Errorf("tenant %s: %w", who, err)
		}
	}
	defer func() {
		// The tenants go with the stack; on a long-lived one, remove them.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, t := range tenants {
			st.DeleteCluster(dctx, t.org, t.cluster)
			st.DeleteOrg(dctx, t.org)
		}
	}()
	a := target{name: "tenant-a", seeds: eddy.seeds, opts: []kgo.Opt{tenants[0].opt}}
	b := target{name: "tenant-b", seeds: eddy.seeds, opts: []kgo.Opt{tenants[1].opt}}
	res := &NoisyResult{Scenario: n, NoisyIngressMBps: limits.Defaults().IngressMBps}

	topics := map[string]string{}
	for _, tg := range []target{a, b} {
		cl, err := tg.client()
		if err != nil {
			return nil, err
		}
		topics[tg.name] = fmt.Sprintf("bench-%s-%s", n.Name, suffix)
		err = createTopic(ctx, kadm.NewClient(cl), topics[tg.name], n.Partitions)
		cl.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: create topic: %w", tg.name, err)
		}
	}

	hook := &throttleHook{} // A's producers only
	a.opts = append(a.opts, kgo.WithHooks(hook))
	quiet, noisy := n.quiet(), n.noisy()
	// B's two phases each time its requests with a hook of their own.
	withHook := func(tg target, h *requestHook) target {
		tg.opts = append(slices.Clip(tg.opts), kgo.WithHooks(h))
		return tg
	}
	var aloneReqs, sharedReqs requestHook
	res.QuietAlone = &Result{Target: "tenant B, A idle"}
	if err := producePhase(ctx, withHook(b, &aloneReqs), quiet, topics[b.name], res.QuietAlone, progress); err != nil {
		return nil, err
	}

	// A starts, and after its warm-up B runs again while A goes on.
	res.Noisy = &Result{Target: "tenant A"}
	actx, cancelA := context.WithCancel(ctx)
	defer cancelA()
	aDone := make(chan error, 1)
	go func() { aDone <- producePhase(actx, a, noisy, topics[a.name], res.Noisy, progress) }()
	select {
	case <-time.After(n.Warmup):
	case err := <-aDone:
		return nil, fmt.Errorf("tenant A stopped during its warm-up: %w", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res.QuietShared = &Result{Target: "tenant B, A at full speed"}
	errB := producePhase(ctx, withHook(b, &sharedReqs), quiet, topics[b.name], res.QuietShared, progress)
	if errB != nil {
		cancelA()
	}
	if errA := <-aDone; errA != nil && errB == nil {
		return nil, errA
	}
	if errB != nil {
		return nil, errB
	}
	res.P50Ratio = div(res.QuietShared.ProduceLatency.P50, res.QuietAlone.ProduceLatency.P50)
	res.P99Ratio = div(res.QuietShared.ProduceLatency.P99, res.QuietAlone.ProduceLatency.P99)
	res.Throttle = hook.result()
	res.QuietAloneRequests, res.QuietSharedRequests = aloneReqs.lat.percentiles(), sharedReqs.lat.percentiles()
	return res, nil
}

// Describe is a one-line summary for the workloads table.
func (n Noisy) Describe() string {
	return fmt.Sprintf("two tenants (virtual clusters, default limits) on the same brokers, %s records, %d partitions each; B: 1 producer, acks=all, %g MB/s, %s with A idle, then %s with A at full speed (%d producers, acks=all, after a %s warm-up)",
		fmtSize(n.RecordSize), n.Partitions, n.QuietRate, n.Duration, n.Duration, n.NoisyProducers, n.Warmup)
}

const noisyTitle = "Noisy neighbour"

// table lays the scenario out: B's latency in both phases and the ratio,
// and A's rate and throttling.
func (r *NoisyResult) table() *table {
	t := &table{title: noisyTitle + " (tenant B's produce latency in ms; tenant A's throttle: ThrottleMillis of its produce responses)",
		header: []string{"phase", "B MB/s", "B p50", "B p99", "B p99.9", "B request p50", "B request p99", "A MB/s", "A throttled responses", "A throttle total s", "A throttle p50", "A throttle p99", "A throttle max"}}
	b := func(x *Result, req Percentiles) []string {
		return []string{f1(x.MBPerSec), f1(x.ProduceLatency.P50), f1(x.ProduceLatency.P99), f1(x.ProduceLatency.P999), f1(req.P50), f1(req.P99)}
	}
	t.add(append(append([]string{"A idle"}, b(r.QuietAlone, r.QuietAloneRequests)...), "–", "–", "–", "–", "–", "–")...)
	th := r.Throttle
	t.add(append(append([]string{"A at full speed"}, b(r.QuietShared, r.QuietSharedRequests)...),
		f1(r.Noisy.MBPerSec), fmt.Sprintf("%d of %d", th.Throttled, th.Responses), f1(th.TotalMs/1000), f1(th.P50Ms), f1(th.P99Ms), f1(th.MaxMs))...)
	t.add("B: full speed / idle", "–", ratio(r.P50Ratio), ratio(r.P99Ratio), ratio(div(r.QuietShared.ProduceLatency.P999, r.QuietAlone.ProduceLatency.P999)),
		ratio(div(r.QuietSharedRequests.P50, r.QuietAloneRequests.P50)), ratio(div(r.QuietSharedRequests.P99, r.QuietAloneRequests.P99)),
		"–", "–", "–", "–", "–", "–")
	return t
}

// Sentence is the scenario's result in one sentence.
func (r *NoisyResult) Sentence() string {
	verdict := "within"
	if r.P99Ratio > 1.5 {
		verdict = "over"
	}
	return fmt.Sprintf("With tenant A producing as fast as it could (%s MB/s against its %d MB/s quota; %d of its %d produce responses throttled, %s s of throttle in all), "+
		"tenant B's p99 produce latency at %g MB/s with acks=all was %s ms against %s ms with A idle: %s, %s the target of 1.5× "+
		"(the p99 of its produce requests, written to answered: %s ms against %s ms).",
		f1(r.Noisy.MBPerSec), r.NoisyIngressMBps, r.Throttle.Throttled, r.Throttle.Responses, f1(r.Throttle.TotalMs/1000),
		r.Scenario.QuietRate, f1(r.QuietShared.ProduceLatency.P99), f1(r.QuietAlone.ProduceLatency.P99), ratio(r.P99Ratio), verdict,
		f1(r.QuietSharedRequests.P99), f1(r.QuietAloneRequests.P99))
}
