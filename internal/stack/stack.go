// Package stack starts a real Eddy deployment for end-to-end tests: the
// eddy binary (built once per test process) run as one or more
// control-plane processes and N broker processes against a test database,
// on free loopback ports, with the filesystem object store in a temporary
// directory. Brokers can be killed with SIGKILL, stopped cleanly (SIGTERM,
// as Kubernetes does) and restarted, and control planes killed, as in
// production.
//
// Process output goes to log files; the tail of each is printed when the
// test fails.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/freeport"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/seal"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

const binDirPrefix = "eddy-bin-"

// sweepStaleBinaries removes the binaries built by test processes that have
// exited: each is some 50 MB, and every test binary that starts a stack
// builds one.
func sweepStaleBinaries() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner"))
		if err != nil {
			continue // being set up, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // still running
		}
		os.RemoveAll(d)
	}
}

// Binary builds cmd/eddy once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		sweepStaleBinaries()
		dir, err := os.MkdirTemp("", binDirPrefix)
		if err != nil {
			buildErr = err
			return
		}
		// The binary outlives the test process (there is no hook to remove
		// it); the owner file lets a later build sweep it.
		if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "eddy")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/eddy")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/eddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Options configure a stack.
type Options struct {
	DatabaseURL string   // required: a migrated test database (pgtest.URL)
	Brokers     int      // default 3
	BrokerArgs  []string // extra flags for every broker; "{api}" becomes APIURL()
	Metrics     bool     // serve each broker's /metrics on a free port (MetricsURLs)
	// ClientOpts are added to the client the stack uses to see that every
	// broker registered (credentials, when anonymous access is off).
	ClientOpts []kgo.Opt
	// API serves the control plane's REST API on a free port (APIURL),
	// with OperatorToken as the operator bootstrap token.
	API bool
	// ControlPlaneArgs are extra flags for the control plane.
	ControlPlaneArgs []string
	// ControlPlanes is how many control-plane replicas share the database
	// (default 1); each serves its own REST API (with API) and /metrics.
	ControlPlanes int
	// BrokerEnv is added to every broker's environment ("NAME=value").
	BrokerEnv []string
	// BrokerArgsFor, when set, gives extra flags for broker id alone
	// (after BrokerArgs): a --rack per broker for zone-aware tests.
	BrokerArgsFor func(id int) []string
	// BrokerDataDir, when set, names broker id's --data-dir (the caller
	// owns it: fault-injection tests mount a small filesystem there);
	// by default it is a directory in the stack's own.
	BrokerDataDir func(id int) string
	// BrokerDatabaseURL, when set, is broker id's --database-url instead
	// of DatabaseURL (fault-injection tests put a proxy in the way).
	BrokerDatabaseURL func(id int) string
}

// OperatorToken is the control plane's --admin-token when Options.API is set.
const OperatorToken = "stack-operator-token-0123456789abcdef"

// Stack is a running deployment.
type Stack struct {
	t       testing.TB
	bin     string
	dir     string
	opts    Options
	cps     []*ControlPlane
	apiURL  string // the first control plane's
	mu      sync.Mutex
	brokers map[int]*Broker
}

// Broker is one broker process.
type Broker struct {
	ID      int
	Addr    string
	DataDir string
	Metrics string // host:port of /metrics with Options.Metrics, else ""
	proc    *proc
}

// ControlPlane is one control-plane process.
type ControlPlane struct {
	// API is the REST API's base URL with Options.API, else "".
	API string
	// Metrics is host:port of its /metrics, /livez and /readyz.
	Metrics string
	name    string
	args    []string
	proc    *proc
}

