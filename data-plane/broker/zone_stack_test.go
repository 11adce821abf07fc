package broker_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kgo"
)

var zones = []string{"zone-a", "zone-b", "zone-c"}

// zoneMeter counts, on the client side, the record batch bytes produced
// and fetched, by whether the broker was in the
// client's zone (the broker's rack, as Metadata names it). It measures
// the same traffic with and without zone hints, since without them the
// brokers do not know where the clients are.
type zoneMeter struct {
	zone string
	mu   *sync.Mutex
	sums map[string]int64 // "produce/same_zone", "fetch/cross_zone", ...
}

func (m zoneMeter) add(meta kgo.BrokerMetadata, dir string, n int) {
	loc := "cross_zone"
	if meta.Rack != nil && *meta.Rack == m.zone {
		loc = "same_zone"
	}
	m.mu.Lock()
	m.sums[dir+"/"+loc] += int64(n)
	m.mu.Unlock()
}

func (m zoneMeter) OnProduceBatchWritten(meta kgo.BrokerMetadata, _ string, _ int32, bm kgo.ProduceBatchMetrics) {
	m.add(meta, "produce", bm.CompressedBytes)
}

func (m zoneMeter) OnFetchBatchRead(meta kgo.BrokerMetadata, _ string, _ int32, bm kgo.FetchBatchMetrics) {
	m.add(meta, "fetch", bm.CompressedBytes)
}

// zoneRun is what one run of the multi-zone workload measured.
type zoneRun struct {
	client map[string]int64 // client-side record bytes, zoneMeter's keys
	broker map[string]float64
}

func (r zoneRun) clientShare() float64 {
	cross := r.client["produce/cross_zone"] + r.client["fetch/cross_zone"]
	all := cross + r.client["produce/same_zone"] + r.client["fetch/same_zone"]
	return float64(cross) / float64(max(all, 1))
}

// runZoneWorkload produces records records from one producer in each zone
// and reads the whole topic with one consumer in each zone, hinting the
// zones (client.id for producers, client.rack for consumers) when hints
// is set. Every consumer must read every record exactly once.
func runZoneWorkload(t *testing.T, s *stack.Stack, topic string, records int, hints bool) zoneRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	createTopic(t, newClient(t, s), topic, 6, nil)
	before := zoneMetrics(t, s)
	var mu sync.Mutex
	run := zoneRun{client: map[string]int64{}}

	var wg sync.WaitGroup
	errs := make(chan error, 2*len(zones))
	// The consumers start first: they long-poll (on the replicas, with
	// hints) while the producers write.
	want := records * len(zones)
	for _, zone := range zones {
		opts := []kgo.Opt{kgo.WithHooks(zoneMeter{zone: zone, mu: &mu, sums: run.client}),
			kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500 * time.Millisecond)}
		if hints {
			opts = append(opts, kgo.Rack(zone))
		}
		cl := newClient(t, s, opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := map[string]int{}
			n := 0
			for n < want && ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				fs.EachError(func(tp string, p int32, err error) {
					if ctx.Err() == nil {
						t.Logf("consumer in %s: fetch %s/%d: %v", zone, tp, p, err)
					}
				})
				fs.EachRecord(func(r *kgo.Record) {
					seen[string(r.Key)]++
					n++
				})
			}
			if n != want || len(seen) != want {
				errs <- fmt.Errorf("consumer in %s read %d records, %d distinct, want %d exactly once", zone, n, len(seen), want)
			}
		}()
	}
	for zi, zone := range zones {
		opts := []kgo.Opt{kgo.WithHooks(zoneMeter{zone: zone, mu: &mu, sums: run.client}), kgo.DefaultProduceTopic(topic)}
		if hints {
			opts = append(opts, kgo.ClientID("zone-test,eddy_az="+zone))
		}
		pr := newClient(t, s, opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range records {
				value := make([]byte, 1000) // incompressible: bytes on the wire are bytes produced
				rand.Read(value)
				r := &kgo.Record{Key: fmt.Appendf(nil, "%d-%d", zi, i), Value: value}
				pr.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				})
			}
			if err := pr.Flush(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	after := zoneMetrics(t, s)
	run.broker = map[string]float64{}
	for k, v := range after {
		run.broker[k] = v - before[k]
	}
	return run
}

