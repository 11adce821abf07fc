// Package pgserver starts and stops a private PostgreSQL server from the
// binaries installed on the machine: Debian's /usr/lib/postgresql/N/bin
// (highest N wins) or, failing that, the directory `pg_config --bindir`
// names. `eddy dev` keeps its cluster under .data/; internal/pgtest starts a
// throwaway one per test binary.
//
// Start runs initdb when the data directory has no PG_VERSION yet, then runs
// postgres itself as a child process rather than through pg_ctl, so that the
// caller owns its lifetime: Stop shuts it down, and if the caller dies
// without stopping it (SIGKILL, a test timeout) the kernel sends postgres
// SIGQUIT, an immediate shutdown. The server listens on 127.0.0.1 only and
// trusts every local connection; the superuser is "postgres".
//
// PostgreSQL refuses to run as root. When the caller is root, initdb and
// postgres run as the system user "postgres" and Dir is chowned to it; every
// directory above Dir must be enterable by that user.
//
// A Server's methods are safe for concurrent use.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/eddy-streams/eddy/internal/freeport"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	// ErrNoBinaries is returned by Start when no PostgreSQL server binaries
	// (initdb and postgres) can be found.
	ErrNoBinaries = errors.New("pgserver: PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin or `pg_config --bindir`; install them with `apt-get install postgresql`")

	// ErrRunning is returned by Start when a live postgres already holds the
	// data directory.
	ErrRunning = errors.New("pgserver: data directory is in use by a running postgres")
)

const (
	// startTimeout bounds Start when ctx has no earlier deadline. Crash
	// recovery after a killed `eddy dev` replays WAL before the server
	// accepts connections, so this is generous.
	startTimeout = 2 * time.Minute

	// logName is the server's stdout/stderr, kept inside the data directory
	// so that it lives and dies with the cluster.
	logName = "server.log"
)

// Config describes one private server.
type Config struct {
	// Dir is the data directory (PGDATA). It is created if missing and
	// initialised with initdb if it has no PG_VERSION file. Required.
	Dir string

	// Port is the TCP port on 127.0.0.1. 0 picks a free port.
	Port int

	// Fsync keeps PostgreSQL's durability settings. With Fsync false, initdb
	// skips syncing and the server runs with fsync, synchronous_commit and
	// full_page_writes off: much faster, but an OS crash or power loss can
	// corrupt the cluster. Use false only for throwaway data.
	Fsync bool

	// Log receives progress messages; nil discards them. The server's own
	// output goes to Dir/server.log.
	Log *slog.Logger
}

// Validate reports whether c can be used to Start a server.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("pgserver: Config.Dir is required")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("pgserver: Config.Port %d out of range", c.Port)
	}
	return nil
}

// Server is a running postgres child process.
type Server struct {
	port    int
	sockDir string // Unix socket directory: Dir, or a temporary one
	tmpSock bool   // sockDir is temporary: remove it after the server
	cmd     *exec.Cmd
	log     *slog.Logger

	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // the process's exit status; read after exited

	stopOnce sync.Once
	stopErr  error
}

// Start initialises cfg.Dir if needed, starts postgres and waits until it
// accepts connections. If postgres exits during startup, the error carries
// the tail of its log.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	owner, err := serverUser()
	if err != nil {
		return nil, err
	}
	// Parents are created enterable by all (0755 under the usual umask), so
	// that postgres can reach Dir when it runs as another user; Dir itself
	// is private, as postgres demands.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if owner != nil {
		if err := owner.checkReachable(dir); err != nil {
			return nil, err
		}
		if err := owner.chownTree(dir); err != nil {
			return nil, err
		}
	}

	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, fs.ErrNotExist) {
		log.Info("pgserver: initdb", "dir", dir, "bin", bin)
		if err := initdb(ctx, bin, dir, cfg.Fsync, owner); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if err := removeStalePid(dir); err != nil {
		return nil, err
	}

	// A picked port can be taken by someone else before postgres binds it;
	// pick again a few times rather than fail.
	attempts := 1
	if cfg.Port == 0 {
		attempts = 3
	}
	for i := 1; ; i++ {
		port := cfg.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		s, err := start(ctx, bin, dir, port, cfg.Fsync, owner, log)
		if err == nil {
			log.Info("pgserver: started", "url", s.URL("postgres"), "dir", dir, "log", filepath.Join(dir, logName))
			return s, nil
		}
		if i == attempts || !errors.Is(err, errAddrInUse) {
			return nil, err
		}
		log.Warn("pgserver: port taken, retrying", "port", port)
	}
}

