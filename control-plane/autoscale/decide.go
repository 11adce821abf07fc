// Package autoscale sizes the broker pool to its load.
//
// Decide is pure: given the configuration, the pool's current size and
// last scaling times, and the history of pool load samples, it returns a
// Decision (hold, scale out or scale in, to how many brokers) with a
// human-readable reason. Loop (loop.go) runs it periodically against the
// brokers' load reports, records samples in Postgres so the history
// survives restarts, logs every decision with its reason, exports metrics,
// drains brokers before scale-in and applies the size through a Scaler.
//
// The model. A sample's demand is the pool's load in brokers' worth of
// capacity: the largest of bytes in, bytes out and CPU, each divided by
// what one broker can carry (Config.Capacity). Utilisation is demand per
// broker. The autoscaler aims at Config.Target utilisation:
//
//	predicted = max(now, now + trend·lead, now + (season[t+lead] − season[t]))
//	desired   = ceil(predicted / target), within [Min, Max]
//	scale out when predicted/brokers > target + band (not within ScaleOutCooldown of a scale-out)
//	scale in  when predicted/brokers < target − band (one broker at a time, not within ScaleInCooldown of any change)
//
// "now" is the mean demand over the last Smooth window; the trend is the
// least-squares slope over TrendWindow, when a line fits; the seasonal term replays what the
// load did over the next Lead exactly one Season (a day) earlier, so a
// daily peak is met before it arrives. The band is the hysteresis that
// keeps a pool near a threshold from flapping.
package autoscale

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Capacity is what one broker carries at 100 % utilisation.
type Capacity struct {
	BytesIn  float64 `json:"bytes_in_per_sec"`
	BytesOut float64 `json:"bytes_out_per_sec"`
	// CPU is the CPU cores one broker may use (its CPU limit).
	CPU float64 `json:"cpu_cores"`
}

// Config tunes the decisions. Durations are JSON strings ("5m").
type Config struct {
	Target           float64  `json:"target"`
	Band             float64  `json:"band"`
	MinBrokers       int      `json:"min_brokers"`
	MaxBrokers       int      `json:"max_brokers"`
	Capacity         Capacity `json:"capacity"`
	ScaleOutCooldown Duration `json:"scale_out_cooldown"`
	ScaleInCooldown  Duration `json:"scale_in_cooldown"`
	// Smooth is the window "now" is averaged over.
	Smooth Duration `json:"smooth"`
	// Lead is how far ahead the predictive terms look: about the time a
	// new broker takes to start serving.
	Lead        Duration `json:"lead"`
	TrendWindow Duration `json:"trend_window"`
	// Season is the period of the seasonal term (a day); 0 turns it off.
	Season Duration `json:"season"`
}

// DefaultConfig is the configuration flags start from.
func DefaultConfig() Config {
	return Config{
		Target: 0.6, Band: 0.1, MinBrokers: 1, MaxBrokers: 16,
		Capacity:         Capacity{BytesIn: 50e6, BytesOut: 150e6, CPU: 1},
		ScaleOutCooldown: Duration(30 * time.Second), ScaleInCooldown: Duration(5 * time.Minute),
		Smooth: Duration(30 * time.Second), Lead: Duration(2 * time.Minute),
		TrendWindow: Duration(10 * time.Minute), Season: Duration(24 * time.Hour),
	}
}

// Validate reports a configuration Decide cannot work with.
func (c Config) Validate() error {
	switch {
	case c.Target <= 0 || c.Target > 1:
		return fmt.Errorf("autoscale: target utilisation (--autoscale-target) %v is not in (0, 1]", c.Target)
	case c.Band < 0 || c.Band >= c.Target:
		return fmt.Errorf("autoscale: band (--autoscale-band) %v must be in [0, target)", c.Band)
	case c.MinBrokers < 1 || c.MaxBrokers < c.MinBrokers:
		return fmt.Errorf("autoscale: need 1 <= --autoscale-min (%d) <= --autoscale-max (%d)", c.MinBrokers, c.MaxBrokers)
	case c.Capacity.BytesIn <= 0 && c.Capacity.BytesOut <= 0 && c.Capacity.CPU <= 0:
		return fmt.Errorf("autoscale: a broker's capacity must be set for at least one of bytes in, bytes out, CPU (--autoscale-capacity-*)")
	}
	return nil
}

