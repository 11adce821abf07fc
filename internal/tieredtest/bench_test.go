package tieredtest_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/s3test"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/cache"
	"github.com/eddy-streams/eddy/tiered/compact"
	"github.com/eddy-streams/eddy/tiered/s3bucket"
)

// swapReader lets one leader read through a cache that a benchmark
// replaces between iterations.
type swapReader struct{ c atomic.Pointer[cache.Cache] }

func (s *swapReader) ReadRange(ctx context.Context, key string, size, off, n int64) ([]byte, error) {
	return s.c.Load().ReadRange(ctx, key, size, off, n)
}

func (s *swapReader) Prefetch(key string, size, off, n int64) { s.c.Load().Prefetch(key, size, off, n) }

func (s *swapReader) Unread(key string, size, off, n int64) { s.c.Load().Unread(key, size, off, n) }

func benchMiB(def int) int64 {
	if v, err := strconv.Atoi(os.Getenv("EDDY_BENCH_TIERED_MIB")); err == nil && v > 0 {
		return int64(v)
	}
	return int64(def)
}

// write produces about totalBytes of record batches spread evenly over
// every partition of topic "t", in flushes of flushBytes, and returns the
// bytes written.
func write(tb testing.TB, e *tieredtest.Env, m *leader.Manager, totalBytes, flushBytes int64) int64 {
	tb.Helper()
	pids := e.Parts["t"]
	per := max(flushBytes/int64(len(pids))-80, 16) // minus batch and record overhead
	var written int64
	for written < totalBytes {
		for _, p := range pids {
			raw := tieredtest.Batch(1, []byte("key"), int(per), time.Now().UnixMilli())
			written += int64(len(raw))
			tieredtest.Append(tb, m, p, raw)
		}
		if err := m.Flush(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
	return written
}

func compactAll(tb testing.TB, e *tieredtest.Env) {
	tb.Helper()
	cfg := compact.DefaultConfig()
	cfg.MinPieces = 4
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for {
		r, err := c.Compact(context.Background(), store.Shard{})
		if err != nil {
			tb.Fatal(err)
		}
		if r.Partitions == 0 {
			return
		}
	}
}

// readCold reads every partition of "t" from offset 0 through a new cache
// over bkt and returns the cache's counters and the bytes delivered.
func readCold(tb testing.TB, m *leader.Manager, sw *swapReader, e *tieredtest.Env, bkt bucket.Bucket) (cache.Stats, int64) {
	tb.Helper()
	cfg := cache.DefaultConfig()
	cfg.Dir, cfg.MaxBytes = tb.TempDir(), 2<<30
	c, err := cache.Open(cfg, bkt, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	sw.c.Store(c)
	n := readAll(tb, m, e)
	return c.Stats(), n
}

func readAll(tb testing.TB, m *leader.Manager, e *tieredtest.Env) (bytes int64) {
	tb.Helper()
	for _, p := range e.Parts["t"] {
		_, hw := tieredtest.Led(tb, m, p).Offsets()
		n, b := tieredtest.ReadAll(tb, m, p, 0)
		if n != hw {
			tb.Fatalf("partition %d: read %d records of %d", p, n, hw)
		}
		bytes += b
	}
	return bytes
}

// BenchmarkFetch reads one partition's compacted data (32 MiB unless
// EDDY_BENCH_TIERED_MIB says otherwise) from offset 0: "objectstore" with
// an empty read cache each time (through the fs bucket, and through S3 on
// moto_server if available), "cache" from a warm on-disk cache.
func BenchmarkFetch(b *testing.B) {
	e := tieredtest.New(b, tieredtest.Topic{Name: "t", Partitions: 1})
	m := e.Manager(b, nil, nil)
	total := write(b, e, m, benchMiB(32)<<20, 256<<10)
	m.Close()
	compactAll(b, e)

	sources := map[string]func(b *testing.B) bucket.Bucket{
		"fs": func(*testing.B) bucket.Bucket { return e.Bucket },
		"s3": func(b *testing.B) bucket.Bucket { return copyToS3(b, e) },
	}
	for _, name := range []string{"fs", "s3"} {
		for _, warm := range []bool{false, true} {
			kind := "objectstore"
			if warm {
				kind = "cache"
			}
			b.Run(kind+"/"+name, func(b *testing.B) {
				bkt := sources[name](b)
				sw := &swapReader{}
				m := e.Manager(b, func(cfg *leader.Config) { cfg.WALDir, cfg.Remote = b.TempDir(), sw }, nil)
				var (
					st   cache.Stats
					read int64
				)
				if warm {
					cfg := cache.DefaultConfig()
					cfg.Dir, cfg.MaxBytes, cfg.ReadAhead = b.TempDir(), 2<<30, 0
					c, err := cache.Open(cfg, bkt, nil)
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					sw.c.Store(c)
					readAll(b, m, e)
				}
				b.SetBytes(total)
				b.ResetTimer()
				for range b.N {
					if warm {
						readAll(b, m, e)
					} else {
						st, read = readCold(b, m, sw, e, bkt)
					}
				}
				if !warm {
					b.ReportMetric(float64(st.Gets)/(float64(read)/(1<<20)), "GETs/MiB")
				}
			})
		}
	}
}

func copyToS3(b *testing.B, e *tieredtest.Env) bucket.Bucket {
	b.Helper()
	endpoint, ak, sk := s3test.Start(b)
	ctx := context.Background()
	s3b, err := s3bucket.New(ctx, s3bucket.Config{Endpoint: endpoint, Region: s3test.Region, Bucket: "bench",
		AccessKey: ak, SecretKey: sk, PathStyle: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := s3b.CreateBucketIfMissing(ctx); err != nil {
		b.Fatal(err)
	}
	err = e.Bucket.List(ctx, "", func(o bucket.Object) error {
		data, err := e.Bucket.Get(ctx, o.Key)
		if err != nil {
			return err
		}
		return s3b.Put(ctx, o.Key, data)
	})
	if err != nil {
		b.Fatal(err)
	}
	return s3b
}

// BenchmarkRequestsPerGiB counts object-store requests per GiB at 10,
// 1,000 and 10,000 partitions: PUTs to write (flushes of 1 MiB spread
// over every partition), GETs to read everything back cold before
// compaction, GETs and PUTs of compaction, and GETs to read back cold
// after it. 64 MiB per run unless EDDY_BENCH_TIERED_MIB says otherwise.
func BenchmarkRequestsPerGiB(b *testing.B) {
	for _, n := range []int32{10, 1000, 10000} {
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			for range b.N {
				e := tieredtest.New(b, tieredtest.Topic{Name: "t", Partitions: n})
				m := e.Manager(b, nil, nil)
				puts0 := e.Requests(b, "put")
				written := write(b, e, m, benchMiB(64)<<20, 1<<20)
				gib := float64(written) / (1 << 30)
				b.ReportMetric((e.Requests(b, "put")-puts0)/gib, "flush-PUTs/GiB")
				m.Close()

				sw := &swapReader{}
				r := e.Manager(b, func(cfg *leader.Config) { cfg.WALDir, cfg.Remote = b.TempDir(), sw }, nil)
				st, read := readCold(b, r, sw, e, e.Bucket)
				b.ReportMetric(float64(st.Gets)/(float64(read)/(1<<30)), "uncompacted-GETs/GiB")

				gets0, puts0 := e.Requests(b, "get_range"), e.Requests(b, "put")
				compactAll(b, e)
				b.ReportMetric((e.Requests(b, "get_range")-gets0)/gib, "compact-GETs/GiB")
				b.ReportMetric((e.Requests(b, "put")-puts0)/gib, "compact-PUTs/GiB")

				st, read = readCold(b, r, sw, e, e.Bucket)
				b.ReportMetric(float64(st.Gets)/(float64(read)/(1<<30)), "compacted-GETs/GiB")
				r.Close()
			}
		})
	}
}
