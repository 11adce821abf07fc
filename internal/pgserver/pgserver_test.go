package pgserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// dataDir returns a data directory path under a test temp dir that the
// postgres user can reach when the test runs as root (t.TempDir is 0700),
// below parents Start must create.
func dataDir(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	for _, d := range []string{tmp, filepath.Dir(tmp)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(tmp, "missing", "parents", "pg")
}

func startT(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(t.Context(), cfg)
	if errors.Is(err, ErrNoBinaries) {
		t.Fatalf("%v (or run `make deps`)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

func show(t *testing.T, s *Server, setting string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(t.Context(), "SHOW "+setting).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStartStopRestart(t *testing.T) {
	dir := dataDir(t)
	s := startT(t, Config{Dir: dir})
	if s.Port() == 0 {
		t.Fatal("port 0 after start")
	}
	if got := show(t, s, "fsync"); got != "off" {
		t.Errorf("fsync = %q with Fsync false, want off", got)
	}
	if got := show(t, s, "listen_addresses"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q", got)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	// Restart on the same directory: no second initdb (it would refuse a
	// non-empty directory), durable settings this time.
	s = startT(t, Config{Dir: dir, Fsync: true})
	if got := show(t, s, "fsync"); got != "on" {
		t.Errorf("fsync = %q with Fsync true, want on", got)
	}
}

// TestStaleLockFiles starts a directory whose lock files name a process
// that has exited, or a live process that is not postgres (a recycled pid),
// as a killed server leaves them.
func TestStaleLockFiles(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pid  int
	}{
		{"exited", dead.Process.Pid},
		{"recycled", os.Getpid()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := dataDir(t)
			port, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			s := startT(t, Config{Dir: dir, Port: port})
			if err := s.Stop(t.Context()); err != nil {
				t.Fatal(err)
			}
			pid := fmt.Sprintf("%d\n%s\n1700000000\n%d\n", tc.pid, dir, port)
			for _, name := range []string{"postmaster.pid", fmt.Sprintf(".s.PGSQL.%d.lock", port)} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(pid), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s = startT(t, Config{Dir: dir, Port: port})
			show(t, s, "fsync")
		})
	}
}

func TestDirInUse(t *testing.T) {
	dir := dataDir(t)
	startT(t, Config{Dir: dir})
	_, err := Start(t.Context(), Config{Dir: dir})
	if !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start on a live directory: %v, want ErrRunning", err)
	}
}

func TestUnreachableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root switches to the postgres user")
	}
	_, err := Start(t.Context(), Config{Dir: filepath.Join(t.TempDir(), "pg")}) // 0700 parent
	if err == nil || !strings.Contains(err.Error(), "cannot enter") {
		t.Fatalf("Start under a 0700 directory: %v, want a 'cannot enter' error", err)
	}
}

// TestKilledCallerTakesPostgresDown SIGKILLs a process that started a
// server and checks that postgres goes away by itself (Pdeathsig) and that
// the directory starts again afterwards.
func TestKilledCallerTakesPostgresDown(t *testing.T) {
	dir := dataDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServer$")
	cmd.Env = append(os.Environ(), "PGSERVER_HELPER_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var pid int
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "postmaster "); ok {
			pid, _ = strconv.Atoi(v)
			break
		}
	}
	if pid == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("helper did not report a postmaster pid")
	}
	cmd.Process.Kill()
	cmd.Wait()

	deadline := time.Now().Add(15 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("postmaster %d still alive 15s after its parent was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := startT(t, Config{Dir: dir})
	show(t, s, "fsync")
}

// TestHelperServer is the child of TestKilledCallerTakesPostgresDown.
func TestHelperServer(t *testing.T) {
	dir := os.Getenv("PGSERVER_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process")
	}
	if _, err := Start(t.Context(), Config{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	fmt.Printf("postmaster %s\n", first)
	select {} // until killed
}

// TestDeepDir starts a server whose Dir is too deep for a Unix socket path;
// the socket goes to a temporary directory that Stop removes.
func TestDeepDir(t *testing.T) {
	dir := filepath.Join(dataDir(t), strings.Repeat("d", 60), strings.Repeat("e", 60))
	s := startT(t, Config{Dir: dir})
	if !s.tmpSock {
		t.Fatalf("socket directory %s for a %d-byte Dir, want a temporary one", s.sockDir, len(dir))
	}
	show(t, s, "fsync")
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.sockDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket directory %s left behind: %v", s.sockDir, err)
	}
}

// TerminateClients ends other connections; SIGSTOP freezes the server
// (a connection attempt times out) until SIGCONT.
func TestTerminateClientsAndSignal(t *testing.T) {
	s := startT(t, Config{Dir: dataDir(t)})
	conn, err := pgx.Connect(t.Context(), s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	n, err := s.TerminateClients(t.Context())
	if err != nil || n < 1 {
		t.Fatalf("TerminateClients = %d, %v; want at least the test's connection", n, err)
	}
	if err := conn.Ping(t.Context()); err == nil {
		t.Fatal("a terminated connection still answers")
	}

	if err := s.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	_, err = pgx.Connect(ctx, s.URL("postgres"))
	cancel()
	if err == nil {
		t.Error("connected to a stopped server")
	}
	if err := s.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	show(t, s, "fsync") // answers again
}