// Sample is the whole pool's load at one moment (sums over live brokers).
type Sample struct {
	At          time.Time `json:"at"`
	Brokers     int       `json:"brokers"`
	BytesIn     float64   `json:"bytes_in_per_sec"`
	BytesOut    float64   `json:"bytes_out_per_sec"`
	CPU         float64   `json:"cpu_cores_used"`
	Connections int       `json:"connections,omitempty"`
}

// Demand is the sample's load in brokers' worth of capacity.
func (c Capacity) Demand(s Sample) float64 {
	d := 0.0
	if c.BytesIn > 0 {
		d = max(d, s.BytesIn/c.BytesIn)
	}
	if c.BytesOut > 0 {
		d = max(d, s.BytesOut/c.BytesOut)
	}
	if c.CPU > 0 {
		d = max(d, s.CPU/c.CPU)
	}
	return d
}

// State is what Decide needs to know besides load.
type State struct {
	Brokers      int       `json:"brokers"` // the pool's size (as last set)
	LastScaleOut time.Time `json:"last_scale_out,omitzero"`
	LastScaleIn  time.Time `json:"last_scale_in,omitzero"`
}

// Actions.
const (
	Hold     = "hold"
	ScaleOut = "scale-out"
	ScaleIn  = "scale-in"
)

// Decision is what to do and why.
type Decision struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	From   int       `json:"from"`
	To     int       `json:"to"`
	Reason string    `json:"reason"`
	// Utilisation now and as predicted Lead ahead (demand per broker of
	// the current pool).
	Utilisation float64 `json:"utilisation"`
	Predicted   float64 `json:"predicted"`
}

// Apply returns the state after d was carried out.
func (s State) Apply(d Decision) State {
	switch d.Action {
	case ScaleOut:
		s.LastScaleOut = d.At
	case ScaleIn:
		s.LastScaleIn = d.At
	}
	s.Brokers = d.To
	return s
}

