package broker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProducerState: idempotent producer state expires from the leader's
// memory and from Postgres after --producer-id-expiration; a burst of
// 20,000 InitProducerId requests from one cluster is granted up to the
// default budget and then throttled with THROTTLING_QUOTA_EXCEEDED.
func TestProducerState(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	const expiration = 3 * time.Second
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2, Metrics: true,
		BrokerArgs: []string{"--producer-id-expiration=" + expiration.String()}})
	st, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	cl := newClient(t, s, kgo.DefaultProduceTopic("idem"))
	createTopic(t, cl, "idem", 1, nil)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	part, err := st.PartitionByName(ctx, "vc-dev", "idem", 0)
	if err != nil {
		t.Fatal(err)
	}
	state := func() (memory float64, stored int) {
		ps, err := st.LoadPartition(ctx, part.ID, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return metricValue(scrape(t, s), "eddy_producer_states"), len(ps.Producers)
	}
	written := time.Now()
	if m, n := state(); m != 1 || n != 1 {
		t.Fatalf("after one idempotent write: %v producers in memory, %d in Postgres; want 1 and 1", m, n)
	}
	for {
		m, n := state()
		if m == 0 && n == 0 {
			break
		}
		if time.Since(written) > expiration+10*time.Second {
			t.Fatalf("%v after the write: %v producers in memory, %d in Postgres; want none", time.Since(written), m, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if since := time.Since(written); since < expiration {
		t.Fatalf("producer state gone after %v, before the expiration of %v", since, expiration)
	}

	// The burst, over four connections to one broker.
	const total, conns = 20_000, 4
	var (
		mu                 sync.Mutex
		granted, throttled int
		minThrottle        int32 = 1 << 30
		firstErr           error
		wg                 sync.WaitGroup
	)
	start := time.Now()
	for range conns {
		rc := dialRaw(t, s.Broker(1).Addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range total / conns {
				resp, err := rc.request(kmsg.NewPtrInitProducerIDRequest())
				mu.Lock()
				switch r, _ := resp.(*kmsg.InitProducerIDResponse); {
				case err != nil:
					firstErr = err
				case r.ErrorCode == 0:
					granted++
				case r.ErrorCode == kerr.ThrottlingQuotaExceeded.Code && r.ThrottleMillis > 0:
					throttled++
					minThrottle = min(minThrottle, r.ThrottleMillis)
				default:
					firstErr = errors.Join(kerr.ErrorForCode(r.ErrorCode), errors.New("throttle time not set"))
				}
				mu.Unlock()
				if firstErr != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	// The default burst, less the ids taken above, plus one a second.
	if limit := 1000 + int(elapsed.Seconds()) + 1; granted > limit || granted < 900 {
		t.Fatalf("%d of %d InitProducerId granted in %v; want between 900 and %d", granted, total, elapsed, limit)
	}
	if throttled != total-granted {
		t.Fatalf("%d throttled, %d granted of %d", throttled, granted, total)
	}
	t.Logf("%d granted, %d throttled (throttle time from %d ms) in %v", granted, throttled, minThrottle, elapsed)
}