type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Start runs the control plane and the brokers and waits until every
// broker accepts connections.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	if opts.Brokers == 0 {
		opts.Brokers = 3
	}
	if opts.ControlPlanes == 0 {
		opts.ControlPlanes = 1
	}
	s := &Stack{t: t, bin: Binary(t), dir: t.TempDir(), opts: opts, brokers: map[int]*Broker{}}
	t.Cleanup(s.shutdown)
	// A key-encryption key, as eddy dev makes one.
	kek := filepath.Join(s.dir, "secrets.key")
	if err := seal.EnsureKeyFile(kek); err != nil {
		t.Fatal(err)
	}
	for i := range opts.ControlPlanes {
		cp := &ControlPlane{Metrics: "127.0.0.1:" + strconv.Itoa(freePort(t))}
		cpArgs := []string{"control-plane", "--database-url", opts.DatabaseURL, "--placement-interval", "200ms",
			"--secrets-key-file", kek, "--metrics-listen", cp.Metrics}
		if opts.API {
			addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
			cp.API = "http://" + addr
			cpArgs = append(cpArgs, "--api-listen", addr, "--admin-token", OperatorToken)
		}
		cpArgs = append(cpArgs, opts.ControlPlaneArgs...)
		// The first keeps the log name tests and tools know.
		name := "control-plane"
		if i > 0 {
			name = fmt.Sprintf("control-plane-%d", i)
		}
		cp.name, cp.args = name, cpArgs
		cp.proc = s.spawn(name, nil, cpArgs...)
		s.cps = append(s.cps, cp)
	}
	s.apiURL = s.cps[0].API
	for id := 1; id <= opts.Brokers; id++ {
		b := &Broker{ID: id, Addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), DataDir: filepath.Join(s.dir, fmt.Sprintf("broker-%d", id))}
		if opts.BrokerDataDir != nil {
			b.DataDir = opts.BrokerDataDir(id)
		}
		if opts.Metrics {
			b.Metrics = "127.0.0.1:" + strconv.Itoa(freePort(t))
		}
		s.brokers[id] = b
		s.startBroker(b)
	}
	for _, b := range s.brokers {
		s.waitListening(b)
	}
	s.waitRegistered(opts.Brokers)
	if opts.API {
		for _, cp := range s.cps {
			s.waitAPI(cp)
		}
	}
	return s
}

// ControlPlane returns control plane i (0-based, in start order).
func (s *Stack) ControlPlane(i int) *ControlPlane { return s.cps[i] }

// KillControlPlane sends SIGKILL to control plane i and waits for it to die.
func (s *Stack) KillControlPlane(i int) {
	p := s.controlPlaneProc(i)
	p.cmd.Process.Kill()
	<-p.done
}

// RestartControlPlane starts a killed control plane i again with the same
// flags (ports included); it does not wait for it to serve.
func (s *Stack) RestartControlPlane(i int) {
	s.t.Helper()
	cp := s.cps[i]
	p := s.spawn(cp.name, nil, cp.args...)
	s.mu.Lock() // shutdown reads it under the lock
	cp.proc = p
	s.mu.Unlock()
}

func (s *Stack) controlPlaneProc(i int) *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cps[i].proc
}

// Leader reports whether the control plane holds the lease that runs the
// singleton loops (its eddy_controlplane_leader gauge).
func (cp *ControlPlane) Leader(ctx context.Context) (bool, error) {
	v, err := gauge(ctx, "http://"+cp.Metrics+"/metrics", "eddy_controlplane_leader")
	return v == 1, err
}

// APIURL is the REST API's base URL (Options.API), e.g. http://127.0.0.1:4000.
func (s *Stack) APIURL() string { return s.apiURL }