// errAddrInUse marks a startup that failed because the port was taken.
var errAddrInUse = errors.New("address in use")

func start(ctx context.Context, bin, dir string, port int, fsync bool, owner *osUser, log *slog.Logger) (*Server, error) {
	s := &Server{port: port, sockDir: dir, log: log, exited: make(chan struct{})}
	// The Unix socket lives in Dir, next to postmaster.pid, so a killed
	// server leaves nothing behind elsewhere. Socket paths are limited to
	// about 100 bytes, so a deep Dir gets a short temporary directory.
	if len(dir)+len("/.s.PGSQL.65535.lock") > 100 {
		tmp, err := os.MkdirTemp("", "eddy-pg-")
		if err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
		s.sockDir, s.tmpSock = tmp, true
	}
	ok := false
	defer func() {
		if !ok {
			s.removeSockDir()
		}
	}()
	logPath := filepath.Join(dir, logName)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if owner != nil {
		if err := errors.Join(owner.chown(s.sockDir), owner.chown(logPath)); err != nil {
			logFile.Close()
			return nil, err
		}
	}

	args := []string{"-D", dir, "-p", strconv.Itoa(port), "-k", s.sockDir, "-c", "listen_addresses=127.0.0.1"}
	if !fsync {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = dir
	cmd.Stdout = logFile // *os.File: no copying goroutines
	cmd.Stderr = logFile
	cmd.SysProcAttr = serverProcAttr(owner)
	s.cmd = cmd

	started := make(chan error, 1)
	go func() {
		// The kernel sends Pdeathsig when the thread that forked the child
		// exits, not the process; pin this goroutine to its thread until
		// the child has been reaped so Go never retires that thread early.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		logFile.Close()
		started <- err
		if err != nil {
			return
		}
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("pgserver: start postgres: %w", err)
	}
	if err := s.waitReady(ctx, logPath); err != nil {
		s.kill()
		return nil, err
	}
	ok = true
	return s, nil
}

// removeSockDir removes the socket directory if it is a temporary one.
func (s *Server) removeSockDir() {
	if s.tmpSock {
		os.RemoveAll(s.sockDir)
	}
}

// waitReady pings until the server answers, it exits, or ctx is done.
func (s *Server) waitReady(ctx context.Context, logPath string) error {
	cfg, err := pgx.ParseConfig(s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	cfg.ConnectTimeout = time.Second
	var lastErr error
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(context.WithoutCancel(ctx))
			if err == nil {
				return nil
			}
		}
		lastErr = err
		select {
		case <-s.exited:
			tail := logTail(logPath)
			err := fmt.Errorf("pgserver: postgres exited during startup (%v); %s:\n%s", s.waitErr, logPath, tail)
			if strings.Contains(tail, "Address already in use") {
				err = fmt.Errorf("%w (%w)", err, errAddrInUse)
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("pgserver: postgres not accepting connections (last error: %v): %w; %s:\n%s",
				lastErr, ctx.Err(), logPath, logTail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL returns a connection URL for database db as the superuser.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// Done is closed when the postgres process has exited, whether through Stop
// or not.
func (s *Server) Done() <-chan struct{} { return s.exited }

// Signal sends sig to postgres and every backend it forked (they share
// its process group). Fault-injection tests pause the whole server with
// SIGSTOP and continue it with SIGCONT, as a frozen VM would.
func (s *Server) Signal(sig syscall.Signal) error {
	select {
	case <-s.exited:
		return errors.New("pgserver: postgres has exited")
	default:
	}
	return syscall.Kill(-s.cmd.Process.Pid, sig)
}

// TerminateClients ends every client connection but its own
// (pg_terminate_backend), as a failover or a network blip would, and
// returns how many it ended. Fault-injection tests use it.
func (s *Server) TerminateClients(ctx context.Context) (int, error) {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return 0, fmt.Errorf("pgserver: terminate clients: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pgserver: terminate clients: %w", err)
	}
	return n, nil
}

// Stop shuts the server down like `pg_ctl stop -m fast`: it rolls back open
// transactions, disconnects clients, writes a checkpoint and exits. If ctx
// ends first, Stop forces an immediate shutdown (crash recovery runs at the
// next Start), waits for the process and returns ctx.Err(). Stop also
// reports a server that had already exited on its own. Calling Stop again
// returns the first call's result.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopErr = s.stop(ctx)
		s.removeSockDir()
	})
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	select {
	case <-s.exited:
		return fmt.Errorf("pgserver: postgres had already exited: %v", s.waitErr)
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgserver: %w", err)
	}
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("pgserver: postgres shutdown: %w", s.waitErr)
		}
		s.log.Info("pgserver: stopped", "port", s.port)
		return nil
	case <-ctx.Done():
		s.log.Warn("pgserver: fast shutdown too slow, forcing immediate shutdown", "port", s.port)
		s.kill()
		return fmt.Errorf("pgserver: fast shutdown: %w", ctx.Err())
	}
}

