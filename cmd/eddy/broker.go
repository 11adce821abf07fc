package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/eddy-streams/eddy/data-plane/broker"
	"github.com/eddy-streams/eddy/internal/service"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultDataDir is where a broker keeps its WAL, metering spool, read
// cache and (with --objstore fs) its objects unless told otherwise.
const defaultDataDir = "./data"

// brokerConfig is eddy broker's configuration: the broker's own (with its
// parts'), its object store's and its share of tiered storage.
type brokerConfig struct {
	broker.Config
	databaseURL string
	dataDir     string
	metrics     string
	// pprof adds Go's profiling endpoints (/debug/pprof/) to the
	// --metrics-listen server: off by default, since a profile reveals
	// timing and code paths to whoever reaches that port.
	pprof bool
	// idFromHostname derives --id from a StatefulSet pod's hostname
	// (<name>-<ordinal>): ordinal+1, the id the Kubernetes scaler expects
	// (control-plane/scaler). hostname is os.Hostname unless a test sets it.
	idFromHostname bool
	hostname       func() (string, error)
	objstore       objstoreConfig
	tiered         tieredConfig
}

// RegisterFlags registers every flag of eddy broker by delegating to the
// parts' RegisterFlags.
func (c *brokerConfig) RegisterFlags(fs *pflag.FlagSet) {
	c.Config.RegisterFlags(fs)
	c.objstore.RegisterFlags(fs)
	c.tiered.RegisterFlags(fs)
	fs.StringVar(&c.databaseURL, "database-url", "", "Postgres URL")
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir, "local directory for the WAL (and the fs object store)")
	fs.BoolVar(&c.idFromHostname, "id-from-hostname", false, "derive --id from a StatefulSet pod's hostname <name>-<ordinal>: ordinal+1")
	fs.StringVar(&c.metrics, "metrics-listen", "", "address for /metrics and the /livez and /readyz probes (empty: off)")
	fs.BoolVar(&c.pprof, "pprof", false, "also serve Go's profiles under /debug/pprof/ on --metrics-listen (for profiling; keep that address private)")
}

// Validate checks every part, after putting the directories not given
// under --data-dir.
func (c *brokerConfig) Validate() error {
	if c.databaseURL == "" {
		return errors.New("--database-url (or EDDY_DATABASE_URL) is required")
	}
	if c.idFromHostname {
		hostname := c.hostname
		if hostname == nil {
			hostname = os.Hostname
		}
		host, err := hostname()
		if err != nil {
			return fmt.Errorf("--id-from-hostname: %w", err)
		}
		if c.ID, err = ordinalID(host); err != nil {
			return err
		}
	}
	if c.Leader.WALDir == "" {
		c.Leader.WALDir = filepath.Join(c.dataDir, "wal")
	}
	if c.Metering.Dir == "" {
		c.Metering.Dir = filepath.Join(c.dataDir, "metering")
	}
	if c.tiered.cache.Dir == "" {
		c.tiered.cache.Dir = filepath.Join(c.dataDir, "cache")
	}
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if err := c.objstore.Validate(); err != nil {
		return err
	}
	return c.tiered.Validate()
}

// ordinalID is the broker id of the StatefulSet pod named host: its
// ordinal (the number after the last '-') plus 1, since broker ids start
// at 1.
func ordinalID(host string) (int32, error) {
	host, _, _ = strings.Cut(host, ".") // a FQDN names the pod first
	i := strings.LastIndexByte(host, '-')
	n, err := strconv.ParseInt(host[i+1:], 10, 32)
	if i < 0 || err != nil || n < 0 || n >= math.MaxInt32 {
		return 0, fmt.Errorf("--id-from-hostname: hostname %q does not end in -<ordinal>", host)
	}
	return int32(n) + 1, nil
}

func newBrokerCmd() *cobra.Command {
	var cfg brokerConfig
	cmd := &cobra.Command{
		Use: "broker", Example: "  eddy broker --id 1 --listen 10.0.0.5:9092 --database-url postgres://... --tls-cert tls.crt --tls-key tls.key \\\n" +
			"    --objstore s3 --s3-bucket eddy-data",
		Short: "Run one Kafka-protocol broker",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBroker(cmd.Context(), cfg, slog.Default())
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	return cmd
}

func runBroker(ctx context.Context, cfg brokerConfig, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return err
	}
	reg := newRegistry()
	bkt, err := cfg.objstore.open(ctx, cfg.dataDir, reg)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.databaseURL, 16)
	if err != nil {
		return err
	}
	defer st.Close()
	readCache, runner, err := openTiered(cfg.tiered, cfg.ID, st, bkt, log, reg)
	if err != nil {
		return err
	}
	defer readCache.Close()
	cfg.Leader.Remote = readCache
	srv, err := broker.New(cfg.Config, st, bkt, log, reg)
	if err != nil {
		return err
	}
	// Stopped in reverse: the tiered jobs first (a job in flight is handed
	// back at once), then the broker drains, the metrics server last.
	l := service.List{Log: log}
	addMetrics(&l, cfg.metrics, reg, cfg.pprof, srv.Ready)
	l.Add("broker", service.Func(func(ctx context.Context) error {
		if err := srv.Run(ctx); !errors.Is(err, broker.ErrServerClosed) {
			return err
		}
		return nil
	}))
	l.Add("tiered jobs", runner)
	return l.Run(ctx)
}
