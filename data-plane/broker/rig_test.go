package broker

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/fsbucket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rig is one broker served in the test's process, for what a broker
// process cannot show: its heap, its open-file limit, faults injected by
// the guard's test hook. With placement, partitions and coordinator slots
// are placed on it, as the control plane's placement rounds would.
type rig struct {
	s    *Server
	addr string
	stop func() // shuts the broker down and waits; cleanup calls it too
}

type rigOptions struct {
	config    func(*Config) // adjusts the defaults (anonymous cluster vc-dev)
	hook      func(stage string, c *conn)
	fetchHook func(c *conn, req *kmsg.FetchRequest) // sees every Fetch request
	placement bool
	place     store.PlaceFunc // with placement; default onTheBroker
}

// onTheBroker places everything unplaced on the one broker there is.
func onTheBroker(brokers []store.BrokerLoad, unplaced []store.Item) []store.Assignment {
	var out []store.Assignment
	for _, it := range unplaced {
		if len(brokers) > 0 {
			out = append(out, store.Assignment{Item: it, Broker: brokers[0].ID})
		}
	}
	return out
}

func startRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	url := pgtest.URL(t)
	ctx, cancel := context.WithCancel(context.Background())
	var cfg Config
	fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.Listen, cfg.AnonymousCluster = "127.0.0.1:0", "vc-dev"
	cfg.Leader.WALDir, cfg.Metering.Dir = filepath.Join(dir, "wal"), filepath.Join(dir, "metering")
	if o.config != nil {
		o.config(&cfg)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(ctx, url, 8)
	if err != nil {
		t.Fatal(err)
	}
	bkt, err := fsbucket.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, st, bkt, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.guard.hook = o.hook
	s.fetchHook = o.fetchHook
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var stopPlacement func()
	if o.place == nil {
		o.place = onTheBroker
	}
	if o.placement {
		cp, err := store.Open(ctx, url, 2)
		if err != nil {
			t.Fatal(err)
		}
		placed := make(chan struct{})
		go func() {
			defer close(placed)
			for ctx.Err() == nil {
				cp.PlaceRound(ctx, o.place)
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		stopPlacement = func() { <-placed; cp.Close() }
	}
	r := &rig{s: s}
	r.stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("broker stopped with %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("broker did not stop within a minute")
		}
		if stopPlacement != nil {
			stopPlacement()
		}
		st.Close()
	})
	t.Cleanup(r.stop)
	// Registered: the broker answers Metadata naming itself.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if a := s.Addr(); a != nil && r.addr == "" {
			r.addr = a.String()
		}
		if r.addr != "" && r.registered(cfg.AnonymousCluster != "") {
			return r
		}
		select {
		case err := <-done:
			t.Fatalf("broker stopped during start-up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("broker not registered after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// registered: the session is open and, when clients need no credentials,
// the broker answers Metadata naming itself.
func (r *rig) registered(anonymous bool) bool {
	if r.s.session.Load() == 0 {
		return false
	}
	if !anonymous {
		return true
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.RequestRetries(0))
	if err != nil {
		return false
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	return err == nil && len(resp.Brokers) == 1
}

// client returns a kgo client of the rig's broker, closed when t ends.
func (r *rig) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