// kill forces an immediate shutdown and waits for the process.
func (s *Server) kill() {
	s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

func initdb(ctx context.Context, bin, dir string, fsync bool, owner *osUser) error {
	args := []string{"-D", dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"}
	if !fsync {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
	cmd.Dir = dir
	cmd.SysProcAttr = initdbProcAttr(owner)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgserver: initdb %s: %w:\n%s", dir, err, lastLines(out.String(), 20))
	}
	return nil
}

// findBinaries returns the directory holding initdb and postgres.
func findBinaries() (string, error) {
	var candidates []string
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Highest major version first; names are numbers ("15", "9.6").
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
		vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	candidates = append(candidates, dirs...)
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	for _, d := range candidates {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// removeStalePid removes a postmaster.pid left by a server that was killed.
// A live postgres with that pid means the directory is in use; a live
// process that is not postgres is a recycled pid.
func removeStalePid(dir string) error {
	path := filepath.Join(dir, "postmaster.pid")
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pgserver: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 0 && processAlive(pid) && isPostgres(pid) {
		return fmt.Errorf("%w: pid %d holds %s", ErrRunning, pid, dir)
	}
	// No server holds the directory, so any socket and socket lock file in
	// it are stale too; postgres would refuse a lock file whose pid has
	// been recycled.
	socks, _ := filepath.Glob(filepath.Join(dir, ".s.PGSQL.*"))
	for _, p := range append(socks, path) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pgserver: remove stale %s: %w", p, err)
		}
	}
	return nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func freePort() (int, error) {
	p, err := freeport.One()
	if err != nil {
		return 0, fmt.Errorf("pgserver: pick a port: %w", err)
	}
	return p, nil
}

// logTail returns the last lines of the server log.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const max = 8 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return lastLines(string(b), 20)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// osUser is the account postgres runs as when the caller is root.
type osUser struct {
	uid, gid uint32
	groups   []uint32 // including gid
}

// serverUser returns the "postgres" account when running as root (nil
// otherwise: the server runs as the caller).
func serverUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root and PostgreSQL refuses root; need the system user postgres (apt-get install postgresql creates it): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgserver: user postgres: %w", err)
	}
	o := &osUser{uid: uint32(uid), gid: uint32(gid), groups: []uint32{uint32(gid)}}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				o.groups = append(o.groups, uint32(g))
			}
		}
	}
	return o, nil
}

func (o *osUser) chown(path string) error {
	if err := os.Lchown(path, int(o.uid), int(o.gid)); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// chownTree gives dir and everything under it to o, touching only entries
// it does not own yet.
func (o *osUser) chownTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == o.uid && st.Gid == o.gid {
			return nil
		}
		return o.chown(path)
	})
}

// checkReachable fails early, with advice, when o cannot enter a directory
// above dir (a 0700 home or temp directory, typically); otherwise initdb
// would fail with a bare "permission denied".
func (o *osUser) checkReachable(dir string) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		if ok && perm&0o001 == 0 &&
			!(st.Uid == o.uid && perm&0o100 != 0) &&
			!(slices.Contains(o.groups, st.Gid) && perm&0o010 != 0) {
			return fmt.Errorf("pgserver: postgres runs as user postgres, which cannot enter %s (mode %v); put Dir elsewhere or `chmod o+x %s`", p, perm, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
