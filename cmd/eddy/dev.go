package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/eddy-streams/eddy/internal/pgserver"
	"github.com/eddy-streams/eddy/migrations"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type devConfig struct {
	dataDir   string
	brokers   int
	port      int
	pgPort    int
	apiPort   int
	host      string
	anonymous bool
	brokerEnv []string
}

func newDevCmd() *cobra.Command {
	var cfg devConfig
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run Eddy on this machine: Postgres, control plane and brokers",
		Long: `Starts a private PostgreSQL under the data directory (from the system's
binaries), applies the schema, runs the control plane and starts brokers as
child processes on consecutive ports with the filesystem object store.
Ctrl-C stops everything cleanly; data survives restarts.`,
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
	return cmd
}

func runDev(ctx context.Context, cfg devConfig, log *slog.Logger) error {
	if cfg.brokers < 1 {
		return fmt.Errorf("--brokers must be at least 1")
	}
	dir, err := filepath.Abs(cfg.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
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
	dbURL := pg.URL("eddy")
	if _, err := migrations.Apply(ctx, dbURL); err != nil {
		return err
	}

	// The operator token survives restarts, so scripts keep working.
	adminToken, err := devAdminToken(filepath.Join(dir, "admin-token"))
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

	// The control plane runs in this process; brokers are children, so one
	// can be killed or restarted like in production.
	cpCtx, stopCP := context.WithCancel(context.WithoutCancel(ctx))
	var cpWG sync.WaitGroup
	cpWG.Add(1)
	go func() {
		defer cpWG.Done()
		cp := controlPlaneConfig{databaseURL: dbURL, metrics: net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port+100)), migrate: false}
		cp.placement.Interval = 500 * time.Millisecond
		cp.api.RegisterFlags(pflag.NewFlagSet("defaults", pflag.ContinueOnError)) // defaults
		cp.api.Listen, cp.api.PublicURL = apiAddr, apiURL
		cp.api.AdminToken, cp.api.KafkaBootstrap = adminToken, net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port))
		if err := runControlPlane(cpCtx, cp, log); err != nil {
			log.Error("control plane failed", "err", err)
		}
	}()
	defer func() { stopCP(); cpWG.Wait() }()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	var procs []*exec.Cmd
	var addrs []string
	for i := 1; i <= cfg.brokers; i++ {
		addr := net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port+i-1))
		addrs = append(addrs, addr)
		logPath := filepath.Join(dir, "logs", fmt.Sprintf("broker-%d.log", i))
		lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		cmd := exec.Command(self, "broker",
			"--id", strconv.Itoa(i),
			"--listen", addr,
			"--database-url", dbURL,
			"--data-dir", filepath.Join(dir, fmt.Sprintf("broker-%d", i)),
			"--objstore", "fs", "--objstore-dir", filepath.Join(dir, "objects"),
			"--metrics-listen", net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port+100+i)),
			// SASL logins (API keys, tokens from the REST API's token
			// endpoint) act in their own cluster; unauthenticated
			// connections only with --anonymous, in vc-dev.
			"--sasl-mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER", "--oauth-issuer", apiURL,
			"--anonymous-cluster="+anonymous,
		)
		cmd.Stdout, cmd.Stderr = lf, lf
		cmd.Env = append(os.Environ(), cfg.brokerEnv...)
		// If eddy dev dies, its brokers get SIGTERM and shut down cleanly.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			lf.Close()
			return fmt.Errorf("start broker %d: %w", i, err)
		}
		lf.Close()
		procs = append(procs, cmd)
		log.Info("broker started", "id", i, "addr", addr, "pid", cmd.Process.Pid, "log", logPath)
	}
	exited := make(chan int, len(procs))
	var procWG sync.WaitGroup
	for i, p := range procs {
		procWG.Add(1)
		go func() {
			defer procWG.Done()
			err := p.Wait()
			if ctx.Err() == nil {
				log.Error("broker exited", "id", i+1, "err", err)
			}
			exited <- i + 1
		}()
	}
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
		done := make(chan struct{})
		go func() { procWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			for _, p := range procs {
				p.Process.Kill()
			}
			<-done
		}
		log.Info("all brokers stopped")
	}()

	if err := waitListening(ctx, addrs, exited); err != nil {
		return err
	}
	printDevBanner(os.Stdout, devBanner{
		brokers: cfg.brokers, db: dbURL, bootstrap: addrs[0], api: apiURL, dir: dir,
		adminToken: filepath.Join(dir, "admin-token"), env: envPath, tenant: tenant,
		metrics: net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port+100)), anonymous: cfg.anonymous,
	})
	fmt.Fprintln(os.Stdout, "ready")

	<-ctx.Done()
	log.Info("stopping")
	return nil
}

// waitListening waits until every address accepts TCP connections.
func waitListening(ctx context.Context, addrs []string, exited <-chan int) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case id := <-exited:
				return fmt.Errorf("broker %d exited during start-up; see its log", id)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("broker at %s did not start listening within a minute", a)
			}
		}
	}
	return nil
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
