// Package placement decides which broker leads each partition and each
// group-coordinator slot, and runs the control plane's placement loop.
//
// Moving leadership copies no data: an item is released (its leader set to
// NULL) when its broker's session lapses or the broker leaves cleanly, and
// the next round hands it to the live broker with the fewest items, bumping
// its leader epoch so the former leader can never commit again. Live
// partitions are moved gracefully by the rebalancer (rebalance.go): by
// measured load, and away from draining brokers before they exit.
package placement

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/eddy-streams/eddy/internal/spread"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// Assign is the placement round's rule (spread.Evenly): every unassigned
// item to the non-draining broker with the fewest items of its kind.
func Assign(brokers []store.BrokerLoad, unassigned []store.Item) []store.Assignment {
	return spread.Evenly(brokers, unassigned)
}

// Config tunes the placement loop.
type Config struct {
	// Interval between rounds when nothing wakes the loop; a NOTIFY on
	// eddy_placement (topic created, broker left) wakes it at once. Broker
	// session expiry is only noticed by this timer, so Interval bounds how
	// long after expiry a dead broker's partitions stay unled.
	Interval time.Duration
	// RebalanceInterval is how often partitions are rebalanced by load and
	// draining brokers emptied (rebalance.go); 0 turns rebalancing off.
	RebalanceInterval time.Duration
	// MoveTimeout is how long a broker has to hand a partition off before
	// the move is forced; MaxMoves bounds the moves of one round.
	MoveTimeout time.Duration
	MaxMoves    int
	// Settle is how long a restarted broker gets no partitions from the
	// rebalancer (Node.Settling): past the time clients take to drop idle
	// connections to its previous process (franz-go: 20–40 s).
	Settle time.Duration
}

// DefaultConfig returns the defaults the flags start from; the rebalancer
// is off.
func DefaultConfig() Config {
	return Config{Interval: 500 * time.Millisecond, MoveTimeout: 15 * time.Second, MaxMoves: 8, Settle: 45 * time.Second}
}

// RegisterFlags registers placement's flags with the defaults of
// DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.Interval, "placement-interval", d.Interval, "placement round period (also bounds how long a dead broker's partitions stay unled after its session expires)")
	fs.DurationVar(&c.RebalanceInterval, "rebalance-interval", d.RebalanceInterval, "how often partitions are rebalanced by measured load and draining brokers emptied, with graceful moves (0: off)")
	fs.DurationVar(&c.MoveTimeout, "move-timeout", d.MoveTimeout, "how long a leader has to hand a moving partition off before the move is forced")
	fs.IntVar(&c.MaxMoves, "max-moves", d.MaxMoves, "most partition moves the rebalancer starts per round")
	fs.DurationVar(&c.Settle, "rebalance-settle", d.Settle, "how long a restarted broker gets no partitions from the rebalancer, while clients drop idle connections to its previous process (0: at once)")
}

// Validate checks the configuration, naming the flag of a bad value.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("placement: --placement-interval must be positive, got %s", c.Interval)
	case c.RebalanceInterval < 0:
		return fmt.Errorf("placement: --rebalance-interval must not be negative (0 turns it off), got %s", c.RebalanceInterval)
	case c.MoveTimeout <= 0:
		return fmt.Errorf("placement: --move-timeout must be positive, got %s", c.MoveTimeout)
	case c.MaxMoves <= 0:
		return fmt.Errorf("placement: --max-moves must be positive, got %d", c.MaxMoves)
	case c.Settle < 0:
		return fmt.Errorf("placement: --rebalance-settle must not be negative, got %s", c.Settle)
	}
	return nil
}

// Loop runs placement rounds.
type Loop struct {
	cfg     Config
	store   *store.Store
	log     *slog.Logger
	rounds  prometheus.Counter
	moved   *prometheus.CounterVec
	failure prometheus.Counter

	sessions sessions // the rebalancer's (rebalance.go)
}

// New returns a loop; reg may be nil. New panics if cfg does not
// Validate: a wiring error that cmd/eddy reports before getting here.
func New(cfg Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer) *Loop {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	l := &Loop{
		cfg: cfg, store: st, log: log, sessions: sessions{},
		rounds:  prometheus.NewCounter(prometheus.CounterOpts{Name: "eddy_placement_rounds_total", Help: "Placement rounds run."}),
		moved:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_placement_items_total", Help: "Partitions and coordinator slots released or assigned."}, []string{"action"}),
		failure: prometheus.NewCounter(prometheus.CounterOpts{Name: "eddy_placement_failures_total", Help: "Placement rounds that failed."}),
	}
	if reg != nil {
		reg.MustRegister(l.rounds, l.moved, l.failure)
	}
	return l
}

// Run places until ctx ends. It returns ctx's error.
func (l *Loop) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	listenDone := make(chan struct{})
	go func() {
		defer close(listenDone)
		l.listen(ctx, wake)
	}()
	defer func() { <-listenDone }()

	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	var lastRebalance time.Time
	for {
		l.round(ctx)
		if l.cfg.RebalanceInterval > 0 && time.Since(lastRebalance) >= l.cfg.RebalanceInterval {
			lastRebalance = time.Now()
			l.rebalance(ctx)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-wake:
		}
	}
}

func (l *Loop) round(ctx context.Context) {
	released, assigned, err := l.store.PlaceRound(ctx, Assign)
	l.rounds.Inc()
	if err != nil {
		if ctx.Err() == nil {
			l.failure.Inc()
			l.log.Warn("placement round failed", "err", err)
		}
		return
	}
	if released > 0 || assigned > 0 {
		l.moved.WithLabelValues("released").Add(float64(released))
		l.moved.WithLabelValues("assigned").Add(float64(assigned))
		l.log.Info("placement", "released", released, "assigned", assigned)
	}
}

// listen forwards eddy_placement notifications to wake, reconnecting after
// errors, until ctx ends.
func (l *Loop) listen(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := l.store.Listen(ctx, "eddy_placement", func(wait func(context.Context) (string, error)) error {
			for {
				if _, err := wait(ctx); err != nil {
					return err
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		})
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("placement listener failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
