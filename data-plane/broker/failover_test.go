package broker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ackLog records every acknowledged record: the verifier's ground truth.
type ackLog struct {
	mu   sync.Mutex
	acks map[string]ackPos // value → where the broker said it landed
}

type ackPos struct {
	partition int32
	offset    int64
}

func (a *ackLog) add(r *kgo.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acks[string(r.Value)] = ackPos{r.Partition, r.Offset}
}

// leaders returns partition → leader for the n partitions of topic, or an
// error while any of them has no leader.
func leaders(adm *kadm.Client, topic string, n int) (map[int32]int32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ls, err := leadersOf(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	for p := range int32(n) {
		if l, ok := ls[p]; !ok || l < 0 {
			return ls, fmt.Errorf("partition %d of %s has no leader (leaders %v)", p, topic, ls)
		}
	}
	return ls, nil
}

// leadCounts returns broker → how many of leaders' partitions it leads.
func leadCounts(leaders map[int32]int32) map[int32]int {
	out := map[int32]int{}
	for _, l := range leaders {
		out[l]++
	}
	return out
}

// leadersOf returns partition → leader for topic.
func leadersOf(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int32, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int32{}
	for _, p := range md.Topics[topic].Partitions {
		out[p.Partition] = p.Leader
	}
	return out, nil
}

// TestKillBrokerUnderLoad: three brokers under continuous acks=all load;
// one is killed with SIGKILL. Its partitions must be led elsewhere within
// 10 s, producers carry on, and every acknowledged record is read back
// exactly once, at the offset it was acknowledged with. Run with the
// uploader as configured by default, and with none due during the test:
// every acknowledged record is then inline in Postgres when the broker
// dies, and its successors serve it from there.
func TestKillBrokerUnderLoad(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{{"default", nil}, {"inline not uploaded", []string{"--inline-upload-age", "1h", "--inline-upload-bytes", "1073741824"}}} {
		t.Run(c.name, func(t *testing.T) { testKillBrokerUnderLoad(t, c.args) })
	}
}

func testKillBrokerUnderLoad(t *testing.T, brokerArgs []string) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, BrokerArgs: brokerArgs})
	const topic = "failover"
	prod := newClient(t, s, kgo.DefaultProduceTopic(topic), kgo.RecordRetries(1<<30),
		kgo.RecordDeliveryTimeout(60*time.Second), kgo.MetadataMinAge(250*time.Millisecond))
	createTopic(t, prod, topic, 12, nil)
	adm := kadm.NewClient(prod)

	acks := &ackLog{acks: map[string]ackPos{}}
	var failed atomic.Int64
	var lastErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := seq.Add(1)
				r := &kgo.Record{Key: []byte(strconv.FormatInt(i%97, 10)), Value: []byte("v" + strconv.FormatInt(i, 10))}
				prod.Produce(context.Background(), r, func(r *kgo.Record, err error) {
					if err != nil {
						failed.Add(1)
						lastErr.Store(err)
						return
					}
					acks.add(r)
				})
				if i%200 == 0 {
					time.Sleep(5 * time.Millisecond) // a steady stream, not a flood
				}
			}
		}()
	}

	// The load is on once every partition is led and has acknowledged
	// records. The victim is the broker leading the most partitions,
	// whichever that turned out to be.
	var before map[int32]int32
	poll.Until(t, 2*time.Minute, "every partition to be led and acknowledging", func() error {
		var err error
		if before, err = leaders(adm, topic, 12); err != nil {
			return err
		}
		if n := len(acks.partitions()); n < 12 {
			return fmt.Errorf("acknowledged records on %d of 12 partitions (leaders %v)", n, before)
		}
		return nil
	})
	var victim int32
	led := 0
	for b, n := range leadCounts(before) {
		if n > led || n == led && b < victim {
			victim, led = b, n
		}
	}
	s.Kill(int(victim))
	killedAt := time.Now()

	// Within 10 s, no partition may be led by the dead broker: placed on
	// another, as Postgres says (Metadata names a stand-in leader for a
	// partition that has none, so it cannot tell).
	st, err := store.Open(context.Background(), url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	moved := stack.WaitFor(deadline, func() bool {
		for part := range int32(12) {
			p, err := st.PartitionByName(deadline, "vc-dev", topic, part)
			if err != nil || p.LeaderID == victim || p.LeaderID < 0 {
				return false
			}
		}
		return true
	})
	dcancel()
	if !moved {
		t.Fatalf("partitions of the killed broker were not led elsewhere within 10s")
	}
	t.Logf("failover: %d partitions moved %v after SIGKILL", led, time.Since(killedAt).Round(10*time.Millisecond))
	if brokerArgs != nil {
		// The case under test: what the killed broker acknowledged is
		// inline, in no object.
		inline := 0
		for part := range int32(12) {
			p, err := st.PartitionByName(context.Background(), "vc-dev", topic, part)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := st.ReadInline(context.Background(), p.ID, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			inline += len(rows)
		}
		if inline == 0 {
			t.Fatal("no inline rows at the kill: the test would not exercise them")
		}
	}

	// Producers must carry on: a few seconds of load on the new leaders,
	// and on a busy machine for as long as the first acks take.
	ackedAtKill := acks.count()
	time.Sleep(3 * time.Second)
	poll.Until(t, time.Minute, "records to be acknowledged after the failover", func() error {
		if n := acks.count(); n <= ackedAtKill {
			return fmt.Errorf("%d acknowledged, as many as when the partitions had moved (%d produce attempts failed; last: %v)", n, failed.Load(), lastErr.Load())
		}
		return nil
	})
	cancel()
	wg.Wait()
	fctx, fcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer fcancel()
	if err := prod.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	got := acks.snapshot()
	if len(got) <= ackedAtKill {
		t.Fatalf("no records were acknowledged after the kill (%d before, %d after)", ackedAtKill, len(got))
	}
	if n := failed.Load(); n > 0 {
		t.Logf("%d produce attempts failed for good (last: %v); they were never acknowledged", n, lastErr.Load())
	}

	// Every acknowledged record exactly once, where the ack said.
	recs, ok := tryConsumeAll(t, s, topic, len(got))
	if !ok {
		// Say where records are missing before failing.
		acked, read := map[int32]int64{}, map[int32]int64{}
		for _, a := range got {
			acked[a.partition] = max(acked[a.partition], a.offset+1)
		}
		for _, r := range recs {
			read[r.Partition] = max(read[r.Partition], r.Offset+1)
		}
		ends, _ := adm.ListEndOffsets(context.Background(), topic)
		for p := int32(0); p < 12; p++ {
			e, _ := ends.Lookup(topic, p)
			t.Logf("partition %d: acked up to %d, read up to %d, end offset %d (leader was %d)", p, acked[p], read[p], e.Offset, before[p])
		}
		t.Fatalf("consumed %d of %d acknowledged records", len(recs), len(got))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		v := string(r.Value)
		if seen[v] {
			t.Fatalf("record %s read twice", v)
		}
		seen[v] = true
		if a, ok := got[v]; ok && (a.partition != r.Partition || a.offset != r.Offset) {
			t.Fatalf("record %s acknowledged at %d/%d but read at %d/%d", v, a.partition, a.offset, r.Partition, r.Offset)
		}
	}
	for v := range got {
		if !seen[v] {
			t.Fatalf("acknowledged record %s was lost", v)
		}
	}
	t.Logf("%d acknowledged records verified", len(got))
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acks)
}