// Decide decides, at now, from the samples up to now (oldest first).
func Decide(cfg Config, st State, history []Sample, now time.Time) Decision {
	d := Decision{At: now, Action: Hold, From: st.Brokers, To: st.Brokers}
	lead, smooth := cfg.Lead.D(), max(cfg.Smooth.D(), time.Nanosecond)
	cur, n := mean(cfg.Capacity, history, now.Add(-smooth), now)
	if n == 0 || st.Brokers <= 0 {
		switch {
		case st.Brokers < cfg.MinBrokers:
			d.Action, d.To = ScaleOut, cfg.MinBrokers
			d.Reason = fmt.Sprintf("pool of %d is below the minimum of %d", st.Brokers, cfg.MinBrokers)
		default:
			d.Reason = fmt.Sprintf("no load samples in the last %s", smooth)
		}
		return d
	}
	pred, why := cur, []string{fmt.Sprintf("demand %.2f brokers", cur)}
	if slope, ok := trend(cfg.Capacity, history, now.Add(-cfg.TrendWindow.D()), now); ok && lead > 0 {
		t := cur + slope*lead.Minutes()
		if t > pred+1e-9 {
			why = append(why, fmt.Sprintf("trend %+.3f/min -> %.2f in %s", slope, t, lead))
			pred = t
		}
	}
	if season := cfg.Season.D(); season > 0 && lead > 0 {
		then, n1 := mean(cfg.Capacity, history, now.Add(-season-smooth), now.Add(-season))
		later, n2 := mean(cfg.Capacity, history, now.Add(-season+lead-smooth), now.Add(-season+lead))
		if n1 > 0 && n2 > 0 {
			s := cur + (later - then)
			if s > pred+1e-9 {
				why = append(why, fmt.Sprintf("a %s ago load went %.2f -> %.2f over the next %s -> %.2f", season, then, later, lead, s))
				pred = s
			}
		}
	}
	b := float64(st.Brokers)
	d.Utilisation, d.Predicted = round(cur/b), round(pred/b)
	desired := min(max(int(math.Ceil(pred/cfg.Target-1e-9)), cfg.MinBrokers), cfg.MaxBrokers)
	basis := strings.Join(why, "; ")
	hi, lo := cfg.Target+cfg.Band, cfg.Target-cfg.Band
	switch {
	case st.Brokers < cfg.MinBrokers:
		d.Action, d.To = ScaleOut, max(cfg.MinBrokers, desired)
		d.Reason = fmt.Sprintf("pool of %d is below the minimum of %d", st.Brokers, cfg.MinBrokers)
	case st.Brokers > cfg.MaxBrokers:
		d.Action, d.To = ScaleIn, cfg.MaxBrokers
		d.Reason = fmt.Sprintf("pool of %d is above the maximum of %d", st.Brokers, cfg.MaxBrokers)
	case pred/b > hi:
		switch {
		case st.Brokers >= cfg.MaxBrokers:
			d.Reason = fmt.Sprintf("predicted utilisation %.2f is above %.2f but the pool is at its maximum of %d (%s)", pred/b, hi, cfg.MaxBrokers, basis)
		case !st.LastScaleOut.IsZero() && now.Sub(st.LastScaleOut) < cfg.ScaleOutCooldown.D():
			d.Reason = fmt.Sprintf("predicted utilisation %.2f is above %.2f; waiting out the scale-out cool-down (%s left)",
				pred/b, hi, (cfg.ScaleOutCooldown.D() - now.Sub(st.LastScaleOut)).Round(time.Second))
		default:
			d.Action, d.To = ScaleOut, desired
			d.Reason = fmt.Sprintf("predicted utilisation %.2f is above %.2f (target %.2f + band %.2f): %s", pred/b, hi, cfg.Target, cfg.Band, basis)
		}
	case pred/b < lo && desired < st.Brokers:
		last := st.LastScaleIn
		if st.LastScaleOut.After(last) {
			last = st.LastScaleOut
		}
		switch {
		case !last.IsZero() && now.Sub(last) < cfg.ScaleInCooldown.D():
			d.Reason = fmt.Sprintf("predicted utilisation %.2f is below %.2f; waiting out the scale-in cool-down (%s left)",
				pred/b, lo, (cfg.ScaleInCooldown.D() - now.Sub(last)).Round(time.Second))
		case pred/(b-1) > hi:
			// One broker fewer would already be past the scale-out
			// threshold: holding avoids a scale-in/scale-out cycle.
			d.Reason = fmt.Sprintf("predicted utilisation %.2f is below %.2f, but with one broker fewer it would be %.2f, above %.2f", pred/b, lo, pred/(b-1), hi)
		default:
			d.Action, d.To = ScaleIn, st.Brokers-1 // one at a time: each drains a broker
			d.Reason = fmt.Sprintf("predicted utilisation %.2f is below %.2f (target %.2f - band %.2f): %s", pred/b, lo, cfg.Target, cfg.Band, basis)
		}
	default:
		d.Reason = fmt.Sprintf("predicted utilisation %.2f is within [%.2f, %.2f]", pred/b, lo, hi)
	}
	return d
}

func round(f float64) float64 { return math.Round(f*1000) / 1000 }

// mean is the mean demand of the samples in (from, to].
func mean(c Capacity, h []Sample, from, to time.Time) (float64, int) {
	sum, n := 0.0, 0
	for _, s := range h {
		if s.At.After(from) && !s.At.After(to) {
			sum += c.Demand(s)
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return sum / float64(n), n
}

// trend is the least-squares slope of demand per minute over (from, to].
// It is trusted only when a line explains most of the variation (R² of
// at least minFit) over at least three samples spanning a minute: noise
// and single steps have no trend worth extrapolating.
func trend(c Capacity, h []Sample, from, to time.Time) (float64, bool) {
	const minFit = 0.8
	var n, sx, sy, sxx, sxy, syy float64
	var first, last time.Time
	for _, s := range h {
		if !s.At.After(from) || s.At.After(to) {
			continue
		}
		if first.IsZero() {
			first = s.At
		}
		last = s.At
		x, y := s.At.Sub(to).Minutes(), c.Demand(s)
		n, sx, sy, sxx, sxy, syy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y, syy+y*y
	}
	varX, varY, cov := n*sxx-sx*sx, n*syy-sy*sy, n*sxy-sx*sy
	if n < 3 || last.Sub(first) < time.Minute || varX <= 0 || varY <= 0 {
		return 0, false
	}
	if r2 := cov * cov / (varX * varY); r2 < minFit {
		return 0, false
	}
	return cov / varX, true
}

// Duration is a time.Duration that reads and writes JSON as "1m30s".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}
