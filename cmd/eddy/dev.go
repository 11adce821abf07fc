package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/eddy-streams/eddy/control-plane/laghistory"
	"github.com/eddy-streams/eddy/control-plane/scaler"
	"github.com/eddy-streams/eddy/internal/pgserver"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/service"
	"github.com/eddy-streams/eddy/migrations"
	"github.com/spf13/cobra"
)

// devMaxBrokers is eddy dev's --autoscale-max.
const devMaxBrokers = 6

type devConfig struct {
	dataDir   string
	brokers   int
	port      int
	pgPort    int
	apiPort   int
	host      string
	anonymous bool
	brokerEnv []string
	// brokerArgs are extra flags for every broker (--broker-flag).
	brokerArgs []string
	// databaseURL, when set, is used instead of a private Postgres.
	databaseURL string
	// autoscale holds --autoscale and the --autoscale-* flags.
	autoscale controlPlaneConfig
	// lagHistory holds the --lag-* flags of the control plane.
	lagHistory laghistory.Config
}

func newDevCmd() *cobra.Command {
	var cfg devConfig
	cmd := &cobra.Command{
		Use: "dev", Example: "  eddy dev\n" +
			"  eddy dev --brokers 1 --anonymous --data-dir /tmp/eddy\n" +
			"  eddy dev --autoscale --autoscale-capacity-bytes-in 200000",
		Short: "Run Eddy on this machine: Postgres, control plane and brokers",
		Long: `Starts a private PostgreSQL under the data directory (from the system's
binaries), applies the schema, runs the control plane and starts brokers as
child processes on consecutive ports with the filesystem object store.
Ctrl-C stops everything cleanly; data survives restarts. Brokers that
exit are restarted.

With --autoscale the control plane sizes the pool to its load between
--autoscale-min and --autoscale-max brokers (starting with --brokers),
starting broker processes on the next ports and draining and stopping
them again; lower --autoscale-capacity-bytes-in to see it at work.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), cfg, slog.Default())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.dataDir, "data-dir", ".data", "where Postgres, the object store, WALs and logs live")
	fs.IntVar(&cfg.brokers, "brokers", 3, "number of brokers")
	fs.IntVar(&cfg.port, "port", 9092, "Kafka port of the first broker; the others follow")
	fs.IntVar(&cfg.pgPort, "pg-port", 54329, "Postgres port on 127.0.0.1")
	fs.IntVar(&cfg.apiPort, "api-port", 8080, "REST API port")
	fs.StringVar(&cfg.host, "host", "127.0.0.1", "address brokers listen on and advertise")
	fs.BoolVar(&cfg.anonymous, "anonymous", false, "also accept unauthenticated Kafka connections, in virtual cluster vc-dev")
	fs.StringVar(&cfg.databaseURL, "database-url", "", "use this Postgres database instead of starting one under --data-dir")
	fs.StringArrayVar(&cfg.brokerArgs, "broker-flag", nil, "extra flag for every broker, e.g. --broker-flag=--flush-interval=50ms (repeatable)")
	cfg.autoscale.registerAutoscale(fs)
	cfg.lagHistory.RegisterFlags(fs)
	// A laptop's pool: a few brokers, so the ports in use stay few.
	fs.Lookup("autoscale-max").DefValue = strconv.Itoa(devMaxBrokers)
	cfg.autoscale.autoscaleLoop.MaxBrokers = devMaxBrokers
	return cmd
}

func runDev(ctx context.Context, cfg devConfig, log *slog.Logger) error {
	if cfg.brokers < 1 {
		return fmt.Errorf("--brokers must be at least 1")
	}
	maxBrokers := cfg.brokers
	if as := cfg.autoscale.autoscaleLoop; cfg.autoscale.autoscale {
		if err := as.Validate(); err != nil {
			return err
		}
		cfg.brokers = min(max(cfg.brokers, as.MinBrokers), as.MaxBrokers)
		maxBrokers = as.MaxBrokers
	}
	dir, err := filepath.Abs(cfg.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	dbURL := cfg.databaseURL
	if dbURL == "" {
		log.Info("starting postgres", "dir", filepath.Join(dir, "postgres"), "port", cfg.pgPort)
		pg, err := pgserver.Start(ctx, pgserver.Config{Dir: filepath.Join(dir, "postgres"), Port: cfg.pgPort, Fsync: true, Log: log})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := pg.Stop(sctx); err != nil {
				log.Warn("postgres stop", "err", err)
			}
		}()
		if err := migrations.EnsureDatabase(ctx, pg.URL("postgres"), "eddy"); err != nil {
			return err
		}
		dbURL = pg.URL("eddy")
	}
	if _, err := migrations.Apply(ctx, dbURL); err != nil {
		return err
	}

	// The operator token survives restarts, so scripts keep working.
	adminToken, err := devAdminToken(filepath.Join(dir, "admin-token"))
	if err != nil {
		return err
	}
	// So does the key that seals the secrets in Postgres, which would not
	// open without it.
	secretsKey, err := devSecretsKey(dir)
	if err != nil {
		return err
	}
	apiAddr := net.JoinHostPort(cfg.host, strconv.Itoa(cfg.apiPort))
	apiURL := "http://" + apiAddr
	envPath := filepath.Join(dir, "dev.env")
	tenant, err := ensureDevTenant(ctx, dbURL, envPath)
	if err != nil {
		return fmt.Errorf("development tenant: %w", err)
	}
	anonymous := ""
	if cfg.anonymous {
		anonymous = "vc-dev"
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Broker i listens on port+i-1 and serves metrics on port+100+i.
	procs := &scaler.Processes{Max: maxBrokers, Log: log, StopTimeout: 30 * time.Second,
		Command: func(id int) *exec.Cmd {
			cmd := exec.Command(self, "broker",
				"--id", strconv.Itoa(id),
				"--listen", net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port+id-1)),
				"--database-url", dbURL,
				"--data-dir", filepath.Join(dir, fmt.Sprintf("broker-%d", id)),
				"--objstore", "fs", "--objstore-dir", filepath.Join(dir, "objects"),
				"--metrics-listen", net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port+100+id)),
				// SASL logins (API keys, tokens from the REST API's token
				// endpoint) act in their own cluster; unauthenticated
				// connections only with --anonymous, in vc-dev.
				"--sasl-mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER", "--oauth-issuer", apiURL,
				"--anonymous-cluster="+anonymous,
			)
			cmd.Args = append(cmd.Args, cfg.brokerArgs...)
			logPath := filepath.Join(dir, "logs", fmt.Sprintf("broker-%d.log", id))
			if lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
				cmd.Stdout, cmd.Stderr = lf, lf // closed by procs once the broker started
			} else {
				log.Warn("broker log unavailable", "id", id, "err", err)
			}
			cmd.Env = append(os.Environ(), cfg.brokerEnv...)
			// If eddy dev dies, its brokers get SIGTERM and shut down cleanly.
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
			return cmd
		}}
	cp := defaultControlPlaneConfig()
	cp.databaseURL, cp.metrics, cp.migrate = dbURL, net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port+100)), false
	cp.api.Listen, cp.api.PublicURL = apiAddr, apiURL
	cp.api.AdminToken, cp.api.KafkaBootstrap = adminToken, net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port))
	cp.secrets.KeyFile = secretsKey
	cp.lagHistory = cfg.lagHistory
	if cfg.autoscale.autoscale {
		cp.autoscale, cp.autoscaleLoop, cp.scaler = true, cfg.autoscale.autoscaleLoop, procs
		cp.placement.RebalanceInterval = 2 * time.Second
	}
	var addrs []string
	for i := 1; i <= cfg.brokers; i++ {
		addrs = append(addrs, net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port+i-1)))
	}

	// The control plane runs in this process; brokers are children, so one
	// can be killed or restarted like in production (procs replaces it).
	// If the control plane fails (say its REST port is taken), eddy dev
	// stops with its error rather than run on half-broken.
	l := service.List{Log: log}
	l.Add("brokers", service.Basic{
		Starting: func(ctx context.Context) error { return procs.Scale(ctx, cfg.brokers) },
		Running: func(ctx context.Context) error {
			procs.Run(ctx) // SIGTERM every broker, SIGKILL after StopTimeout
			log.Info("all brokers stopped")
			return nil
		},
	})
	l.Add("control plane", service.Func(func(ctx context.Context) error {
		if err := runControlPlane(ctx, cp, log); err != nil {
			return fmt.Errorf("control plane: %w", err)
		}
		return nil
	}))
	l.Add("banner", service.Basic{
		// The REST API must answer too: the banner tells users to use it.
		Starting: func(ctx context.Context) error {
			if err := waitListening(ctx, addrs, filepath.Join(dir, "logs")); err != nil {
				return err
			}
			// The REST API is ready when it answers, not when its port
			// accepts: another process may hold the port (then the control
			// plane fails and eddy dev stops without printing ready).
			if err := waitHTTPReady(ctx, apiURL+"/readyz"); err != nil {
				return err
			}
			printDevBanner(os.Stdout, devBanner{
				brokers: cfg.brokers, db: dbURL, bootstrap: addrs[0], api: apiURL, dir: dir,
				adminToken: filepath.Join(dir, "admin-token"), env: envPath, tenant: tenant,
				metrics: net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port+100)), anonymous: cfg.anonymous,
			})
			fmt.Fprintln(os.Stdout, "ready")
			return nil
		},
		Stopping: func(context.Context) error { log.Info("stopping"); return nil },
	})
	// The brokers stop first: while they drain, the control plane they
	// rely on (placement, the REST API's JWKS) still runs.
	l.StopOrder("banner", "brokers", "control plane")
	return l.Run(ctx)
}

// waitListening waits until every address accepts TCP connections.
func waitListening(ctx context.Context, addrs []string, logs string) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not start listening within a minute; see the logs in %s", a, logs)
			}
		}
	}
	return nil
}

// waitHTTPReady waits until url answers 200 OK.
func waitHTTPReady(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within a minute", url)
		}
	}
}

// devAdminToken reads the development operator token at path, creating it
// on first use.
func devAdminToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	tok := "dev-" + strings.ToLower(rand.Text())
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

// devSecretsKey returns the development key-encryption key's file under
// dir, creating it (mode 0600) on first use.
func devSecretsKey(dir string) (string, error) {
	path := filepath.Join(dir, "secrets.key")
	return path, seal.EnsureKeyFile(path)
}
