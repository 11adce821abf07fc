package chaos

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgserver"
	"github.com/eddy-streams/eddy/internal/s3test"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/migrations"
	"github.com/eddy-streams/eddy/tiered/s3bucket"
)

// ClusterConfig shapes the cluster under test.
type ClusterConfig struct {
	Brokers       int      // default 3 (internal/stack's)
	ControlPlanes int      // default 1 (internal/stack's)
	BrokerEnv     []string // added to every broker's environment
	Seed          uint64   // seeds the proxy's choice of the requests a fault hits
}

// Cluster is a multi-process Eddy deployment on loopback that the nemesis
// may hurt: a private Postgres (not the shared internal/pgtest server, so
// restarting it hurts no other test), an S3 server (moto) behind a fault
// Proxy, the control planes and the brokers of an internal/stack.
type Cluster struct {
	t     testing.TB
	Stack *stack.Stack
	Proxy *Proxy

	pgCfg pgserver.Config
	mu    sync.Mutex
	pg    *pgserver.Server // nil while stopped
}

// chaosBucket is the bucket the brokers write to.
const chaosBucket = "eddy-chaos"

// StartCluster starts a cluster; it stops when t ends.
func StartCluster(t testing.TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := &Cluster{t: t}

	// Postgres may run as user postgres (tests run as root): let it
	// through the private temporary directory to its data directory.
	dir, err := os.MkdirTemp("", "eddy-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	c.pgCfg = pgserver.Config{Dir: filepath.Join(dir, "data")}
	pg, err := pgserver.Start(ctx, c.pgCfg)
	if err != nil {
		t.Fatal(err)
	}
	c.pg, c.pgCfg.Port = pg, pg.Port()
	t.Cleanup(c.stopPostgres) // after the stack's own cleanup, which runs first
	dbURL := pg.URL("postgres")
	if _, err := migrations.Apply(ctx, dbURL); err != nil {
		t.Fatal(err)
	}

	endpoint, accessKey, secretKey := s3test.Start(t)
	s3cfg := s3bucket.Config{Endpoint: endpoint, Region: s3test.Region, Bucket: chaosBucket,
		AccessKey: accessKey, SecretKey: secretKey, PathStyle: true}
	b, err := s3bucket.New(ctx, s3cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateBucketIfMissing(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Proxy, err = StartProxy(endpoint, cfg.Seed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Proxy.Close() })

	// The credentials go through the environment (flagenv), not argv.
	env := append([]string{"EDDY_S3_ACCESS_KEY=" + accessKey, "EDDY_S3_SECRET_KEY=" + secretKey}, cfg.BrokerEnv...)
	c.Stack = stack.Start(t, stack.Options{
		DatabaseURL:   dbURL,
		Brokers:       cfg.Brokers,
		ControlPlanes: cfg.ControlPlanes,
		Metrics:       true,
		BrokerEnv:     env,
		BrokerArgs: []string{"--objstore", "s3", "--s3-endpoint", c.Proxy.URL(), "--s3-region", s3test.Region,
			"--s3-bucket", chaosBucket, "--s3-path-style"},
	})
	return c
}

func (c *Cluster) stopPostgres() {
	if err := c.StopPostgres(); err != nil {
		c.t.Log(err)
	}
}

// StopPostgres shuts Postgres down (fast: open transactions roll back,
// clients are disconnected).
func (c *Cluster) StopPostgres() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pg == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.pg.Stop(ctx); err != nil {
		// c.pg stays: the heal reports the failure, which fails the run,
		// rather than StartPostgres later taking a Postgres in an unknown
		// state for a stopped one.
		return fmt.Errorf("chaos: stop postgres: %w", err)
	}
	c.pg = nil
	return nil
}

// StartPostgres starts a stopped Postgres again on the same port and data.
func (c *Cluster) StartPostgres() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pg != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := pgserver.Start(ctx, c.pgCfg)
	if err != nil {
		return fmt.Errorf("chaos: restart postgres: %w", err)
	}
	c.pg = pg
	return nil
}

// inject starts s's fault and returns what heals it. Process faults may
// fail the test (a broker that cannot restart), so call it from the
// test's goroutine unless s is an object-store fault.
func (c *Cluster) inject(s Step) (heal func() error) {
	switch s.Kind {
	case FaultKillBroker:
		c.Stack.Kill(s.Target)
		return func() error { c.Stack.Restart(s.Target); return nil }
	case FaultPauseBroker:
		c.Stack.Pause(s.Target)
		return func() error { c.Stack.Resume(s.Target); return nil }
	case FaultKillControlPlane:
		c.Stack.KillControlPlane(s.Target)
		return func() error {
			c.Stack.RestartControlPlane(s.Target)
			return waitReady(c.Stack.ControlPlane(s.Target), 2*time.Minute)
		}
	case FaultRestartPostgres:
		if err := c.StopPostgres(); err != nil {
			return func() error { return err }
		}
		return c.StartPostgres
	case FaultS3Down:
		for _, op := range Ops {
			c.Proxy.Set(op, Fault{Down: true})
		}
		return func() error { c.Proxy.Clear(); return nil }
	default:
		c.Proxy.Set(s.Op, s.Fault)
		return func() error { c.Proxy.Set(s.Op, Fault{}); return nil }
	}
}

// waitReady waits until a restarted control plane's /readyz answers 200:
// RestartControlPlane only starts the process, and a control plane that
// never serves is a heal that failed.
func waitReady(cp *stack.ControlPlane, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	url := "http://" + cp.Metrics + "/readyz"
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: control plane not ready within %v: %w", within, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
