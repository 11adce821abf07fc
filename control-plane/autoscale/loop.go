package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/internal/brokerload"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// Scaler sets the number of brokers in the pool (control-plane/scaler:
// local processes or Kubernetes). Brokers are numbered 1..n and shrinking
// removes the highest numbers, so the loop knows which ones to drain.
// Scale may block until removed brokers have exited.
type Scaler interface {
	Size(ctx context.Context) (int, error)
	Scale(ctx context.Context, n int) error
}

// Store is the loop's view of Postgres (internal/store.Store).
type Store interface {
	Pool(ctx context.Context) ([]store.PoolBroker, error)
	SetDraining(ctx context.Context, id int32, on bool) error
	AddLoadSample(ctx context.Context, at time.Time, sample []byte, keep time.Duration) error
	LoadSamples(ctx context.Context, since time.Time) ([]store.LoadSample, error)
}

// LoopConfig is Config plus how the loop runs.
type LoopConfig struct {
	Config
	// Interval between evaluations. Brokers report load every heartbeat
	// (1 s), so anything shorter only repeats samples.
	Interval time.Duration
	// DrainTimeout bounds how long a broker being removed may take to
	// lose its partitions and coordinator slots to the rebalancer; after
	// it the broker is stopped anyway and its leftovers fail over (its
	// shutdown still flushes and hands off what it holds).
	DrainTimeout time.Duration
}

// DefaultLoopConfig is the configuration flags start from.
func DefaultLoopConfig() LoopConfig {
	return LoopConfig{Config: DefaultConfig(), Interval: 5 * time.Second, DrainTimeout: 2 * time.Minute}
}

// RegisterFlags registers the --autoscale-* flags with the defaults of
// DefaultLoopConfig.
func (c *LoopConfig) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultLoopConfig()
	fs.DurationVar(&c.Interval, "autoscale-interval", d.Interval, "how often the autoscaler reads the pool's load and decides")
	fs.IntVar(&c.MinBrokers, "autoscale-min", d.MinBrokers, "fewest brokers the autoscaler keeps")
	fs.IntVar(&c.MaxBrokers, "autoscale-max", d.MaxBrokers, "most brokers the autoscaler starts")
	fs.Float64Var(&c.Target, "autoscale-target", d.Target, "utilisation the autoscaler aims at (0-1: load / capacity per broker)")
	fs.Float64Var(&c.Band, "autoscale-band", d.Band, "hysteresis: scale out above target+band, in below target-band")
	fs.Float64Var(&c.Capacity.BytesIn, "autoscale-capacity-bytes-in", d.Capacity.BytesIn, "bytes/s in one broker carries at 100% utilisation (0: not a limit)")
	fs.Float64Var(&c.Capacity.BytesOut, "autoscale-capacity-bytes-out", d.Capacity.BytesOut, "bytes/s out one broker carries at 100% utilisation (0: not a limit)")
	fs.Float64Var(&c.Capacity.CPU, "autoscale-capacity-cpu", d.Capacity.CPU, "CPU cores one broker may use at 100% utilisation (0: not a limit)")
	fs.DurationVar((*time.Duration)(&c.ScaleOutCooldown), "autoscale-scale-out-cooldown", d.ScaleOutCooldown.D(), "least time between two scale-outs")
	fs.DurationVar((*time.Duration)(&c.ScaleInCooldown), "autoscale-scale-in-cooldown", d.ScaleInCooldown.D(), "least time between any scaling and a scale-in")
	fs.DurationVar((*time.Duration)(&c.Smooth), "autoscale-smooth", d.Smooth.D(), "window the current load is averaged over")
	fs.DurationVar((*time.Duration)(&c.Lead), "autoscale-lead", d.Lead.D(), "how far ahead the trend and seasonal terms look (about a new broker's start-up time)")
	fs.DurationVar((*time.Duration)(&c.TrendWindow), "autoscale-trend-window", d.TrendWindow.D(), "window the load trend is fitted over (0: no trend term)")
	fs.DurationVar((*time.Duration)(&c.Season), "autoscale-season", d.Season.D(), "period of the seasonal term (0: off)")
	fs.DurationVar(&c.DrainTimeout, "autoscale-drain-timeout", d.DrainTimeout, "longest a broker being removed drains before it is stopped anyway")
}

