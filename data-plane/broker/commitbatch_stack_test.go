package broker_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
)

// metricSum adds up the samples of one metric (all label sets) in a
// Prometheus text page.
func metricSum(page, name string) float64 {
	var sum float64
	for _, l := range strings.Split(page, "\n") {
		rest, ok := strings.CutPrefix(l, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// TestOffsetCommitsBatchedOverKafka: Kafka clients committing concurrently
// to one coordinator get their commits written in fewer statements than
// commits, and every commit is readable; a clean broker shutdown while
// they commit loses no acknowledged commit.
func TestOffsetCommitsBatchedOverKafka(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 1, Metrics: true, BrokerArgs: groupArgs})
	createTopic(t, newClient(t, s), "committed", 4, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const committers, rounds = 24, 15
	adms := make([]*kadm.Client, committers)
	for i := range adms {
		adms[i] = kadm.NewClient(newClient(t, s))
	}
	// commit commits offset at to every partition of the committer's
	// group; ok reports an error-free answer (an acknowledged commit).
	commit := func(ctx context.Context, i int, at int64) (ok bool, err error) {
		var os kadm.Offsets
		for p := range int32(4) {
			os.AddOffset("committed", p, at+int64(p), -1)
		}
		r, err := adms[i].CommitOffsets(ctx, fmt.Sprint("batched-", i), os)
		if err == nil {
			err = r.Error()
		}
		return err == nil, err
	}
	fetched := func(i int) (int64, error) {
		r, err := adms[i].FetchOffsets(ctx, fmt.Sprint("batched-", i))
		if err == nil {
			err = r.Error()
		}
		if err != nil {
			return -1, err
		}
		o0, ok := r.Lookup("committed", 0)
		if !ok {
			return -1, nil
		}
		for p := range int32(4) {
			if o, ok := r.Lookup("committed", p); !ok || o.At != o0.At+int64(p) {
				return -1, fmt.Errorf("torn commit: partition %d at %+v, partition 0 at %d", p, o, o0.At)
			}
		}
		return o0.At, nil
	}

	// Phase 1: every committer commits rounds times, retrying until the
	// coordinator is placed.
	var wg sync.WaitGroup
	errs := make([]error, committers)
	for i := range committers {
		wg.Go(func() {
			for k := range rounds {
				for {
					ok, err := commit(ctx, i, int64(100*k))
					if ok {
						break
					}
					if ctx.Err() != nil {
						errs[i] = fmt.Errorf("committer %d round %d: %w", i, k, err)
						return
					}
					time.Sleep(100 * time.Millisecond) // retry pacing
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range committers {
		if at, err := fetched(i); err != nil || at != 100*(rounds-1) {
			t.Fatalf("group %d: fetched %d (%v), want %d", i, at, err, 100*(rounds-1))
		}
	}
	page := scrape(t, s)
	statements := metricSum(page, "eddy_offset_commit_batches_total")
	rows := metricSum(page, "eddy_offset_commit_batch_rows_sum")
	t.Logf("%d commits over Kafka took %v statements (%v rows)", committers*rounds, statements, rows)
	if statements < 1 || rows < 4*committers*rounds {
		t.Fatalf("metrics: %v statements, %v rows for %d commits of 4 rows:\n%s",
			statements, rows, committers*rounds, grepLines(page, "eddy_offset_commit"))
	}
	if statements >= committers*rounds {
		t.Fatalf("%d concurrent commits took %v statements: nothing was batched", committers*rounds, statements)
	}

	// Phase 2: the broker stops cleanly while everyone commits. Every
	// acknowledged commit survives; an unanswered one may or may not.
	var acked, tried [committers]atomic.Int64
	stop := make(chan struct{})
	for i := range committers {
		acked[i].Store(100 * (rounds - 1))
		wg.Go(func() {
			for k := int64(rounds); ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				tried[i].Store(100 * k)
				// kgo retries a commit across the broker's absence; give up
				// after a while so the committers can stop.
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				ok, _ := commit(cctx, i, 100*k)
				cancel()
				if ok {
					acked[i].Store(100 * k)
				} else {
					time.Sleep(50 * time.Millisecond) // the broker is going away
				}
			}
		})
	}
	if !stack.WaitFor(ctx, func() bool {
		for i := range committers {
			if acked[i].Load() < 100*(rounds+2) {
				return false
			}
		}
		return true
	}) {
		t.Fatal("committers made no progress")
	}
	s.Stop(1)
	close(stop)
	wg.Wait()
	s.Restart(1)
	for i := range committers {
		var at int64
		var err error
		if !stack.WaitFor(ctx, func() bool { at, err = fetched(i); return err == nil }) {
			t.Fatalf("group %d: offsets not readable after the restart: %v", i, err)
		}
		if at < acked[i].Load() || at > tried[i].Load() {
			t.Errorf("group %d: fetched %d after the restart; acknowledged %d, last tried %d", i, at, acked[i].Load(), tried[i].Load())
		}
	}
}