func (s *Stack) waitAPI(cp *ControlPlane) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(cp.API + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-cp.proc.done:
			s.t.Fatalf("control plane exited during start-up: %v\n%s", cp.proc.err, tail(cp.proc.log))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("REST API not ready after a minute (last error: %v)\n%s", err, tail(cp.proc.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRegistered waits until every broker's Metadata lists n brokers: a
// broker listens a moment before its session is registered, and each
// broker learns of the others from its own view of Postgres, so one
// broker listing them all says nothing of the others (clients such as
// kafkajs trip over brokers whose answers disagree).
func (s *Stack) waitRegistered(n int) {
	s.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Bootstrap()...)}, s.opts.ClientOpts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ids []int32
	for id := range s.brokers {
		ids = append(ids, int32(id))
	}
	lastErr := error(nil)
	seen := map[int32]int{}
	for {
		done := 0
		for _, id := range ids {
			if seen[id] >= n {
				done++
				continue
			}
			// cl.Broker routes by node id once the client has seen it
			// in any Metadata answer; until then the request fails.
			resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl.Broker(int(id)))
			if err != nil {
				lastErr = err
				if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
					lastErr = err
				}
				continue
			}
			seen[id] = len(resp.Brokers)
		}
		if done == len(ids) {
			return
		}
		if ctx.Err() != nil {
			s.t.Fatalf("not every broker lists all %d brokers after a minute (brokers listed by each: %v; last error: %v)", n, seen, lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Dir is the stack's temporary directory (objects live in Dir/objects).
func (s *Stack) Dir() string { return s.dir }

// Bootstrap returns every broker's address.
func (s *Stack) Bootstrap() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := 1; id <= len(s.brokers); id++ {
		out = append(out, s.brokers[id].Addr)
	}
	return out
}

// MetricsURLs returns every broker's /metrics URL (Options.Metrics).
func (s *Stack) MetricsURLs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := 1; id <= len(s.brokers); id++ {
		if m := s.brokers[id].Metrics; m != "" {
			out = append(out, "http://"+m+"/metrics")
		}
	}
	return out
}

// Broker returns broker id.
func (s *Stack) Broker(id int) *Broker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.brokers[id]
}

func (s *Stack) startBroker(b *Broker) {
	dbURL := s.opts.DatabaseURL
	if s.opts.BrokerDatabaseURL != nil {
		dbURL = s.opts.BrokerDatabaseURL(b.ID)
	}
	args := []string{"broker", "--id", strconv.Itoa(b.ID), "--listen", b.Addr,
		"--database-url", dbURL, "--data-dir", b.DataDir,
		"--objstore", "fs", "--objstore-dir", filepath.Join(s.dir, "objects"),
		// Tests talk to vc-dev without credentials unless BrokerArgs turn
		// it off with --anonymous-cluster=.
		"--anonymous-cluster=vc-dev"}
	if b.Metrics != "" {
		args = append(args, "--metrics-listen", b.Metrics)
	}
	for _, a := range s.opts.BrokerArgs {
		args = append(args, strings.ReplaceAll(a, "{api}", s.apiURL))
	}
	if s.opts.BrokerArgsFor != nil {
		args = append(args, s.opts.BrokerArgsFor(b.ID)...)
	}
	p := s.spawn(fmt.Sprintf("broker-%d", b.ID), s.opts.BrokerEnv, args...)
	s.mu.Lock() // shutdown reads it under the lock
	b.proc = p
	s.mu.Unlock()
}

// Kill sends SIGKILL to broker id and waits for it to die.
func (s *Stack) Kill(id int) {
	b := s.Broker(id)
	b.proc.cmd.Process.Kill()
	<-b.proc.done
}

