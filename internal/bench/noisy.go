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
// cluster of its own, on the same brokers. Tenant B has the default
// limits; tenant A's ingress limit is NoisyIngressMBps, sized to the pool
// the way an operator sizes a plan (the default, 100 MB/s, is about all a
// small machine's pool can take, so it could not protect B). Tenant B
// produces at QuietRate with acks=all, first with tenant A idle, then
// while A produces as fast as its clients can (and so runs into its
// quota); the result is how much B's produce latency suffers, and how A
// was throttled. With NoisyProcess, A's producers run in a child process
// (Config.Worker), so that they do not take CPU from B's client in the
// bench's own process: what is left is the brokers' part.
// It runs against Eddy only (kfake has neither tenants nor quotas) and
// needs Eddy's database, where it creates the two tenants.
type Noisy struct {
	Name             string        `json:"name"`
	RecordSize       int           `json:"record_size"`
	Partitions       int           `json:"partitions"`                         // of each tenant's topic
	QuietRate        float64       `json:"quiet_rate_mb_s"`                    // tenant B's rate
	NoisyProducers   int           `json:"noisy_producers"`                    // tenant A's producing clients
	NoisyIngressMBps int32         `json:"noisy_ingress_limit_mb_s,omitempty"` // A's cluster's limit; 0: the default
	NoisyProcess     bool          `json:"noisy_process"`                      // A's producers in a child process
	Duration         time.Duration `json:"duration"`                           // of each of B's two measured phases
	Warmup           time.Duration `json:"warmup"`                             // A at full speed before B's second phase
}

// NoisyName names the scenario in the standard set (for --only).
const NoisyName = "noisy-neighbour"

// StandardNoisy is the scenario `make bench` runs, about 40 s at scale 1.
// A's 20 MB/s is a fifth of what the standard set's max-throughput
// workload reaches on a 2-core machine: a tenant the pool can carry.
// Its producers run in this process; eddy bench moves them to a child.
func StandardNoisy(scale float64) Noisy {
	d := func(s float64) time.Duration { return time.Duration(s * scale * float64(time.Second)) }
	return Noisy{Name: NoisyName, RecordSize: 1024, Partitions: 8, QuietRate: 1, NoisyProducers: 2,
		NoisyIngressMBps: 20, Duration: d(12), Warmup: d(3)}
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
	case n.NoisyIngressMBps < 0:
		return fmt.Errorf("bench: %s: tenant A's ingress limit must not be negative", n.Name)
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
	// FlushesAlone and FlushesShared are the brokers' flushes during B's
	// two phases (nil without the brokers' metrics): B's acks=all
	// requests wait for the flush that carries them, and A's bytes make
	// those flushes bigger.
	FlushesAlone  *Flushes `json:"flushes_a_idle,omitempty"`
	FlushesShared *Flushes `json:"flushes_a_full_speed,omitempty"`
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
	user, pass   string  // the key, for a worker process
	opt          kgo.Opt // SASL/PLAIN with the key
}

// makeTenant creates an organisation with one cluster of limits lim and a
// key for it, as a customer signing up would have them.
func makeTenant(ctx context.Context, st *store.Store, name string, lim limits.Limits) (tenant, error) {
	_, bootstrap := identity.NewSecret() // the org-wide key is not used
	o, sa, _, err := st.CreateOrg(ctx, name, bootstrap, nil)
	if err != nil {
		return tenant{}, err
	}
	c, err := st.CreateCluster(ctx, o.ID, name, lim, nil)
	if err != nil {
		return tenant{}, err
	}
	secret, hash := identity.NewSecret()
	k, err := st.CreateAPIKey(ctx, o.ID, sa.ID, c.ID, "made by eddy bench", hash, identity.SCRAMCredentials(secret))
	if err != nil {
		return tenant{}, err
	}
	return tenant{org: o.ID, cluster: c.ID, user: k.ID, pass: secret,
		opt: kgo.SASL(plain.Auth{User: k.ID, Pass: secret}.AsMechanism())}, nil
}

// limits are tenant A's and B's.
func (n Noisy) limits() [2]limits.Limits {
	a, b := limits.Defaults(), limits.Defaults()
	if n.NoisyIngressMBps > 0 {
		a.IngressMBps = n.NoisyIngressMBps
	}
	return [2]limits.Limits{a, b}
}

