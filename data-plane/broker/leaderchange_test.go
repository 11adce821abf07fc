package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/racebuild"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// producerStats is one client's tally while leaders change under it.
type producerStats struct {
	name    string
	mu      sync.Mutex
	ok      int
	errs    int
	lastErr error
	slowest time.Duration
}

func (p *producerStats) record(took time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errs++
		p.lastErr = err
		return
	}
	p.ok++
	p.slowest = max(p.slowest, took)
}

// TestLeaderChangesInvisibleToClients (issue 20, acceptance 6):
// segmentio/kafka-go and IBM/sarama producers with their default
// settings — the clients strictest about leadership, kafka-go treating
// LEADER_NOT_AVAILABLE as fatal and sarama refreshing metadata only every
// 10 minutes — keep producing without an error through ten partition
// moves and a broker's drain (SIGTERM: a controlled shutdown). A franz-go
// producer that may refresh metadata only every 2 minutes keeps producing
// too, each record within a minute: it follows the leader hints of
// NOT_LEADER_OR_FOLLOWER (KIP-951) rather than a metadata refresh.
func TestLeaderChangesInvisibleToClients(t *testing.T) {
	if testing.Short() {
		t.Skip("moves partitions ten times and drains a broker under three clients")
	}
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 3})
	const topic, partitions = "moves", 6
	createTopic(t, newClient(t, s), topic, partitions, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// kafka-go: defaults, but for acks (its default is none, which would
	// hide every error) and a batch timeout short enough for a test.
	kg := &kafkago.Writer{Addr: kafkago.TCP(s.Bootstrap()...), Topic: topic, RequiredAcks: kafkago.RequireAll,
		Balancer: &kafkago.RoundRobin{}, BatchTimeout: 5 * time.Millisecond}
	defer kg.Close()
	// sarama: defaults (acks=1, 3 retries 100ms apart, metadata every 10
	// minutes); a sync producer must return its successes.
	sarama.Logger = log.New(io.Discard, "", 0)
	scfg := sarama.NewConfig()
	scfg.Producer.Return.Successes = true
	if racebuild.Enabled {
		// sarama ignores the leader hints and retries three times 100 ms
		// apart, each after a metadata refresh: a budget a hand-off fits
		// in at full speed, but not always under the race detector on a
		// loaded machine (a hand-off waits for a flush and a commit). The
		// claim is about the defaults at full speed.
		scfg.Producer.Retry.Max = 10
	}
	sp, err := sarama.NewSyncProducer(s.Bootstrap(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	fg := newClient(t, s, kgo.DefaultProduceTopic(topic), kgo.MetadataMinAge(2*time.Minute), kgo.MetadataMaxAge(2*time.Minute))

	stats := []*producerStats{{name: "kafka-go"}, {name: "sarama"}, {name: "franz-go"}}
	send := []func(ctx context.Context, v string) error{
		func(ctx context.Context, v string) error {
			return kg.WriteMessages(ctx, kafkago.Message{Value: []byte(v)})
		},
		func(ctx context.Context, v string) error {
			_, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)})
			return err
		},
		func(ctx context.Context, v string) error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			return fg.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr()
		},
	}
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range stats {
		for g := range 4 { // a few records in flight per client, as an application would have
			wg.Go(func() {
				for n := 0; pctx.Err() == nil; n++ {
					start := time.Now()
					err := send[i](pctx, stats[i].name+"-"+strconv.Itoa(g)+"-"+strconv.Itoa(n))
					if errors.Is(err, context.Canceled) && pctx.Err() != nil {
						return
					}
					stats[i].record(time.Since(start), err)
					// Paced: an unpaced acks=1 client (sarama) takes the
					// CPU of a 2-core machine from the others, whose
					// count then says more about the machine than about
					// the moves.
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
	}
	// Every client gets going before leaders move.
	poll.Until(t, time.Minute, "every client producing", func() error {
		for _, p := range stats {
			p.mu.Lock()
			ok, last := p.ok, p.lastErr
			p.mu.Unlock()
			if ok < 20 {
				return fmt.Errorf("%s: %d records acknowledged (last error %v)", p.name, ok, last)
			}
		}
		return nil
	})

	before := make([]int, len(stats))
	for i, p := range stats {
		p.mu.Lock()
		before[i] = p.ok
		p.mu.Unlock()
	}
	// Ten moves, each to a broker other than the leader, one at a time.
	for round := range 10 {
		p, err := st.PartitionByName(ctx, "vc-dev", topic, int32(round%partitions))
		if err != nil {
			t.Fatal(err)
		}
		to := p.LeaderID%3 + 1
		if k, err := st.RequestMoves(ctx, []store.Move{{PartitionID: p.ID, To: to}}); err != nil || k != 1 {
			t.Fatalf("move %d: %d requested, %v", round, k, err)
		}
		poll.Until(t, time.Minute, fmt.Sprintf("move %d to complete", round), func() error {
			q, err := st.PartitionByName(ctx, "vc-dev", topic, p.Partition)
			if err != nil || q.LeaderID != to || q.MovingTo >= 0 {
				return fmt.Errorf("partition %d: leader %d, moving to %d (%v)", p.Partition, q.LeaderID, q.MovingTo, err)
			}
			return nil
		})
		time.Sleep(200 * time.Millisecond)
	}
	// A broker drains and stops, as in a rolling restart or a scale-in.
	s.Stop(3)
	if err := s.Exit(3); err != nil {
		t.Errorf("broker 3 exited with %v after SIGTERM", err)
	}
	time.Sleep(2 * time.Second)
	stop()
	wg.Wait()

	for i, p := range stats {
		t.Logf("%s: %d records acknowledged (%d during the moves and the drain), %d errors (last: %v), slowest %v",
			p.name, p.ok, p.ok-before[i], p.errs, p.lastErr, p.slowest)
		if p.errs > 0 {
			t.Errorf("%s: %d produce errors through the leader changes; last: %v", p.name, p.errs, p.lastErr)
		}
		if p.ok-before[i] < 20 {
			t.Errorf("%s: only %d records acknowledged while leaders changed: it did not produce through them", p.name, p.ok-before[i])
		}
	}
}
