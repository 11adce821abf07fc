package broker_test

import (
	"context"
	"crypto/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduceCPU: the max-throughput produce of `make bench` alone,
// for the broker's CPU per byte: one broker, 16 partitions, two kgo
// producers (acks=all, no compression, sticky partitioner, 1 ms linger)
// each sending 32 MiB of 1 KiB incompressible records per iteration. It
// reports the broker process's CPU seconds per GiB of record values
// (process_cpu_seconds_total before and after), which a shared, loaded
// machine disturbs far less than the wall-clock rate; the flushes (object
// build, PUT, commit) run inside the measured window. Like
// BenchmarkFetchHot it uses only the stack harness and kgo, so the same
// file runs on older trees for before/after comparisons:
//
//	go test -run '^$' -bench ProduceCPU -benchtime 3x -count 3 ./data-plane/broker
func BenchmarkProduceCPU(b *testing.B) {
	const (
		partitions = 16
		producers  = 2
		perProd    = 32 << 20
		recordSize = 1024
	)
	s := stack.Start(b, stack.Options{DatabaseURL: pgtest.URL(b), Brokers: 1, Metrics: true})
	seeds := s.Bootstrap()
	topic := "bench-cpu-" + strings.ToLower(rand.Text()[:6])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var cls []*kgo.Client
	for range producers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
			kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		cls = append(cls, cl)
	}
	if _, err := kadm.NewClient(cls[0]).CreateTopic(ctx, partitions, -1, nil, topic); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, recordSize)
	rand.Read(value)
	var failed atomic.Value
	produce := func(bytes int) {
		done := make(chan struct{})
		for _, cl := range cls {
			go func() {
				defer func() { done <- struct{}{} }()
				for range bytes / recordSize {
					cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
						if err != nil {
							failed.Store(err)
						}
					})
				}
				if err := cl.Flush(ctx); err != nil {
					failed.Store(err)
				}
			}()
		}
		for range cls {
			<-done
		}
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
	}
	produce(1 << 20) // warm-up: connections, metadata, producer ids
	brokerCPU := func() float64 { return processCPU(b, s.MetricsURLs()[0]) }
	b.SetBytes(producers * perProd)
	cpu0 := brokerCPU()
	b.ResetTimer()
	for range b.N {
		produce(perProd)
	}
	b.StopTimer()
	b.ReportMetric((brokerCPU()-cpu0)/(float64(b.N)*producers*perProd/(1<<30)), "broker-cpu-s/GiB")
}