// Pause stops broker id with SIGSTOP, as a long GC pause or a frozen VM
// would: it keeps its sockets and state but neither runs nor answers
// until Resume. Kill and Stop work on a paused broker.
func (s *Stack) Pause(id int) {
	s.Broker(id).proc.cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume continues broker id after Pause (SIGCONT).
func (s *Stack) Resume(id int) {
	s.Broker(id).proc.cmd.Process.Signal(syscall.SIGCONT)
}

// stopWait bounds Stop; a variable so the test of a paused broker need
// not wait a minute to fail.
var stopWait = 60 * time.Second

// Stop stops broker id cleanly (SIGTERM) and waits. It works on a paused
// broker too: terminate continues it.
func (s *Stack) Stop(id int) {
	s.t.Helper()
	b := s.Broker(id)
	b.proc.terminate()
	select {
	case <-b.proc.done:
	case <-time.After(stopWait):
		s.t.Fatalf("broker %d did not stop within %v", id, stopWait)
	}
}

// terminate asks p to stop cleanly. A process stopped by Pause (SIGSTOP)
// would keep SIGTERM pending for as long as it stays stopped, since the
// broker handles SIGTERM rather than dying of it; SIGCONT after SIGTERM
// lets it handle the signal at once.
func (p *proc) terminate() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Process.Signal(syscall.SIGCONT)
}

// Exited reports whether broker id's process has ended (killed, stopped
// or crashed) since it last started.
func (s *Stack) Exited(id int) bool {
	select {
	case <-s.Broker(id).proc.done:
		return true
	default:
		return false
	}
}

// Exit returns how broker id's last process ended: nil for a clean exit
// (status 0). It is only meaningful after Stop or Kill.
func (s *Stack) Exit(id int) error { return s.Broker(id).proc.err }

// Log returns what broker id has logged so far, over all its restarts.
func (s *Stack) Log(id int) string {
	s.t.Helper()
	b, err := os.ReadFile(s.Broker(id).proc.log)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// WaitReady waits until broker id's /readyz answers 200 (Options.Metrics).
func (s *Stack) WaitReady(id int, within time.Duration) {
	s.t.Helper()
	b := s.Broker(id)
	if b.Metrics == "" {
		s.t.Fatal("stack: WaitReady needs Options.Metrics")
	}
	poll.Until(s.t, within, fmt.Sprintf("broker %d's /readyz", id), func() error {
		select {
		case <-b.proc.done:
			return fmt.Errorf("broker %d exited: %v", id, b.proc.err)
		default:
		}
		resp, err := http.Get("http://" + b.Metrics + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	})
}

// Restart starts a stopped or killed broker again with the same id,
// address and data directory, and waits until it listens.
func (s *Stack) Restart(id int) {
	s.t.Helper()
	b := s.Broker(id)
	s.startBroker(b)
	s.waitListening(b)
}

func (s *Stack) spawn(name string, env []string, args ...string) *proc {
	s.t.Helper()
	logPath := filepath.Join(s.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(append(os.Environ(), "EDDY_LOG_LEVEL=info"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p
}

func (s *Stack) waitListening(b *Broker) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-b.proc.done:
			s.t.Fatalf("broker %d exited during start-up: %v\n%s", b.ID, b.proc.err, tail(b.proc.log))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("broker %d not listening after a minute\n%s", b.ID, tail(b.proc.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitFor polls check until it returns true (true) or ctx ends (false).
// Tests that can say what they saw meanwhile use poll.Until instead.
func WaitFor(ctx context.Context, check func() bool) bool {
	return poll.Wait(ctx, poll.True(check)) == nil
}

func (s *Stack) shutdown() {
	var all []*proc
	s.mu.Lock()
	for _, b := range s.brokers {
		all = append(all, b.proc)
	}
	s.mu.Unlock()
	for _, p := range all {
		p.terminate()
	}
	for _, p := range all {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	var cps []*proc
	s.mu.Lock()
	for _, cp := range s.cps {
		cps = append(cps, cp.proc)
	}
	s.mu.Unlock()
	for _, p := range cps {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range cps {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	if s.t.Failed() {
		for i, p := range cps {
			s.t.Logf("control plane %d log:\n%s", i, tail(p.log))
		}
		for id := 1; id <= len(s.brokers); id++ {
			s.t.Logf("broker %d log:\n%s", id, tail(s.brokers[id].proc.log))
		}
	}
}

// gauge reads the value of an unlabelled gauge from a /metrics page.
func gauge(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", url, name)
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.One()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
