package tieredtest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/tieredtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Object-store PUTs per second per broker stay at or below one per flush
// interval, whether 10 or 1,000 partitions receive data: one object holds
// every partition's new batches (counted through
// eddy_objstore_requests_total{op="put"}).
func TestPutsPerFlushDoNotGrowWithPartitions(t *testing.T) {
	const interval = 100 * time.Millisecond
	for _, n := range []int32{10, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: n})
			m := e.Manager(t, func(cfg *leader.Config) { cfg.FlushInterval = interval }, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()

			puts0 := e.Requests(t, "put")
			start := time.Now()
			val := 0
			last := map[int64]int64{} // partition → last offset appended
			for time.Since(start) < 2*time.Second {
				for _, p := range e.Parts["t"] {
					r := tieredtest.Append(t, m, p, tieredtest.Batch(1, []byte("k"), 100, time.Now().UnixMilli()))
					last[p] = r.LastOffset
					val++
				}
				time.Sleep(5 * time.Millisecond)
			}
			elapsed := time.Since(start)
			puts := e.Requests(t, "put") - puts0
			// Every partition commits what it was given before Run is
			// stopped: a flush whose commit is cut short by the stop may
			// have committed all the same, and the shutdown flush that
			// retries it is fenced and drops every partition.
			for _, p := range e.Parts["t"] {
				tieredtest.WaitCommitted(t, m, p, last[p])
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			// The final flush on shutdown may add one more.
			limit := float64(elapsed/interval) + 2
			t.Logf("%d partitions: %.0f PUTs in %s (%.1f/s; limit %.0f), %d batches", n, puts, elapsed.Round(time.Millisecond), puts/elapsed.Seconds(), limit, val)
			if puts > limit {
				t.Errorf("%.0f PUTs in %s with flush interval %s: more than one per flush", puts, elapsed, interval)
			}
			for _, p := range e.Parts["t"] {
				if _, hw := tieredtest.Led(t, m, p).Offsets(); hw == 0 {
					t.Fatalf("partition %d committed nothing", p)
				}
			}
		})
	}
}