// Validate reports a configuration the loop cannot run with.
func (c LoopConfig) Validate() error {
	if c.Interval <= 0 {
		return errors.New("autoscale: --autoscale-interval must be positive")
	}
	if c.DrainTimeout <= 0 {
		return errors.New("autoscale: --autoscale-drain-timeout must be positive")
	}
	return c.Config.Validate()
}

// history is how far back Decide looks: the smoothing window, the trend
// window and a season plus its lead.
func (c Config) history() time.Duration {
	return max(c.Smooth.D(), c.TrendWindow.D(), c.Season.D()+c.Smooth.D()) + time.Minute
}

// keepSamples is how long load_samples rows are kept (at least what
// Decide needs; a week and a day lets weekly patterns be studied).
const keepSamples = 8 * 24 * time.Hour

// Evaluation is a load_samples row: the sample, the demand and target the
// loop saw in it, and what was decided on it. The operator's REST API
// (GET /v1/autoscaler/decisions) reads the rows back with it.
type Evaluation struct {
	Sample
	// Demand is the sample's load in brokers' worth of capacity
	// (Capacity.Demand) and Target the utilisation aimed at, so a reader
	// without the loop's configuration can draw load against capacity.
	// Rows written before they were recorded have zeros.
	Demand float64 `json:"demand"`
	Target float64 `json:"target,omitempty"`
	// Decision is what the loop decided: a fresh decision, or while a
	// scale-in drains, the hold that follows the drain. Rows of older
	// control planes have none during a drain.
	Decision *Decision `json:"decision,omitempty"`
}

// Loop evaluates the pool every Interval and carries decisions out:
//
//   - scale-out: Scaler.Scale(n); the placement loop's rebalancer then
//     moves partitions to the new brokers as they register;
//   - scale-in: the brokers to be removed (the highest ids) are marked
//     draining, so placement gives them nothing new and the rebalancer
//     moves their partitions (gracefully) and coordinator slots away;
//     once they lead nothing (or DrainTimeout passed) Scaler.Scale stops
//     them. Load returning meanwhile cancels the drain.
//
// The rebalancer (placement.Config.RebalanceInterval) must be on, or
// new brokers get no partitions and drains only end by timeout.
//
// One control plane should run the loop: two would each act.
type Loop struct {
	cfg    LoopConfig
	store  Store
	scaler Scaler
	log    *slog.Logger
	now    func() time.Time

	// Owned by Run's goroutine.
	history         []Sample
	lastOut, lastIn time.Time
	drain           *drain
	lastKind        string
	met             loopMetrics
}

// drain is a scale-in under way.
type drain struct {
	from, to int
	ids      []int32
	started  time.Time
}

type loopMetrics struct {
	decisions         *prometheus.CounterVec
	drains            *prometheus.CounterVec
	failures          prometheus.Counter
	target, live      prometheus.Gauge
	draining          prometheus.Gauge
	util, predicted   prometheus.Gauge
	demand            prometheus.Gauge
	bytesIn, bytesOut prometheus.Gauge
}

