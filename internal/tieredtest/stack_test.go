package tieredtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/compact"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// End to end through real broker processes: the brokers' job workers
// compact and collect; after every local cache and WAL is wiped, a Kafka
// consumer reading from offset 0 gets every record, the read cost is
// reported by eddy_remote_gets_total / eddy_remote_read_bytes_total, and
// `eddy fsck --strict` finds index and bucket consistent.
func TestWipedBrokerServesEverythingAfterCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1, Metrics: true, BrokerArgs: []string{
		"--compact-interval", "300ms", "--compact-min-pieces", "4",
		"--gc-interval", "300ms", "--gc-grace", "500ms", "--gc-orphan-age", "1h",
		"--jobs-poll", "100ms", "--jobs-lease", "5s",
		// A PUT per flush: the pieces compaction merges. Inline flushes
		// would reach the bucket as one or two uploaded objects.
		"--inline-max-bytes", "0",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, "orders"); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	const rounds, per = 20, 100
	for i := range rounds {
		var recs []*kgo.Record
		for j := range per {
			n := i*per + j
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(n % 10)), Value: []byte(fmt.Sprintf("value-%05d-%s", n, strings.Repeat("x", 200)))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()

	st, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	md, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid int64 = -1
	for _, tp := range md.Topics {
		if tp.Name == "orders" {
			pid = tp.Partitions[0].ID
		}
	}
	// Wait for the brokers' workers to compact the pieces and collect the
	// flush objects. On a slow machine compaction runs while the rounds are
	// still being produced, and a trailing run shorter than
	// --compact-min-pieces stays as pieces: that is by design.
	if !stack.WaitFor(ctx, func() bool {
		segs, err := st.Segments(ctx, pid, -1, 1000)
		if err != nil || len(segs) == 0 || !strings.HasPrefix(segs[0].ObjectKey, compact.SegmentPrefix) {
			return false
		}
		tail := 0
		for _, sg := range segs {
			switch {
			case !strings.HasPrefix(sg.ObjectKey, compact.SegmentPrefix):
				tail++
			case tail > 0:
				return false // a compacted segment after pieces
			}
		}
		if tail >= 4 {
			return false
		}
		refs, err := st.ObjectRefs(ctx)
		if err != nil {
			return false
		}
		for _, r := range refs {
			if r.Rows == 0 {
				return false // garbage not yet collected
			}
		}
		// Nor may a blob outlive its index row: the collector deletes the
		// row first, and a stop between the two leaves an orphan that only
		// the (hour-long) orphan sweep would remove.
		return bucketObjects(t, filepath.Join(s.Dir(), "objects")) == len(refs)
	}) {
		t.Fatal("pieces were not compacted and collected within the deadline")
	}

	// Wipe every local cache and the WAL.
	s.Stop(1)
	b := s.Broker(1)
	for _, d := range []string{"cache", "wal"} {
		if err := os.RemoveAll(filepath.Join(b.DataDir, d)); err != nil {
			t.Fatal(err)
		}
	}
	s.Restart(1)

	cl, err = kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := 0
	for next < rounds*per {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("after %d records: %v", next, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("value-%05d-", next); r.Offset != int64(next) || !strings.HasPrefix(string(r.Value), want) {
				t.Fatalf("record at offset %d = %.12q, want offset %d %q", r.Offset, r.Value, next, want)
			}
			next++
		})
	}
	gets, bytes := metric(t, s, "eddy_remote_gets_total"), metric(t, s, "eddy_remote_read_bytes_total")
	t.Logf("read %d records back: %.0f GETs for %.0f bytes (%.2f GETs per MiB)", next, gets, bytes, gets/(bytes/(1<<20)))
	if gets == 0 || bytes == 0 {
		t.Fatal("the read did not go through the object store")
	}

	out, err := exec.Command(stack.Binary(t), "fsck", "--strict", "--database-url", url,
		"--objstore", "fs", "--objstore-dir", filepath.Join(s.Dir(), "objects"), "--orphan-age", "0s").CombinedOutput()
	t.Logf("eddy fsck:\n%s", out)
	if err != nil {
		t.Fatalf("eddy fsck: %v", err)
	}
}

// bucketObjects counts the objects of the filesystem bucket at dir (not
// its temporary upload files).
func bucketObjects(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".tmp-") {
			n++
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return n
}

func metric(t *testing.T, s *stack.Stack, name string) float64 {
	t.Helper()
	var sum float64
	for _, u := range s.MetricsURLs() {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for line := range strings.SplitSeq(string(body), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == name {
				v, _ := strconv.ParseFloat(f[1], 64)
				sum += v
			}
		}
	}
	return sum
}
