package quota

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/brokerload"
	"github.com/eddy-streams/eddy/internal/limits"
)

func TestGCRA(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name       string
		tat        time.Time
		cost, rate float64
		want       time.Duration
	}{
		{"unlimited", now, 1e9, 0, 0},
		{"free", now, 0, 1, 0},
		{"within the burst", now, 1, 2, 0},
		{"one second past the burst", now, 2, 1, time.Second},
		{"idle clock starts now", now.Add(-time.Hour), 2, 1, time.Second},
		{"capped at one maximal throttle", now, 1e9, 1, maxThrottle},
		{"a new clock gets a tenth of the burst", time.Time{}, 0.1, 1, 0},
		{"a new clock past it", time.Time{}, 0.5, 1, 400 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tat := tc.tat
			if got := gcra(&tat, now, tc.cost, tc.rate); got != tc.want {
				t.Errorf("gcra = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestInitialBurst: a cluster new to the broker is throttled once it runs
// more than initialBurst ahead of its rate, not a whole second: 1 KB/s
// lets 100 bytes through at once, and the next byte waits.
func TestInitialBurst(t *testing.T) {
	var tat time.Time
	now := time.Now()
	if d := gcra(&tat, now, 100, 1000); d != 0 {
		t.Fatalf("the initial burst of 100 bytes at 1000 B/s: throttled %v", d)
	}
	if d := gcra(&tat, now, 100, 1000); d != 100*time.Millisecond {
		t.Errorf("100 bytes more at once: throttled %v, want 100ms", d)
	}
	// Idle for a second, the clock has the whole burst again.
	later := now.Add(2 * time.Second)
	if d := gcra(&tat, later, 1000, 1000); d != 0 {
		t.Errorf("a second's bytes after idling: throttled %v", d)
	}
}

func TestShareOf(t *testing.T) {
	in := func(v float64) brokerload.Report {
		return brokerload.Report{Clusters: map[string]brokerload.Rates{"vc": {BytesIn: v}}}
	}
	dim := func(r brokerload.Rates) float64 { return r.BytesIn }
	for _, tc := range []struct {
		name    string
		reports map[int32]brokerload.Report
		want    float64
	}{
		{"alone, no report", nil, 1},
		{"no traffic: 1/N", map[int32]brokerload.Report{1: in(0), 2: in(0)}, 0.5},
		{"all the traffic", map[int32]brokerload.Report{1: in(30), 2: in(0), 3: in(0)}, 1},
		{"a quarter, floor a third", map[int32]brokerload.Report{1: in(1), 2: in(3), 3: in(0)}, 1.0 / 3},
		{"own report missing counts as a broker", map[int32]brokerload.Report{2: in(5)}, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shareOf(tc.reports, 1, "vc", dim); got != tc.want {
				t.Errorf("share = %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeStore stands in for Postgres: the enforcer's arithmetic does not
// depend on how the numbers were stored (the broker's tests run it on
// the real store).
type fakeStore struct {
	limits map[string]limits.Limits
	stored map[string]int64
	loads  map[int32][]byte
}

func (f fakeStore) ClusterLimits(context.Context) (map[string]limits.Limits, error) {
	return f.limits, nil
}
func (f fakeStore) StoredBytes(context.Context) (map[string]int64, error) { return f.stored, nil }
func (f fakeStore) BrokerLoads(context.Context) (map[int32][]byte, error) { return f.loads, nil }

// TestRefresh: the pool-wide limits land in the Overrides, this broker
// enforces its share of them, and the storage verdict survives rounds
// that do not measure storage.
func TestRefresh(t *testing.T) {
	peer := brokerload.Report{Clusters: map[string]brokerload.Rates{"full": {BytesIn: 3}}}
	st := fakeStore{
		limits: map[string]limits.Limits{
			"full": {IngressMBps: 4, EgressMBps: 2, MaxRequestsPerSec: 100, MaxConnections: 3, MaxStorageGB: 1},
			"room": {IngressMBps: 1, EgressMBps: 1, MaxRequestsPerSec: 10, MaxConnections: 10, MaxStorageGB: 1},
		},
		stored: map[string]int64{"full": 1e9, "room": 5},
		loads:  map[int32][]byte{2: peer.Marshal()},
	}
	lim := limits.NewOverrides()
	e := New(Config{Broker: 1, Interval: time.Second}, st, lim, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	e.ObserveLocal(brokerload.Report{Clusters: map[string]brokerload.Rates{"full": {BytesIn: 1}}})
	if err := e.refresh(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if got := lim.ProduceBytesPerSec("full"); got != 4e6 {
		t.Errorf("overrides hold %v B/s for full, want 4e6", got)
	}
	full := e.of("full")
	// One broker of two carried a quarter of full's produce bytes: it
	// enforces half (the 1/N floor) of the rates, and of the connections
	// rounded up.
	if full.produce != 2e6 || full.fetch != 1e6 || full.requests != 50 || full.connections != 2 {
		t.Errorf("full's share %+v", full)
	}
	if !strings.Contains(full.storageFull, "max_storage_gb") || e.of("room").storageFull != "" {
		t.Errorf("storage verdicts: full %q, room %q", full.storageFull, e.of("room").storageFull)
	}
	st.stored = nil // not measured: the verdict stays
	e.st = st
	if err := e.refresh(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if e.of("full").storageFull == "" {
		t.Error("a round without storage forgot that full is at its limit")
	}
	resp, refused := e.StorageRefusal("full", &kmsg.ProduceRequest{Acks: -1, Topics: []kmsg.ProduceRequestTopic{{Topic: "t",
		Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0}}}}})
	if pr, ok := resp.(*kmsg.ProduceResponse); !refused || !ok || pr.Topics[0].Partitions[0].ErrorCode != kerr.PolicyViolation.Code {
		t.Errorf("produce to a full cluster: refused %v, %+v", refused, resp)
	}
}

// TestCharge: a connection past its cluster's connection share is refused
// on its first request, one admitted before is not; a produce past the
// byte rate is throttled through throttle_time_ms and mutes the reader.
func TestCharge(t *testing.T) {
	e := New(Config{Broker: 1, Interval: time.Second}, nil, limits.NewOverrides(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	e.shares.Store(&map[string]share{"vc": {produce: 1000, connections: 1}})
	m := NewMeter()
	var a, b Conn
	a.Request(m, "vc", 10)
	if _, err := e.Charge(&a, int16(kmsg.Metadata), 10, nil); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	b.Request(m, "vc", 10)
	if _, err := e.Charge(&b, int16(kmsg.Metadata), 10, nil); err == nil {
		t.Fatal("second connection over a share of 1 was admitted")
	}
	if _, err := e.Charge(&b, int16(kmsg.SASLAuthenticate), 10, nil); err != nil {
		t.Errorf("authentication is never refused: %v", err)
	}
	b.Close()
	if _, err := e.Charge(&a, int16(kmsg.Metadata), 10, nil); err != nil {
		t.Fatalf("admitted connection: %v", err)
	}

	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(9) // KIP-219: the client backs off itself
	d, err := e.Charge(&a, int16(kmsg.Produce), 5000, resp)
	if err != nil || d != 0 || resp.ThrottleMillis < 3000 || time.Until(a.mutedUntil) < 3*time.Second {
		t.Errorf("5 s of bytes at 1000 B/s: delay %v, %v, throttle %d ms, muted for %v", d, err, resp.ThrottleMillis, time.Until(a.mutedUntil))
	}
	// The load report tells the control plane the cluster was throttled.
	if r := m.Report(nil, 0).Clusters["vc"]; r.Throttle <= 0 || r.LastThrottledAt.IsZero() {
		t.Errorf("the report after a throttle: %+v", r)
	}
	var stopping atomic.Bool
	stopping.Store(true)
	a.WaitMuted(context.Background(), &stopping) // returns at once while stopping
	a.Close()

	// A share group's records count against the egress rate, as a fetch's.
	e.shares.Store(&map[string]share{"vc": {fetch: 1000, connections: 10}})
	var c Conn
	c.Request(m, "vc", 10)
	sr := kmsg.NewPtrShareFetchResponse()
	st := kmsg.NewShareFetchResponseTopic()
	sp := kmsg.NewShareFetchResponseTopicPartition()
	sp.Records = make([]byte, 5000)
	st.Partitions = append(st.Partitions, sp)
	sr.Topics = append(sr.Topics, st)
	if _, err := e.Charge(&c, int16(kmsg.ShareFetch), 100, sr); err != nil || sr.ThrottleMillis < 3000 {
		t.Errorf("5 s of share-fetched bytes at 1000 B/s: %v, throttle %d ms", err, sr.ThrottleMillis)
	}
	c.Close()
}

// TestMeterReport: requests, responses and connections are reported per
// cluster, produced bytes per led partition.
func TestMeterReport(t *testing.T) {
	m := NewMeter()
	var c Conn
	c.Request(m, "", 10) // before authentication: no cluster
	c.Request(m, "vc", 100)
	c.Request(m, "vc", 100)
	c.Response(50)
	m.Produced(7, 80)
	m.Produced(8, 80)
	r := m.Report(map[int64]bool{7: true}, 2)
	got := r.Clusters["vc"]
	if got.Connections != 1 || got.BytesIn <= 0 || got.BytesOut <= 0 || got.Requests <= 0 || r.Connections != 1 {
		t.Errorf("report for vc %+v, connections %d", got, r.Connections)
	}
	if r.Partitions != 1 || r.Slots != 2 || r.PartitionBytesIn["7"] <= 0 || r.PartitionBytesIn["8"] != 0 {
		t.Errorf("partitions %d slots %d bytes in %v", r.Partitions, r.Slots, r.PartitionBytesIn)
	}
	c.Close()
	if r := m.Report(nil, 0); r.Clusters["vc"].Connections != 0 {
		t.Errorf("closed connection still reported: %+v", r.Clusters["vc"])
	}
}