// NewLoop returns a loop; reg may be nil.
func NewLoop(cfg LoopConfig, st Store, sc Scaler, log *slog.Logger, reg prometheus.Registerer) *Loop {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	l := &Loop{cfg: cfg, store: st, scaler: sc, log: log.With("component", "autoscale"), now: time.Now,
		met: loopMetrics{
			decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_autoscale_decisions_total",
				Help: "Autoscaler decisions by action (hold, scale-out, scale-in)."}, []string{"action"}),
			drains: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_autoscale_drains_total",
				Help: "Scale-in drains by outcome (completed, timed_out, cancelled)."}, []string{"outcome"}),
			failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "eddy_autoscale_failures_total", Help: "Autoscaler evaluations that failed."}),
			target:    g("eddy_autoscale_target_brokers", "Brokers the autoscaler has asked the scaler for."),
			live:      g("eddy_autoscale_live_brokers", "Brokers with a live session."),
			draining:  g("eddy_autoscale_draining_brokers", "Brokers being drained before they are stopped."),
			util:      g("eddy_autoscale_utilisation", "Pool utilisation: smoothed demand per broker, over its capacity."),
			predicted: g("eddy_autoscale_predicted_utilisation", "Utilisation predicted one lead time ahead (trend, seasonality)."),
			demand:    g("eddy_autoscale_demand_brokers", "The pool's current load in brokers' worth of capacity."),
			bytesIn:   g("eddy_autoscale_pool_bytes_in_per_second", "Bytes/s received by the whole pool."),
			bytesOut:  g("eddy_autoscale_pool_bytes_out_per_second", "Bytes/s sent by the whole pool."),
		}}
	l.met.decisions.WithLabelValues(Hold)
	l.met.decisions.WithLabelValues(ScaleOut)
	l.met.decisions.WithLabelValues(ScaleIn)
	if reg != nil {
		m := l.met
		reg.MustRegister(m.decisions, m.drains, m.failures, m.target, m.live, m.draining, m.util, m.predicted, m.demand, m.bytesIn, m.bytesOut)
	}
	return l
}

// Run evaluates until ctx ends and returns ctx's error. A drain under
// way when it ends is abandoned: its brokers stop draining.
func (l *Loop) Run(ctx context.Context) error {
	l.recover(ctx)
	defer func() {
		if l.drain != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			l.undrain(cctx, l.drain.ids)
			cancel()
		}
	}()
	l.log.Info("autoscaler running", "interval", l.cfg.Interval, "min", l.cfg.MinBrokers, "max", l.cfg.MaxBrokers,
		"target", l.cfg.Target, "band", l.cfg.Band, "capacity", fmt.Sprintf("%+v", l.cfg.Capacity))
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := l.Tick(ctx); err != nil && ctx.Err() == nil {
			l.met.failures.Inc()
			l.log.Warn("autoscaler evaluation failed", "err", err)
		}
	}
}

// recover reads the recent history (so trend and seasonality survive a
// restart) and the last scaling times (so cool-downs do), and stops
// drains a previous control plane left behind. Run calls it at every
// start: a control plane that regains the lease reads what the leader
// between its terms did.
func (l *Loop) recover(ctx context.Context) {
	now := l.now()
	l.history, l.lastOut, l.lastIn, l.drain = nil, time.Time{}, time.Time{}, nil
	rows, err := l.store.LoadSamples(ctx, now.Add(-l.cfg.history()))
	if err != nil {
		l.log.Warn("autoscaler: reading the load history failed; starting without", "err", err)
	}
	for _, row := range rows {
		var r Evaluation
		if err := json.Unmarshal(row.Sample, &r); err != nil {
			continue // an unreadable row is just a gap
		}
		r.At = row.At
		l.history = append(l.history, r.Sample)
		if d := r.Decision; d != nil {
			switch d.Action {
			case ScaleOut:
				l.lastOut = r.At
			case ScaleIn:
				l.lastIn = r.At
			}
		}
	}
	size, err := l.scaler.Size(ctx)
	pool, perr := l.store.Pool(ctx)
	if err != nil || perr != nil {
		return
	}
	for _, b := range pool {
		if b.Draining && int(b.ID) <= size {
			l.undrain(ctx, []int32{b.ID})
		}
	}
	l.met.target.Set(float64(size))
	l.log.Info("autoscaler history", "samples", len(l.history), "last_scale_out", l.lastOut, "last_scale_in", l.lastIn, "brokers", size)
}