// partitions returns the partitions with an acknowledged record.
func (a *ackLog) partitions() map[int32]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[int32]bool{}
	for _, p := range a.acks {
		out[p.partition] = true
	}
	return out
}

func (a *ackLog) snapshot() map[string]ackPos {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]ackPos, len(a.acks))
	for k, v := range a.acks {
		out[k] = v
	}
	return out
}

// TestRestartWithEmptyDisks: after a clean stop, every broker's local disk
// is deleted; after restart all committed records are read back from the
// object store through the Postgres index.
func TestRestartWithEmptyDisks(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t)})
	const topic, n = "wiped", 20_000
	prod := newClient(t, s, kgo.DefaultProduceTopic(topic))
	createTopic(t, prod, topic, 6, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Value: []byte("r" + strconv.Itoa(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	for id := 1; id <= 3; id++ {
		s.Stop(id)
	}
	for id := 1; id <= 3; id++ {
		dir := s.Broker(id).DataDir
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "wal")); !os.IsNotExist(err) {
			t.Fatalf("local disk of broker %d still there", id)
		}
	}
	for id := 1; id <= 3; id++ {
		s.Restart(id)
	}
	recs := consumeAll(t, s, topic, n)
	seen := map[string]bool{}
	for _, r := range recs {
		seen[string(r.Value)] = true
	}
	if len(seen) != n {
		t.Fatalf("read %d distinct records after the restart, want %d", len(seen), n)
	}
}