// With the object store stopped under load, no acks=all record is
// acknowledged without being committed, no committed record is lost, and
// produce resumes by itself once the store is back. The outage lasts 30 s
// (3 s with -short).
func TestObjectStoreOutage(t *testing.T) {
	outage := 30 * time.Second
	if testing.Short() {
		outage = 3 * time.Second
	}
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 4})
	faulty := &tieredtest.Faulty{Bucket: e.Bucket}
	m := e.Manager(t, nil, faulty)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(ctx) }()

	type ack struct {
		pid  int64
		last int64
		at   time.Time
	}
	var (
		mu   sync.Mutex
		acks []ack
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for _, pid := range e.Parts["t"] {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := m.Partition(pid)
				if p == nil {
					t.Errorf("partition %d is no longer led", pid)
					return
				}
				raw := tieredtest.Batch(5, []byte("k"), 200, time.Now().UnixMilli())
				r := tieredtest.Append(t, m, pid, raw)
				wctx, wcancel := context.WithTimeout(ctx, outage+time.Minute)
				err := p.WaitCommitted(wctx, r.LastOffset)
				wcancel()
				if err != nil {
					t.Errorf("partition %d: acks=all wait: %v", pid, err)
					return
				}
				// Invariant 3: acknowledged means committed in Postgres.
				st, err := e.St.LoadPartition(context.Background(), pid, time.Time{})
				if err != nil {
					t.Error(err)
					return
				}
				if st.HighWatermark <= r.LastOffset {
					t.Errorf("partition %d: offset %d acknowledged above the committed hw %d", pid, r.LastOffset, st.HighWatermark)
				}
				mu.Lock()
				acks = append(acks, ack{pid, r.LastOffset, time.Now()})
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	committedBefore := committed(t, e)
	refused := faulty.Refused()
	downAt := time.Now()
	faulty.SetDown(true)
	// A flush whose PUT got in before the store went down still commits,
	// as late as a busy machine makes it. Once a later PUT was refused it
	// has (flushes take turns): from then on nothing may commit.
	poll.Until(t, time.Minute, "a PUT to be refused", func() error {
		if faulty.Refused() == refused {
			return errors.New("none refused yet")
		}
		return nil
	})
	settled := committed(t, e)
	t.Logf("the flush in flight when the store went down finished within %v", time.Since(downAt).Round(time.Millisecond))
	time.Sleep(outage)
	stuck := committed(t, e)
	upAt := time.Now() // before the store is back: later acks may follow new PUTs
	faulty.SetDown(false)
	// Produce must resume by itself: wait for acks after the restart.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, a := range acks {
			if a.at.After(upAt) {
				n++
			}
		}
		mu.Unlock()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d acks in 30s after the object store came back", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}

	// Nothing commits without a PUT: the hw moved during the outage by at
	// most what was in flight when it began, and nothing above that was
	// acknowledged before the store came back.
	for pid, hw := range stuck {
		if hw != settled[pid] {
			t.Errorf("partition %d: hw moved from %d to %d while the object store was down", pid, settled[pid], hw)
		}
	}
	var during int
	mu.Lock()
	for _, a := range acks {
		if a.at.Before(upAt) && a.last >= settled[a.pid] {
			during++
		}
	}
	mu.Unlock()
	if during > 0 {
		t.Errorf("%d acks during the outage", during)
	}
	grew := int64(0)
	for pid, hw := range stuck {
		grew += hw - committedBefore[pid]
	}
	t.Logf("outage %s: %d acks in total, hw grew by %d records around the outage's start", outage, len(acks), grew)

	// No committed record is lost: a new leader with no WAL and no cache
	// reads every acknowledged offset back from the bucket.
	m.Close()
	m2 := e.Manager(t, func(cfg *leader.Config) { cfg.WALDir = e.Dir + "/wal2" }, nil)
	final := committed(t, e)
	mu.Lock()
	defer mu.Unlock()
	for _, a := range acks {
		if a.last >= final[a.pid] {
			t.Fatalf("acknowledged offset %d of partition %d is above the committed hw %d", a.last, a.pid, final[a.pid])
		}
	}
	for pid, hw := range final {
		if n, _ := tieredtest.ReadAll(t, m2, pid, 0); n != hw {
			t.Errorf("partition %d: read back %d records, committed %d", pid, n, hw)
		}
	}
}

func committed(t *testing.T, e *tieredtest.Env) map[int64]int64 {
	t.Helper()
	out := map[int64]int64{}
	for _, pid := range e.Parts["t"] {
		st, err := e.St.LoadPartition(context.Background(), pid, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		out[pid] = st.HighWatermark
	}
	return out
}

// Stopping Run while a flush is in flight neither fails nor fences that
// flush: cancelling a Postgres commit can leave it committed while the
// caller sees an error, and the shutdown flush that then retried it was
// fenced and dropped every partition it carried (acks=all producers got
// NOT_LEADER for committed data). Every partition stays led, and all it
// was given is committed when Run returns.
func TestStopDuringFlushKeepsPartitions(t *testing.T) {
	const n = 300
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: n})
	m := e.Manager(t, func(cfg *leader.Config) { cfg.FlushInterval = 5 * time.Millisecond }, nil)
	last := map[int64]int64{}
	for round := range 8 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		deadline := time.Now().Add(time.Duration(100+round*37) * time.Millisecond)
		for time.Now().Before(deadline) {
			for _, p := range e.Parts["t"] {
				r := tieredtest.Append(t, m, p, tieredtest.Batch(1, []byte("k"), 100, time.Now().UnixMilli()))
				last[p] = r.LastOffset
			}
		}
		cancel() // most likely while a flush of many partitions is committing
		if err := <-done; err != nil {
			t.Fatalf("round %d: Run: %v", round, err)
		}
		for _, p := range e.Parts["t"] {
			if _, hw := tieredtest.Led(t, m, p).Offsets(); hw != last[p]+1 {
				t.Fatalf("round %d: partition %d committed up to %d after Run returned, want %d", round, p, hw, last[p]+1)
			}
		}
	}
}