// Tick runs one evaluation: sample the pool, decide, act, record.
func (l *Loop) Tick(ctx context.Context) error {
	now := l.now()
	pool, err := l.store.Pool(ctx)
	if err != nil {
		return err
	}
	size, err := l.scaler.Size(ctx)
	if err != nil {
		return err
	}
	s := sampleOf(pool, now)
	l.history = append(l.history, s)
	if cut := now.Add(-l.cfg.history()); l.history[0].At.Before(cut) {
		i, _ := slices.BinarySearchFunc(l.history, cut, func(s Sample, t time.Time) int { return s.At.Compare(t) })
		l.history = slices.Delete(l.history, 0, i)
	}
	l.met.live.Set(float64(len(pool)))
	l.met.demand.Set(l.cfg.Capacity.Demand(s))
	l.met.bytesIn.Set(s.BytesIn)
	l.met.bytesOut.Set(s.BytesOut)

	var (
		d      Decision
		actErr error
	)
	if l.drain != nil {
		d, actErr = l.continueDrain(ctx, pool, now)
	} else {
		d = Decide(l.cfg.Config, State{Brokers: size, LastScaleOut: l.lastOut, LastScaleIn: l.lastIn}, l.history, now)
		l.met.decisions.WithLabelValues(d.Action).Inc()
		l.logDecision(d)
		actErr = l.act(ctx, d)
	}
	l.met.util.Set(d.Utilisation)
	l.met.predicted.Set(d.Predicted)
	if l.drain != nil {
		l.met.draining.Set(float64(len(l.drain.ids)))
	} else {
		l.met.draining.Set(0)
	}
	// A drain's holds are recorded too, so the history shows the drain;
	// recover reads only scale-outs and scale-ins from it.
	b, _ := json.Marshal(Evaluation{Sample: s, Demand: round(l.cfg.Capacity.Demand(s)), Target: l.cfg.Target, Decision: &d})
	if err := l.store.AddLoadSample(ctx, now, b, max(keepSamples, l.cfg.history())); err != nil {
		return errors.Join(actErr, err)
	}
	return actErr
}

// sampleOf sums the live brokers' load reports.
func sampleOf(pool []store.PoolBroker, now time.Time) Sample {
	s := Sample{At: now, Brokers: len(pool)}
	for _, b := range pool {
		r, err := brokerload.Parse(b.Load)
		if err != nil {
			continue // unreadable: counts as idle, like a broker that has not reported yet
		}
		s.BytesIn += r.BytesIn
		s.BytesOut += r.BytesOut
		s.CPU += r.CPUUsed
		s.Connections += r.Connections
	}
	return s
}

var numbers = regexp.MustCompile(`[-+]?[0-9][0-9.]*[a-zµ]*`)

// logDecision logs scaling at Info and a hold at Info only when its kind
// of reason (numbers aside) changed since the last decision; repeated
// holds go to Debug.
func (l *Loop) logDecision(d Decision) {
	kind := d.Action + " " + numbers.ReplaceAllString(d.Reason, "#")
	lvl := slog.LevelInfo
	if d.Action == Hold && kind == l.lastKind {
		lvl = slog.LevelDebug
	}
	l.lastKind = kind
	l.log.Log(context.Background(), lvl, "autoscale decision", "action", d.Action, "from", d.From, "to", d.To,
		"utilisation", d.Utilisation, "predicted", d.Predicted, "reason", d.Reason)
}

