// Package pgtest gives each test its own migrated PostgreSQL database.
//
// A package with Postgres tests hands its TestMain to Main:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and each test asks for a database:
//
//	conn, err := pgx.Connect(ctx, pgtest.URL(t))
//
// With DATABASE_URL set, the databases are created on that server (its role
// needs CREATEDB). Otherwise the first call to URL starts one private server
// for the whole test binary (internal/pgserver, fsync off, data in a
// temporary directory), which Main stops and removes after the tests.
//
// Either way the migrated schema is built once, in the template database
// eddy_template, and URL clones it with CREATE DATABASE ... TEMPLATE, which
// takes tens of milliseconds where migrating would take much longer. Each
// database is dropped, WITH (FORCE), when its test ends.
//
// URL is safe to call from parallel tests. Several test binaries may share
// one DATABASE_URL server (go test -p N): template builds are serialised
// across processes with an advisory lock, database names carry a random
// per-process tag, and a clone that finds the template busy retries.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eddy-streams/eddy/internal/pgserver"
	"github.com/eddy-streams/eddy/migrations"
)

// Template is the database every test database is cloned from.
const Template = "eddy_template"

// templateLock is the advisory lock key that serialises template builds
// across test binaries sharing a server ("eddytmpl").
const templateLock int64 = 0x65646479746d706c

// dirPrefix names the private servers' temporary directories.
const dirPrefix = "eddy-pgtest-"

// h is the test binary's harness. Main owns its lifetime; URL fills it in
// on first use.
var h harness

type harness struct {
	mu       sync.Mutex
	mainRan  bool
	ready    bool
	err      error // why no database can be had; sticky
	adminURL string
	server   *pgserver.Server // nil with DATABASE_URL
	tmpDir   string

	tag string       // random per-process part of database names
	seq atomic.Int64 // numbers the databases
}

// Main runs the tests and then stops the private server, if one was
// started. It does not return.
func Main(m *testing.M) {
	h.mu.Lock()
	h.mainRan = true
	h.mu.Unlock()
	code := m.Run()
	if err := h.close(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
	}
	os.Exit(code)
}

// URL creates a fresh database, a clone of the migrated template, drops it
// when t ends and returns its connection string. It calls t.Fatal if no
// Postgres can be had.
func URL(t testing.TB) string {
	t.Helper()
	admin, err := h.setup()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := fmt.Sprintf("eddy_t_%s_%d", h.tag, h.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := createDatabase(ctx, admin, name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := execOne(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// LockWatch returns a function that reports whether a statement naming
// table waits for a lock in the database of url (pg_stat_activity): how a
// test sees that a statement has queued behind a lock the test holds. The
// function is for one goroutine at a time; its connection is closed when
// t ends.
func LockWatch(t testing.TB, url, table string) func(ctx context.Context) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return func(ctx context.Context) bool {
		var n int
		err := conn.QueryRow(ctx, `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`, table).Scan(&n)
		return err == nil && n > 0
	}
}

// setup makes the server and the template ready, once.
func (h *harness) setup() (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ready || h.err != nil {
		return h.adminURL, h.err
	}
	if !h.mainRan {
		return "", errors.New("call pgtest.Main(m) from the package's TestMain before pgtest.URL")
	}
	var b [4]byte
	rand.Read(b[:])
	h.tag = hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if u := os.Getenv("DATABASE_URL"); u != "" {
		h.adminURL = u
	} else if h.err = h.startServer(ctx); h.err != nil {
		return "", h.err
	}
	if err := buildTemplate(ctx, h.adminURL); err != nil {
		if h.server == nil {
			err = fmt.Errorf("DATABASE_URL: %w", err)
		}
		h.err = err
		return "", h.err
	}
	h.ready = true
	return h.adminURL, nil
}

func (h *harness) startServer(ctx context.Context) error {
	sweepStaleDirs()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return err
	}
	h.tmpDir = dir
	// The server may run as user postgres (when tests run as root): let it
	// through the 0700 temporary directory to its data directory.
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	s, err := pgserver.Start(ctx, pgserver.Config{Dir: filepath.Join(dir, "data")})
	if errors.Is(err, pgserver.ErrNoBinaries) {
		return fmt.Errorf("no PostgreSQL to test against: %w; or set DATABASE_URL to a server whose role may CREATE DATABASE (`make deps` installs PostgreSQL)", err)
	}
	if err != nil {
		return fmt.Errorf("start a private PostgreSQL (set DATABASE_URL to use an existing one): %w", err)
	}
	h.server = s
	h.adminURL = s.URL("postgres")
	return nil
}

func (h *harness) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	if h.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		errs = append(errs, h.server.Stop(ctx))
	}
	if h.tmpDir != "" {
		errs = append(errs, os.RemoveAll(h.tmpDir))
	}
	return errors.Join(errs...)
}

// buildTemplate creates the template database if it is missing and brings
// it to the newest schema. Running Apply on an existing template makes a
// long-lived DATABASE_URL server pick up new migrations, and finishes a
// build that a killed test binary left half done.
func buildTemplate(ctx context.Context, admin string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(admin), err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) // also releases the lock
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLock); err != nil {
		return fmt.Errorf("lock template: %w", err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Template).Scan(&exists); err != nil {
		return fmt.Errorf("look up template: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+Template); err != nil {
			return fmt.Errorf("create template: %w", err)
		}
	}
	if _, err := migrations.Apply(ctx, withDatabase(admin, Template)); err != nil {
		return fmt.Errorf("migrate %s: %w", Template, err)
	}
	return nil
}

// createDatabase clones the template. Postgres refuses to clone a database
// others are connected to (SQLSTATE 55006) once it has waited 5 s for them;
// that happens only while another test binary migrates the template, so
// retry for a while.
func createDatabase(ctx context.Context, admin, name string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + Template
	for {
		err := execOne(ctx, admin, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			if err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create %s: %w (last: %w)", name, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// execOne runs one statement on its own connection: CREATE and DROP DATABASE
// cannot run inside a transaction, and a short connection holds nothing
// open between tests.
func execOne(ctx context.Context, connString, sql string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns connString with its database replaced by db. It
// accepts URLs and keyword/value strings ("host=... dbname=...").
func withDatabase(connString, db string) string {
	if u, err := url.Parse(connString); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path, u.RawPath = "/"+db, ""
		return u.String()
	}
	// A later keyword wins.
	return connString + " dbname=" + db
}

// redact hides a password in a URL for error messages.
func redact(connString string) string {
	if u, err := url.Parse(connString); err == nil && u.User != nil {
		return u.Redacted()
	}
	return connString
}

// sweepStaleDirs removes the temporary directories of test binaries that
// died before Main could (a -timeout panic, a kill). Their servers went
// down with them, being started with a parent-death signal.
func sweepStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner"))
		if err != nil {
			continue // being set up, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		if pm, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(pm), "\n")
			if p, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && alive(p) {
				continue
			}
		}
		os.RemoveAll(d)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
