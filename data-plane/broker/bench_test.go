package broker_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchBootstrap returns the brokers to measure: EDDY_BENCH_BOOTSTRAP (for
// example a `make dev` stack, 127.0.0.1:9092) or a stack started here.
func benchBootstrap(b *testing.B) []string {
	if v := os.Getenv("EDDY_BENCH_BOOTSTRAP"); v != "" {
		return strings.Split(v, ",")
	}
	s := stack.Start(b, stack.Options{DatabaseURL: pgtest.URL(b)})
	return s.Bootstrap()
}

func benchClient(b *testing.B, seeds []string, topic string, partitions int32, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		b.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	return cl
}

// BenchmarkProduceThroughput: a default franz-go producer (idempotent,
// acks=all, snappy) pushing 1 KiB incompressible records into 16
// partitions as fast as it can.
//
//	go test -run '^$' -bench ProduceThroughput -benchtime 200000x ./data-plane/broker
func BenchmarkProduceThroughput(b *testing.B) {
	seeds := benchBootstrap(b)
	cl := benchClient(b, seeds, "bench-throughput-"+strings.ToLower(rand.Text()[:6]), 16)
	value := make([]byte, 1024)
	rand.Read(value)
	ctx := context.Background()
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkProduceLatency: one acks=all record at a time, 1 KiB; reports
// the p50 and p99 of the produce round trip (which includes the object
// store PUT and the Postgres commit of the flush that carries it).
//
//	go test -run '^$' -bench ProduceLatency -benchtime 2000x ./data-plane/broker
func BenchmarkProduceLatency(b *testing.B) { benchLatency(b, 0) }

// BenchmarkProduceLatencyIdle: the same, with 50 ms between records, as a
// lightly loaded producer sees it: no flush is due when a record arrives.
//
//	go test -run '^$' -bench ProduceLatencyIdle -benchtime 500x ./data-plane/broker
func BenchmarkProduceLatencyIdle(b *testing.B) { benchLatency(b, 50*time.Millisecond) }

func benchLatency(b *testing.B, gap time.Duration) {
	seeds := benchBootstrap(b)
	cl := benchClient(b, seeds, "bench-latency-"+strings.ToLower(rand.Text()[:6]), 1, kgo.ProducerLinger(0))
	value := make([]byte, 1024)
	rand.Read(value)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		if gap > 0 {
			b.StopTimer()
			time.Sleep(gap)
			b.StartTimer()
		}
		t0 := time.Now()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