// act carries a fresh decision out.
func (l *Loop) act(ctx context.Context, d Decision) error {
	switch d.Action {
	case ScaleOut:
		if err := l.scaler.Scale(ctx, d.To); err != nil {
			return fmt.Errorf("autoscale: scale out to %d: %w", d.To, err)
		}
		l.lastOut = d.At
		l.met.target.Set(float64(d.To))
	case ScaleIn:
		dr := &drain{from: d.From, to: d.To, started: d.At}
		for id := d.To + 1; id <= d.From; id++ {
			dr.ids = append(dr.ids, int32(id))
		}
		for _, id := range dr.ids {
			if err := l.store.SetDraining(ctx, id, true); err != nil && !errors.Is(err, store.ErrNotFound) {
				l.undrain(ctx, dr.ids)
				return fmt.Errorf("autoscale: draining broker %d: %w", id, err)
			}
		}
		l.lastIn = d.At
		l.drain = dr
		l.log.Info("draining brokers before stopping them", "brokers", idList(dr.ids))
	}
	return nil
}

// continueDrain follows a scale-in under way: it cancels it if the load
// came back, and stops the drained brokers once they lead nothing.
func (l *Loop) continueDrain(ctx context.Context, pool []store.PoolBroker, now time.Time) (Decision, error) {
	dr := l.drain
	// Would the pool without the draining brokers have to grow right away?
	d := Decide(l.cfg.Config, State{Brokers: dr.to, LastScaleOut: l.lastOut, LastScaleIn: dr.started}, l.history, now)
	if d.Action == ScaleOut {
		l.drain = nil
		l.undrain(ctx, dr.ids)
		l.met.drains.WithLabelValues("cancelled").Inc()
		l.log.Info("drain cancelled: the load came back", "brokers", idList(dr.ids), "reason", d.Reason)
		return Decision{At: now, Action: Hold, From: dr.from, To: dr.from, Utilisation: d.Utilisation, Predicted: d.Predicted,
			Reason: "drain of " + idList(dr.ids) + " cancelled: " + d.Reason}, nil
	}
	left, parts, slots := 0, 0, 0
	for _, b := range pool {
		if slices.Contains(dr.ids, b.ID) {
			parts += len(b.Partitions)
			slots += len(b.Slots)
			left += len(b.Partitions) + len(b.Slots)
		}
	}
	hold := Decision{At: now, Action: Hold, From: dr.from, To: dr.to, Utilisation: d.Utilisation, Predicted: d.Predicted}
	timedOut := now.Sub(dr.started) >= l.cfg.DrainTimeout
	if left > 0 && !timedOut {
		hold.Reason = fmt.Sprintf("draining %s: %d partitions and %d coordinator slots left", idList(dr.ids), parts, slots)
		l.log.Debug("draining", "brokers", idList(dr.ids), "partitions", parts, "slots", slots)
		return hold, nil
	}
	outcome := "completed"
	if left > 0 {
		outcome = "timed_out"
		l.log.Warn("drain timed out; stopping the brokers anyway (what they still lead fails over)",
			"brokers", idList(dr.ids), "partitions", parts, "slots", slots, "after", now.Sub(dr.started).Round(time.Second))
	}
	start := time.Now()
	if err := l.scaler.Scale(ctx, dr.to); err != nil {
		return hold, fmt.Errorf("autoscale: scale in to %d: %w", dr.to, err)
	}
	l.drain = nil
	l.lastIn = now
	l.met.target.Set(float64(dr.to))
	l.met.drains.WithLabelValues(outcome).Inc()
	l.log.Info("scaled in", "brokers", dr.to, "stopped", idList(dr.ids), "drained_in", now.Sub(dr.started).Round(time.Millisecond),
		"stop_took", time.Since(start).Round(time.Millisecond), "outcome", outcome)
	hold.Reason = fmt.Sprintf("drained %s (%s); stopped", idList(dr.ids), outcome)
	return hold, nil
}

func (l *Loop) undrain(ctx context.Context, ids []int32) {
	for _, id := range ids {
		if err := l.store.SetDraining(ctx, id, false); err != nil && !errors.Is(err, store.ErrNotFound) {
			l.log.Warn("ending a drain failed", "broker", id, "err", err)
		}
	}
}

func idList(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return "broker " + strings.Join(s, ", ")
}