// runNoisy runs the scenario against eddy's brokers; worker starts a
// worker process (NoisyProcess).
func runNoisy(ctx context.Context, eddy target, n Noisy, worker []string, progress func(string)) (*NoisyResult, error) {
	st, err := store.Open(ctx, eddy.dbURL, 2)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	suffix := strings.ToLower(rand.Text()[:6])
	var tenants [2]tenant
	lims := n.limits()
	for i, who := range []string{"a", "b"} {
		if tenants[i], err = makeTenant(ctx, st, fmt.Sprintf("bench-%s-%s-%s", n.Name, who, suffix), lims[i]); err != nil {
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
	res := &NoisyResult{Scenario: n, NoisyIngressMBps: lims[0].IngressMBps}

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

	quiet, noisy := n.quiet(), n.noisy()
	// B's two phases each time its requests with a hook of their own.
	var aloneReqs, sharedReqs requestHook
	// phaseB runs one of B's phases and the brokers' flushes during it.
	phaseB := func(res *Result, reqs *requestHook) (*Flushes, error) {
		before, err := snapshot(ctx, eddy)
		if err != nil {
			return nil, err
		}
		if err := producePhase(ctx, withHookOf(b, reqs), quiet, topics[b.name], res, progress); err != nil {
			return nil, err
		}
		after, err := snapshot(ctx, eddy)
		return flushes(before, after), err
	}
	res.QuietAlone = &Result{Target: "tenant B, A idle"}
	if res.FlushesAlone, err = phaseB(res.QuietAlone, &aloneReqs); err != nil {
		return nil, err
	}

	// A starts, and after its warm-up B runs again while A goes on.
	actx, cancelA := context.WithCancel(ctx)
	defer cancelA()
	var aRes workerResult
	aDone := make(chan error, 1)
	go func() {
		if n.NoisyProcess {
			job := workerJob{Name: a.name, Seeds: a.seeds, User: tenants[0].user, Pass: tenants[0].pass, Workload: noisy, Topic: topics[a.name]}
			var err error
			aRes, err = runWorker(actx, worker, job, progress)
			aDone <- err
			return
		}
		aRes.Result = &Result{Target: a.name}
		hook := &throttleHook{}
		err := producePhase(actx, withHookOf(a, hook), noisy, topics[a.name], aRes.Result, progress)
		aRes.Throttle = hook.result()
		aDone <- err
	}()
	select {
	case <-time.After(n.Warmup):
	case err := <-aDone:
		return nil, fmt.Errorf("tenant A stopped during its warm-up: %w", err)
	case <-ctx.Done():
		<-aDone
		return nil, ctx.Err()
	}
	res.QuietShared = &Result{Target: "tenant B, A at full speed"}
	var errB error
	res.FlushesShared, errB = phaseB(res.QuietShared, &sharedReqs)
	if errB != nil {
		cancelA()
	}
	if errA := <-aDone; errA != nil && errB == nil {
		return nil, errA
	}
	if errB != nil {
		return nil, errB
	}
	res.Noisy, res.Throttle = aRes.Result, aRes.Throttle
	res.Noisy.Target = "tenant A"
	res.P50Ratio = div(res.QuietShared.ProduceLatency.P50, res.QuietAlone.ProduceLatency.P50)
	res.P99Ratio = div(res.QuietShared.ProduceLatency.P99, res.QuietAlone.ProduceLatency.P99)
	res.QuietAloneRequests, res.QuietSharedRequests = aloneReqs.lat.percentiles(), sharedReqs.lat.percentiles()
	return res, nil
}

// withHookOf is tg with one more hook, leaving tg's options alone.
func withHookOf(tg target, h kgo.Hook) target {
	tg.opts = append(slices.Clip(tg.opts), kgo.WithHooks(h))
	return tg
}

// Describe is a one-line summary for the workloads table.
func (n Noisy) Describe() string {
	where := "in the bench's process"
	if n.NoisyProcess {
		where = "in a process of their own"
	}
	return fmt.Sprintf("two tenants (virtual clusters) on the same brokers, %s records, %d partitions each; B: default limits, 1 producer, acks=all, %g MB/s, %s with A idle, then %s with A at full speed (ingress limit %d MB/s, %d producers %s, acks=all, after a %s warm-up)",
		fmtSize(n.RecordSize), n.Partitions, n.QuietRate, n.Duration, n.Duration, n.limits()[0].IngressMBps, n.NoisyProducers, where, n.Warmup)
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

// flushTable is the brokers' flushes during B's two phases; nil without
// the brokers' metrics.
func (r *NoisyResult) flushTable() *table {
	if r.FlushesAlone == nil || r.FlushesShared == nil {
		return nil
	}
	t := &table{title: "Brokers' flushes during tenant B's phases (over all brokers; B's acks=all requests wait for the flush that carries them)",
		header: []string{"phase", "flushes/s", "mean flush ms", "mean flush KiB", "broker CPU cores"}}
	for _, p := range []struct {
		name string
		f    *Flushes
	}{{"A idle", r.FlushesAlone}, {"A at full speed", r.FlushesShared}} {
		t.add(p.name, f1(p.f.PerSec), f1(p.f.MeanMs), f1(p.f.MeanKiB), f1(p.f.CPUCores))
	}
	return t
}

// Sentence is the scenario's result in one sentence.
func (r *NoisyResult) Sentence() string {
	verdict := "within"
	if r.P99Ratio > 1.5 {
		verdict = "over"
	}
	where := "in the bench's process"
	if r.Scenario.NoisyProcess {
		where = "in a process of its own"
	}
	return fmt.Sprintf("With tenant A producing as fast as its clients could, %s (%s MB/s against its %d MB/s quota; %d of its %d produce responses throttled, %s s of throttle in all), "+
		"tenant B's p99 produce latency at %g MB/s with acks=all was %s ms against %s ms with A idle: %s, %s the target of 1.5× "+
		"(the p99 of its produce requests, written to answered: %s ms against %s ms).",
		where, f1(r.Noisy.MBPerSec), r.NoisyIngressMBps, r.Throttle.Throttled, r.Throttle.Responses, f1(r.Throttle.TotalMs/1000),
		r.Scenario.QuietRate, f1(r.QuietShared.ProduceLatency.P99), f1(r.QuietAlone.ProduceLatency.P99), ratio(r.P99Ratio), verdict,
		f1(r.QuietSharedRequests.P99), f1(r.QuietAloneRequests.P99))
}
