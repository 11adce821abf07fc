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
	// Before the send: the broker's clock for the producer starts at the
	// append, before the acknowledgement and the checks below.
	written := time.Now()
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

// TestGroupMaxSize: with --group-max-size=2, a third member's JoinGroup
// gets GROUP_MAX_SIZE_REACHED.
func TestGroupMaxSize(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2,
		BrokerArgs: []string{"--group-max-size=2", "--group-initial-rebalance-delay=0"}})
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version, fc.CoordinatorKey = 2, "capped"
	var coord *kmsg.FindCoordinatorResponse
	waitErr(t, func() error {
		coord = dialRaw(t, s.Broker(1).Addr).do(fc).(*kmsg.FindCoordinatorResponse)
		return kerr.ErrorForCode(coord.ErrorCode)
	}, nil)
	addr := s.Broker(int(coord.NodeID)).Addr
	join := func(client string) *kmsg.JoinGroupRequest {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.ProtocolType = 3, "capped", "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30_000, 30_000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte(client)
		req.Protocols = append(req.Protocols, p)
		return req
	}
	if r := dialRaw(t, addr).do(join("one")).(*kmsg.JoinGroupResponse); r.ErrorCode != 0 {
		t.Fatalf("first member: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// The second member's join parks until the first rejoins; it is a
	// member meanwhile.
	second := dialRaw(t, addr)
	go second.request(join("two"))
	admin := dialRaw(t, addr)
	waitErr(t, func() error {
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Groups = []string{"capped"}
		if r := admin.do(dg).(*kmsg.DescribeGroupsResponse); len(r.Groups[0].Members) != 2 {
			return errors.New("waiting for the second member")
		}
		return nil
	}, nil)
	third := dialRaw(t, addr)
	waitErr(t, func() error {
		return kerr.ErrorForCode(third.do(join("three")).(*kmsg.JoinGroupResponse).ErrorCode)
	}, kerr.GroupMaxSizeReached)
}