// zoneMetrics sums eddy_broker_zone_bytes_total over the brokers, by
// "direction/locality", and eddy_replica_read_bytes_total by
// "replica_read/source".
func zoneMetrics(t *testing.T, s *stack.Stack) map[string]float64 {
	page := scrape(t, s)
	out := map[string]float64{}
	for _, dir := range []string{"produce", "fetch"} {
		for _, loc := range []string{"same_zone", "cross_zone", "unknown"} {
			out[dir+"/"+loc] = metricSum(grepLines(grepLines(page, `direction="`+dir+`"`), `locality="`+loc+`"`), "eddy_broker_zone_bytes_total")
		}
	}
	// What brokers read for partitions they do not lead: from objects
	// (regional) or from inline rows (Postgres, in one zone).
	for _, src := range []string{"object", "inline"} {
		out["replica_read/"+src] = metricSum(grepLines(page, `source="`+src+`"`), "eddy_replica_read_bytes_total")
	}
	return out
}

// TestZoneAwareFetch: three brokers in three zones, a producer and a
// consumer in each zone. Without hints about two thirds of the bytes
// cross zones; with them (client.rack on the consumers, KIP-392) no fetch
// byte is served across zones, and every consumer still reads every record
// exactly once. Produce still goes to the partition's leader, wherever it
// is (docs/architecture.md, "Zone-aware produce").
func TestZoneAwareFetch(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 3, Metrics: true,
		BrokerArgsFor: func(id int) []string { return []string{"--rack", zones[(id-1)%len(zones)]} }})
	const records = 500

	plain := runZoneWorkload(t, s, "zones-plain", records, false)
	hinted := runZoneWorkload(t, s, "zones-hinted", records, true)
	for _, r := range []struct {
		name string
		zoneRun
	}{{"without hints", plain}, {"with hints", hinted}} {
		t.Logf("%s: client-side cross-zone share %.1f%% of produce+fetch bytes; client bytes %v; broker record bytes %v",
			r.name, 100*r.clientShare(), r.client, r.broker)
	}
	if hinted.broker["fetch/cross_zone"] != 0 || hinted.client["fetch/cross_zone"] != 0 {
		t.Errorf("with hints, fetch bytes crossed zones: broker metrics %v, clients %v", hinted.broker, hinted.client)
	}
	if hinted.broker["fetch/same_zone"] == 0 || hinted.broker["produce/same_zone"]+hinted.broker["produce/cross_zone"] == 0 {
		t.Errorf("with hints, the brokers metered no same-zone fetch or no produce: %v", hinted.broker)
	}
	if plain.client["fetch/cross_zone"] == 0 {
		t.Errorf("without hints no fetch byte crossed zones (the workload does not spread): %v", plain.client)
	}
	if plain.broker["fetch/cross_zone"]+plain.broker["fetch/same_zone"] != 0 {
		t.Errorf("without hints the brokers knew the clients' zones: %v", plain.broker)
	}

	// librdkafka honours the preferred read replica too (client.rack).
	t.Run("kcat", func(t *testing.T) {
		kcat := tool(t, "kcat")
		before := zoneMetrics(t, s)
		out, err := exec.Command(kcat, "-b", strings.Join(s.Bootstrap(), ","), "-C", "-t", "zones-hinted",
			"-o", "beginning", "-e", "-q", "-f", "%k\n", "-X", "client.rack=zone-b", "-X", "fetch.wait.max.ms=200").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat: %v: %s", err, out)
		}
		keys := map[string]bool{}
		for l := range strings.Lines(string(out)) {
			keys[strings.TrimSpace(l)] = true
		}
		after := zoneMetrics(t, s)
		if len(keys) != records*len(zones) {
			t.Errorf("kcat read %d distinct keys, want %d", len(keys), records*len(zones))
		}
		if d := after["fetch/cross_zone"] - before["fetch/cross_zone"]; d != 0 {
			t.Errorf("kcat with client.rack: %.0f fetch bytes crossed zones (same zone: %.0f)", d, after["fetch/same_zone"]-before["fetch/same_zone"])
		}
	})
}
