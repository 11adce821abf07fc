package pgtest_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestIsolatedMigratedDatabases runs two parallel tests that each get a
// migrated database, write to it while the other's exists, and see only
// their own rows; both databases are gone once the tests end.
func TestIsolatedMigratedDatabases(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(2)
	bothWrote := make(chan struct{})
	go func() { arrived.Wait(); close(bothWrote) }()

	var mu sync.Mutex
	var names []string
	t.Run("group", func(t *testing.T) {
		for _, id := range []string{"a", "b"} {
			t.Run(id, func(t *testing.T) {
				t.Parallel()
				var once sync.Once
				done := func() { once.Do(arrived.Done) }
				defer done()

				// Closed only after URL's cleanup has dropped the database,
				// which must not wait for it.
				var conn *pgx.Conn
				t.Cleanup(func() {
					if conn != nil {
						conn.Close(context.Background())
					}
				})
				url := pgtest.URL(t)
				ctx := t.Context()
				var err error
				if conn, err = pgx.Connect(ctx, url); err != nil {
					t.Fatal(err)
				}

				// Migrated: the template's schema is there, and Apply finds
				// nothing left to do.
				var version int32
				if err := conn.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&version); err != nil {
					t.Fatalf("schema_version: %v", err)
				}
				if version < 1 {
					t.Fatalf("schema version %d, want >= 1", version)
				}
				if v, err := migrations.Apply(ctx, url); err != nil || v != version {
					t.Fatalf("Apply on a cloned database = %d, %v; want %d, nil", v, err, version)
				}

				if _, err := conn.Exec(ctx, `INSERT INTO virtual_clusters (id, name, ingress_mbps, egress_mbps, max_requests_per_sec, max_connections, max_partitions, max_storage_gb,
					max_topics, max_groups, producer_ids_per_hour, producer_id_burst, max_retention_ms, max_retention_bytes)
					VALUES ($1, $1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)`, id); err != nil {
					t.Fatal(err)
				}
				done()
				select {
				case <-bothWrote:
				case <-time.After(time.Minute):
					t.Fatal("the other test never wrote")
				}
				rows, err := conn.Query(ctx, "SELECT id FROM virtual_clusters")
				if err != nil {
					t.Fatal(err)
				}
				ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids, []string{id}) {
					t.Errorf("virtual_clusters = %v, want only [%s]", ids, id)
				}

				var name string
				if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				names = append(names, name)
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("databases %v, want two distinct", names)
	}

	// The group's cleanups have run: both databases were dropped (although
	// each test still had a connection open when its cleanup ran).
	conn := connect(t, pgtest.URL(t))
	var left []string
	rows, err := conn.Query(t.Context(), "SELECT datname FROM pg_database WHERE datname = ANY($1)", names)
	if err != nil {
		t.Fatal(err)
	}
	if left, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("databases %v survived their tests", left)
	}
}
