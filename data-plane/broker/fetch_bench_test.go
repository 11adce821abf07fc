package broker_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkFetchHot: the hot read of `make bench` alone, end to end over
// loopback: a fresh kgo consumer reads the last 4 MiB of each of 16
// partitions, which the leader keeps in memory (its read cache), with the
// bench's fetch sizes. One broker, so every fetch is served by the same
// process and the figure is that broker's read path (fetch handler,
// Partition.Read, response encoding, the connection's writer) plus the
// client. Besides the wall-clock MB/s it reports the CPU time the broker
// process and the client (this process) spent per read, from the broker's
// process_cpu_seconds_total and getrusage: on a shared, loaded machine the
// wall clock mostly measures the neighbours, CPU time per byte much less.
// It uses only the stack harness and kgo so that the same file runs on
// older trees for before/after comparisons:
//
//	go test -run '^$' -bench FetchHot -benchtime 20x -count 6 ./data-plane/broker
func BenchmarkFetchHot(b *testing.B) {
	const (
		partitions = 16
		perPart    = 4 << 20 // the bench's hot window
		recordSize = 1024
	)
	s := stack.Start(b, stack.Options{DatabaseURL: pgtest.URL(b), Brokers: 1, Metrics: true})
	seeds := s.Bootstrap()
	topic := "bench-hot-" + strings.ToLower(rand.Text()[:6])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	pcl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer pcl.Close()
	if _, err := kadm.NewClient(pcl).CreateTopic(ctx, partitions, -1, nil, topic); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, recordSize)
	rand.Read(value)
	perRecord := int64(recordSize + 70) // value plus record and batch overhead, as the bench counts
	records := int64(perPart) / perRecord
	var failed atomic.Value
	for i := range records * partitions {
		pcl.Produce(ctx, &kgo.Record{Value: value, Partition: int32(i % partitions)}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	if err := pcl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	ends, err := kadm.NewClient(pcl).ListEndOffsets(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	offsets := map[int32]kgo.Offset{}
	to := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		to[o.Partition] = o.Offset
		offsets[o.Partition] = kgo.NewOffset().At(max(0, o.Offset-records))
	})

	var throttled atomic.Int64 // ms, over every iteration
	read := func() int64 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
			kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20),
			kgo.WithHooks(throttleHook{&throttled}))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		var n int64
		for remaining := len(to); remaining > 0; {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				b.Fatal(err)
			}
			fs.EachPartition(func(p kgo.FetchTopicPartition) {
				for _, r := range p.Records {
					n += int64(len(r.Value))
					if r.Offset == to[p.Partition]-1 {
						remaining--
					}
				}
			})
		}
		return n
	}
	b.SetBytes(read()) // a first read: the connection and metadata warmed
	brokerCPU := func() float64 { return processCPU(b, s.MetricsURLs()[0]) }
	cpu0, self0 := brokerCPU(), selfCPU()
	b.ResetTimer()
	for range b.N {
		read()
	}
	b.StopTimer()
	b.ReportMetric(1000*(brokerCPU()-cpu0)/float64(b.N), "broker-cpu-ms/op")
	b.ReportMetric(1000*(selfCPU()-self0)/float64(b.N), "client-cpu-ms/op")
	b.ReportMetric(float64(throttled.Load())/float64(b.N), "throttle-ms/op")
}

// processCPU is a process's process_cpu_seconds_total from its /metrics.
func processCPU(b *testing.B, url string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	b.Fatalf("%s has no process_cpu_seconds_total", url)
	return 0
}

// selfCPU is this process's user and system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// throttleHook sums the throttle times brokers ask the client to observe.
type throttleHook struct{ ms *atomic.Int64 }

func (h throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	h.ms.Add(d.Milliseconds())
}
