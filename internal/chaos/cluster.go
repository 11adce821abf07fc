package chaos

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/pgserver"
	"github.com/eddy-streams/eddy/internal/s3test"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/migrations"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/fsck"
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

	bucket   *s3bucket.Bucket // behind the proxy's back, for the orphan check
	crashDir string           // leader.EnvCrashAfterPut's directory
	dataDirs map[int]string   // the brokers' data directories
	disks    bool             // each data directory is a tmpfs the nemesis may fill
	gates    map[int]*Gate    // each broker's way to Postgres
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

	c.bucket = b

	// Each broker's data directory is a small tmpfs where the nemesis may
	// fill it (root only); the directories outlive the stack, which
	// stops its brokers in a cleanup that runs before this one.
	c.crashDir = filepath.Join(dir, "crash")
	if err := os.Mkdir(c.crashDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.dataDirs = map[int]string{}
	brokers := cmp.Or(cfg.Brokers, 3)
	c.disks = true
	for id := 1; id <= brokers; id++ {
		d := filepath.Join(dir, fmt.Sprintf("broker-%d", id))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		c.dataDirs[id] = d
		if !c.disks {
			continue
		}
		if err := mountDisk(d); err != nil {
			t.Logf("chaos: brokers' disks cannot be filled, disk-full is left out: %v", err)
			c.disks = false
			continue
		}
		t.Cleanup(func() {
			if err := unmountDisk(d); err != nil {
				t.Log(err)
			}
		})
	}
	brokerArgs := []string{"--objstore", "s3", "--s3-endpoint", c.Proxy.URL(), "--s3-region", s3test.Region,
		"--s3-bucket", chaosBucket, "--s3-path-style",
		// Orphans (crash-after-put) are listed and deleted within the run;
		// an object waits 30s for its commit, three times a flush's bound.
		"--gc-orphans-interval", "10s", "--gc-orphan-age", "30s", "--gc-grace", "15s", "--gc-interval", "10s"}
	if c.disks {
		// The read cache must leave room for the WAL on the small disk.
		brokerArgs = append(brokerArgs, "--remote-cache-bytes", strconv.Itoa(diskBytes/4),
			"--remote-cache-scan-bytes", strconv.Itoa(diskBytes/16))
	}

	// Each broker reaches Postgres through its own gate.
	pgURL, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	c.gates = map[int]*Gate{}
	for id := 1; id <= brokers; id++ {
		g, err := StartGate(pgURL.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		c.gates[id] = g
	}

	// The credentials go through the environment (flagenv), not argv.
	env := append([]string{"EDDY_S3_ACCESS_KEY=" + accessKey, "EDDY_S3_SECRET_KEY=" + secretKey,
		leader.EnvCrashAfterPut + "=" + c.crashDir}, cfg.BrokerEnv...)
	c.Stack = stack.Start(t, stack.Options{
		BrokerDatabaseURL: func(id int) string {
			u := *pgURL
			u.Host = c.gates[id].Addr()
			return u.String()
		},
		BrokerDataDir: func(id int) string {
			if d := c.dataDirs[id]; d != "" {
				return d
			}
			return filepath.Join(dir, fmt.Sprintf("broker-%d", id))
		},
		DatabaseURL:   dbURL,
		Brokers:       cfg.Brokers,
		ControlPlanes: cfg.ControlPlanes,
		Metrics:       true,
		BrokerEnv:     env,
		BrokerArgs:    brokerArgs,
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
	case FaultPausePostgres:
		if err := c.signalPostgres(syscall.SIGSTOP); err != nil {
			return func() error { return err }
		}
		return func() error { return c.signalPostgres(syscall.SIGCONT) }
	case FaultDropConnections:
		return c.dropConnections()
	case FaultStopBroker:
		c.Stack.Stop(s.Target)
		return func() error { c.Stack.Restart(s.Target); return nil }
	case FaultCrashAfterPut:
		return c.crashAfterPut(s)
	case FaultPartitionBroker:
		g := c.gates[s.Target]
		g.Cut()
		return func() error { g.Heal(); return nil }
	case FaultDiskFull:
		d := c.dataDirs[s.Target]
		if err := fillDisk(d); err != nil {
			return func() error { return err }
		}
		return func() error { return freeDisk(d) }
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

func (c *Cluster) signalPostgres(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pg == nil {
		return fmt.Errorf("chaos: postgres is not running")
	}
	return c.pg.Signal(sig)
}

// dropConnections ends every client connection to Postgres now and each
// second until healed: pools reconnect into connections that die again.
func (c *Cluster) dropConnections() (heal func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var first error
		for {
			c.mu.Lock()
			pg := c.pg
			c.mu.Unlock()
			if pg != nil {
				tctx, tcancel := context.WithTimeout(ctx, 5*time.Second)
				if _, err := pg.TerminateClients(tctx); err != nil && ctx.Err() == nil && first == nil {
					first = err
				}
				tcancel()
			}
			select {
			case <-ctx.Done():
				done <- first
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return func() error { cancel(); return <-done }
}

// crashAfterPut arms s.Target's crash between a PUT and its commit,
// waits (at most s.For) for the broker to die of it, and restarts it when
// healed. A broker that PUT nothing meanwhile is left running.
func (c *Cluster) crashAfterPut(s Step) (heal func() error) {
	trigger := filepath.Join(c.crashDir, fmt.Sprintf("broker-%d", s.Target))
	if err := os.WriteFile(trigger, nil, 0o644); err != nil {
		return func() error { return err }
	}
	return func() error {
		err := os.Remove(trigger)
		if c.Stack.Exited(s.Target) {
			c.Stack.Restart(s.Target)
		}
		return err
	}
}

// CrashOrphans returns the keys of the objects brokers PUT and never
// committed because crash-after-put killed them.
func (c *Cluster) CrashOrphans() []string {
	var keys []string
	files, _ := filepath.Glob(filepath.Join(c.crashDir, "broker-*.keys"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		keys = append(keys, strings.Fields(string(b))...)
	}
	return keys
}

// CheckObjects runs fsck over the index and the bucket: every object an
// index row references must be there, whole and registered.
func (c *Cluster) CheckObjects(ctx context.Context) (*fsck.Report, error) {
	c.mu.Lock()
	pg := c.pg
	c.mu.Unlock()
	if pg == nil {
		return nil, fmt.Errorf("chaos: postgres is not running")
	}
	st, err := store.Open(ctx, pg.URL("postgres"), 2)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return fsck.Check(ctx, st, c.bucket, time.Hour)
}

// ObjectExists reports whether key is in the bucket.
func (c *Cluster) ObjectExists(ctx context.Context, key string) (bool, error) {
	found := false
	err := c.bucket.List(ctx, key, func(o bucket.Object) error {
		if o.Key == key {
			found = true
		}
		return nil
	})
	return found, err
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
