package leader_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/prometheus/client_golang/prometheus"
)

// bucketFiles counts the objects in the env's filesystem bucket.
func (e *env) bucketFiles(t *testing.T) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(e.objs.Dir(), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// uploadAll runs m until its uploader has moved every inline row of the
// partition into objects, then stops it.
func (e *env) uploadAll(t *testing.T, m *leader.Manager) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	poll.Until(t, 30*time.Second, "the inline rows to move into an object", func() error {
		rows, err := e.st.ReadInline(ctx, e.pid, 0, 1<<20)
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			return fmt.Errorf("%d inline rows left", len(rows))
		}
		return nil
	})
}

// endOf is the offset after the last of a run of whole batches.
func endOf(b []byte) int64 {
	end := int64(-1)
	batch.Each(b, func(h batch.Header, _ []byte) bool { end = h.LastOffset() + 1; return true })
	return end
}

// readAll reads partition p from offset 0 to its high watermark.
func readAll(t *testing.T, p *leader.Partition) []byte {
	t.Helper()
	var out []byte
	for off := int64(0); ; {
		r, err := p.Read(context.Background(), off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if off >= r.HighWatermark {
			return out
		}
		if len(r.Records) == 0 {
			t.Fatalf("empty read at %d below the high watermark %d", off, r.HighWatermark)
		}
		out = append(out, r.Records...)
		off = endOf(r.Records)
	}
}

// The inline write path (invariant 3's second half): acks=all is answered
// after one Postgres commit with no PUT; a broker that dies before its
// uploader ran loses nothing, since its successor serves the inline rows
// and uploads them; consumers read the same bytes from the inline rows,
// then from the uploaded object, in as many objects as uploads, not
// flushes.
func TestInlineWritePathAndFailover(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m1, p1 := e.leadWith(t, 1, 1, func(c *leader.Config) { c.UploadAge = time.Hour })
	const flushes = 5
	for i := range flushes {
		r := appendBatch(t, p1, recordBatchOf(10, -1, -1, []byte(fmt.Sprintf("value %d", i))))
		if err := m1.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p1.WaitCommitted(ctx, r.LastOffset); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.bucketFiles(t); n != 0 {
		t.Fatalf("%d objects PUT for %d acknowledged inline flushes, want none", n, flushes)
	}
	want := readAll(t, p1) // from the leader's memory
	if endOf(want) != 10*flushes {
		t.Fatalf("read up to %d, want %d", endOf(want), 10*flushes)
	}

	// Broker 1 dies (no shutdown, no upload); broker 2 takes over.
	e.moveToBroker2(t)
	m2, p2 := e.leadWith(t, 2, 2, func(c *leader.Config) { c.UploadAge = 50 * time.Millisecond })
	if got := readAll(t, p2); !bytes.Equal(got, want) {
		t.Fatalf("the new leader read %d bytes from the inline rows, want the %d the old one served", len(got), len(want))
	}

	// Its uploader moves the old leader's inline data into one object.
	e.uploadAll(t, m2)
	if n := e.bucketFiles(t); n != 1 {
		t.Fatalf("%d objects after the upload of %d flushes, want 1", n, flushes)
	}
	segs, err := e.st.Segments(ctx, e.pid, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || segs[0].BaseOffset != 0 || segs[0].EndOffset != 10*flushes {
		t.Fatalf("index after the upload: %+v, want one row [0, %d)", segs, 10*flushes)
	}
	// A third leader, with nothing cached, reads the same bytes from the
	// object.
	m2.Close()
	_, p3 := e.lead(t, 2, 2)
	if got := readAll(t, p3); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes from the uploaded object, want the %d read inline", len(got), len(want))
	}
}

// A flush larger than InlineMaxBytes goes straight to an object, and a
// partition whose log alternates between inline rows and objects reads
// back whole, in order.
func TestInlineAndObjectFlushesInterleave(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m, p := e.leadWith(t, 1, 1, func(c *leader.Config) { c.InlineMaxBytes, c.UploadAge = 2000, time.Hour })
	for i := range 6 {
		value := []byte("small")
		if i%2 == 1 {
			value = make([]byte, 500) // 10 records: over InlineMaxBytes
		}
		appendBatch(t, p, recordBatchOf(10, -1, -1, value))
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.bucketFiles(t); n != 3 {
		t.Fatalf("%d objects, want 3 (one per large flush)", n)
	}
	want := readAll(t, p)
	m.Close()
	_, p2 := e.lead(t, 1, 1)
	if got := readAll(t, p2); !bytes.Equal(got, want) {
		t.Fatalf("cold read of interleaved inline rows and objects: %d bytes, want %d", len(got), len(want))
	}
}

// BenchmarkFlushLatency measures what acks=all waits for after the flush
// interval: one flush of a 16 KiB batch, committed inline (one Postgres
// round trip) or PUT as an object first (the filesystem bucket: a write
// and its fsyncs).
func BenchmarkFlushLatency(b *testing.B) {
	for _, mode := range []struct {
		name   string
		inline int64
	}{{"inline", leader.DefaultConfig().InlineMaxBytes}, {"object", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := context.Background()
			e := setup(b)
			m := e.managerWith(b, 1, func(c *leader.Config) { c.InlineMaxBytes, c.UploadAge = mode.inline, time.Hour })
			defer m.Close()
			if err := m.Sync(ctx, map[int64]int32{e.pid: 1}); err != nil {
				b.Fatal(err)
			}
			p := tieredtest.Led(b, m, e.pid)
			// About what each broker flushes per interval at 10 MB/s over
			// three brokers: 80 records of 1 KiB.
			proto := recordBatchOf(80, -1, -1, make([]byte, 1000))
			b.SetBytes(int64(len(proto)))
			for b.Loop() {
				raw := append([]byte(nil), proto...)
				hdrs, err := batch.Validate(raw, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Append(raw, hdrs, false); err != nil {
					b.Fatal(err)
				}
				if err := m.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The uploader writes the rows its leader committed from the leader's
// cache, without reading them back from Postgres, and a successor's
// upload of its predecessor's rows (nothing cached) reads them from
// Postgres; readers get the same bytes either way.
func TestUploadReadsTheCache(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	open := func(id, epoch int32) (*leader.Manager, *leader.Partition, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		cfg := leader.DefaultConfig()
		cfg.BrokerID, cfg.WALDir, cfg.UploadAge = id, fmt.Sprintf("%s/wal-up-%d", e.dir, id), 20*time.Millisecond
		m, err := leader.Open(cfg, e.st, e.objs, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		if err := m.Sync(ctx, map[int64]int32{e.pid: epoch}); err != nil {
			t.Fatal(err)
		}
		return m, tieredtest.Led(t, m, e.pid), reg
	}
	commit := func(m *leader.Manager, p *leader.Partition, from, n int) {
		for i := from; i < from+n; i++ {
			r := appendBatch(t, p, recordBatchOf(10, -1, -1, []byte(fmt.Sprintf("value %d", i))))
			if err := m.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.WaitCommitted(ctx, r.LastOffset); err != nil {
				t.Fatal(err)
			}
		}
	}
	sources := func(reg *prometheus.Registry) (memory, postgres float64) {
		return counterValue(t, reg, "eddy_inline_upload_source_bytes_total", "source", "memory"),
			counterValue(t, reg, "eddy_inline_upload_source_bytes_total", "source", "postgres")
	}

	m1, p1, reg1 := open(1, 1)
	commit(m1, p1, 0, 3)
	first := readAll(t, p1)
	e.uploadAll(t, m1)
	if mem, pg := sources(reg1); mem != float64(len(first)) || pg != 0 {
		t.Fatalf("the leader uploaded %v bytes from its cache and %v from Postgres, want all %d from its cache", mem, pg, len(first))
	}

	// Two more inline flushes, then broker 1 dies before uploading them.
	commit(m1, p1, 3, 2)
	all := readAll(t, p1)
	e.moveToBroker2(t)
	m2, _, reg2 := open(2, 2)
	e.uploadAll(t, m2)
	if mem, pg := sources(reg2); mem != 0 || pg != float64(len(all)-len(first)) {
		t.Fatalf("the successor uploaded %v bytes from its cache and %v from Postgres, want the %d of its predecessor's rows from Postgres", mem, pg, len(all)-len(first))
	}
	m2.Close()
	_, p3 := e.lead(t, 2, 2)
	if got := readAll(t, p3); !bytes.Equal(got, all) {
		t.Fatalf("read %d bytes from the uploaded objects, want the %d the leader served", len(got), len(all))
	}
}
