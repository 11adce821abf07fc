package broker_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kip848 are the options of a franz-go member using the KIP-848 protocol.
var kip848 = []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer())}

// describeConsumerGroup returns ConsumerGroupDescribe's answer for grp.
func describeConsumerGroup(ctx context.Context, cl *kgo.Client, grp string) (kmsg.ConsumerGroupDescribeResponseGroup, error) {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{grp}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return kmsg.ConsumerGroupDescribeResponseGroup{}, err
	}
	if len(resp.Groups) != 1 {
		return kmsg.ConsumerGroupDescribeResponseGroup{}, fmt.Errorf("%d groups described", len(resp.Groups))
	}
	g := resp.Groups[0]
	return g, kerr.ErrorForCode(g.ErrorCode)
}

// assignedTopics returns the topics of the group's members' assignments,
// with their partition counts.
func assignedTopics(g kmsg.ConsumerGroupDescribeResponseGroup) map[string]int {
	out := map[string]int{}
	for _, m := range g.Members {
		for _, tp := range m.Assignment.TopicPartitions {
			out[tp.Topic] += len(tp.Partitions)
		}
	}
	return out
}

// TestKIP848RegexSubscription: a franz-go consumer using the KIP-848
// protocol subscribes to orders-.*; the broker resolves the regex
// (SubscribedTopicRegex, not names the client resolved): it gets the
// partitions of orders-1, then those of orders-2, created after it joined,
// and never any of payments.
func TestKIP848RegexSubscription(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: append([]string{"--group-consumer-regex-refresh-interval", "500ms"}, groupArgs...)})
	prod := newClient(t, s)
	createTopic(t, prod, "orders-1", 3, nil)
	createTopic(t, prod, "payments", 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produce := func(topic string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%s-%d", topic, i))}).FirstErr(); err != nil {
				t.Fatalf("produce to %s: %v", topic, err)
			}
		}
	}
	produce("orders-1", 30)
	produce("payments", 30)

	opts := append([]kgo.Opt{
		kgo.ConsumerGroup("orders"), kgo.ConsumeRegex(), kgo.ConsumeTopics("orders-.*"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.MetadataMinAge(250 * time.Millisecond), kgo.MetadataMaxAge(time.Second),
	}, kip848...)
	cons := newClient(t, s, opts...)

	var mu sync.Mutex
	got := map[string]int{}
	pollDone := make(chan struct{})
	pollCtx, stopPoll := context.WithCancel(ctx)
	go func() {
		defer close(pollDone)
		for pollCtx.Err() == nil {
			fs := cons.PollFetches(pollCtx)
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { got[r.Topic]++ })
			mu.Unlock()
		}
	}()
	defer func() { stopPoll(); <-pollDone }()
	count := func(topic string) int {
		mu.Lock()
		defer mu.Unlock()
		return got[topic]
	}
	if !stack.WaitFor(ctx, func() bool { return count("orders-1") == 30 }) {
		t.Fatalf("consumed %d of orders-1's 30 records", count("orders-1"))
	}

	// The member joined and consumes; orders-2 is created only now.
	createTopic(t, prod, "orders-2", 2, nil)
	produce("orders-2", 20)
	if !stack.WaitFor(ctx, func() bool { return count("orders-2") == 20 }) {
		t.Fatalf("consumed %d of orders-2's 20 records, created after the member joined", count("orders-2"))
	}

	var last string
	if !stack.WaitFor(ctx, func() bool {
		g, err := describeConsumerGroup(ctx, prod, "orders")
		if err != nil || len(g.Members) != 1 {
			last = fmt.Sprint(err, len(g.Members))
			return false
		}
		m := g.Members[0]
		regex := "<nil>"
		if m.SubscribedTopicRegex != nil {
			regex = *m.SubscribedTopicRegex
		}
		a := assignedTopics(g)
		last = fmt.Sprintf("state %s regex %s subscribed %v assigned %v", g.State, regex, m.SubscribedTopics, a)
		return g.State == "Stable" && strings.Contains(regex, "orders-.*") && a["orders-1"] == 3 && a["orders-2"] == 2 && len(a) == 2
	}) {
		t.Fatalf("group did not settle on orders-1 and orders-2: %s", last)
	}
	produce("orders-1", 10)
	if !stack.WaitFor(ctx, func() bool { return count("orders-1") == 40 }) {
		t.Fatalf("consumed %d of orders-1's 40 records", count("orders-1"))
	}
	if n := count("payments"); n != 0 {
		t.Fatalf("consumed %d records of payments, which orders-.* does not match", n)
	}
}

// TestKIP848RegexErrors: an invalid or oversized regex is
// INVALID_REGULAR_EXPRESSION, as is one regex more than a group may hold.
func TestKIP848RegexErrors(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: []string{"--group-consumer-max-regexes", "1", "--group-consumer-max-regex-length", "64"}})
	cl := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	join := func(member, regex string) int16 {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.RebalanceTimeoutMillis = "regex-errors", member, 30000
		req.SubscribedTopicRegex, req.Topics = &regex, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		// The group's coordinator may not be placed yet just after the
		// stack started: ask again until one answers.
		for {
			resp, err := req.RequestWith(ctx, cl)
			if errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.NotCoordinator) ||
				err == nil && (resp.ErrorCode == kerr.CoordinatorNotAvailable.Code || resp.ErrorCode == kerr.NotCoordinator.Code) {
				select {
				case <-ctx.Done():
					t.Fatalf("no coordinator for the group: %v", ctx.Err())
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			return resp.ErrorCode
		}
	}
	for _, tc := range []struct {
		name, member, regex string
		want                *kerr.Error
	}{
		{"invalid", "a", "orders-(", kerr.InvalidRegularExpression},
		{"too long", "a", strings.Repeat("x", 65), kerr.InvalidRegularExpression},
		{"first regex", "a", "orders-.*", nil},
		{"same regex, another member", "b", "orders-.*", nil},
		{"a second distinct regex", "c", "payments", kerr.InvalidRegularExpression},
	} {
		want := int16(0)
		if tc.want != nil {
			want = tc.want.Code
		}
		if got := join(tc.member, tc.regex); got != want {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(got), tc.want)
		}
	}
}

// TestKIP848Migration: a classic group of three franz-go consumers
// (cooperative-sticky, and range) is switched member by member to the
// KIP-848 protocol while a producer writes: each step starts a KIP-848
// member and then stops a classic one. The first KIP-848 member converts
// the group online (its classic members show in ConsumerGroupDescribe); at
// the end only KIP-848 members remain. The way back (downgrade) switches
// KIP-848 members to classic ones, and the group is a classic group again
// once the last KIP-848 member left. Every record is processed, and none
// again after its commit was confirmed (the ledger counts each record's
// processings), so committed offsets survive each conversion.
func TestKIP848Migration(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: groupArgs})
	prod := newClient(t, s)
	coop := []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}
	for _, tc := range []struct {
		name      string
		from, to  []kgo.Opt
		toClassic bool
	}{
		// Cooperative members give partitions up one by one; eager
		// ones (range) give up all of them at every rejoin.
		{"upgrade cooperative-sticky", coop, kip848, false},
		{"upgrade range", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}, kip848, false},
		{"downgrade", kip848, coop, true},
	} {
		grp := "migrate-" + strings.ReplaceAll(tc.name, " ", "-")
		t.Run(tc.name, func(t *testing.T) { testMigration(t, s, prod, grp, tc.from, tc.to, tc.toClassic) })
	}
}

// memberTypes lists the members' protocols, sorted: 0 classic, 1 consumer.
func memberTypes(g kmsg.ConsumerGroupDescribeResponseGroup) string {
	var ts []string
	for _, m := range g.Members {
		ts = append(ts, fmt.Sprint(m.MemberType))
	}
	sort.Strings(ts)
	return strings.Join(ts, ",")
}

func testMigration(t *testing.T, s *stack.Stack, prod *kgo.Client, grp string, from, to []kgo.Opt, toClassic bool) {
	topic, n := grp, 15000
	createTopic(t, prod, topic, 12, nil)
	l := newLedger()
	var old []*member
	for i := 0; i < 3; i++ {
		old = append(old, startMember(t, s, grp, topic, l, 0, nil, from...))
	}
	produced := make(chan struct{})
	go func() { defer close(produced); produceValues(t, prod, topic, "v", n, 100, 100*time.Millisecond) }()
	waitCount(t, l, n/10, time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// waitGroup waits until the group's description satisfies ok.
	waitGroup := func(what string, ok func(g kmsg.ConsumerGroupDescribeResponseGroup) bool) {
		t.Helper()
		var last string
		if !stack.WaitFor(ctx, func() bool {
			g, err := describeConsumerGroup(ctx, prod, grp)
			if err != nil {
				last = err.Error()
				return false
			}
			last = fmt.Sprintf("state %s member types %s assigned %v", g.State, memberTypes(g), assignedTopics(g))
			return ok(g)
		}) {
			t.Fatalf("%s: %s", what, last)
		}
	}
	fromType, toType := "0", "1"
	if toClassic {
		fromType, toType = toType, fromType
	}
	for i := range old {
		startMember(t, s, grp, topic, l, 0, nil, to...)
		// The group is a consumer group holding the new member beside the
		// old ones still there, with every partition assigned.
		var types []string
		for j := range 3 {
			if j >= i { // old[i:] are still there
				types = append(types, fromType)
			}
			if j <= i { // and i+1 new ones
				types = append(types, toType)
			}
		}
		sort.Strings(types)
		want := strings.Join(types, ",")
		waitGroup(fmt.Sprintf("step %d: group did not take the new member", i), func(g kmsg.ConsumerGroupDescribeResponseGroup) bool {
			return memberTypes(g) == want && assignedTopics(g)[topic] == 12
		})
		before := l.count()
		old[i].stop()
		waitCount(t, l, min(before+n/10, n), time.Minute)
	}
	if toClassic {
		var last string
		if !stack.WaitFor(ctx, func() bool {
			_, err := describeConsumerGroup(ctx, prod, grp)
			ds, derr := kadm.NewClient(prod).DescribeGroups(ctx, grp)
			d := ds[grp]
			last = fmt.Sprintf("ConsumerGroupDescribe: %v; DescribeGroups: %v %v state %s protocol type %s, %d members", err, derr, d.Err, d.State, d.ProtocolType, len(d.Members))
			return errors.Is(err, kerr.GroupIDNotFound) && derr == nil && d.Err == nil && d.State == "Stable" && d.ProtocolType == "consumer" && len(d.Members) == 3
		}) {
			t.Fatalf("group did not become a Stable classic group: %s", last)
		}
	} else {
		waitGroup("group did not settle with three KIP-848 members", func(g kmsg.ConsumerGroupDescribeResponseGroup) bool {
			return g.State == "Stable" && memberTypes(g) == "1,1,1" && assignedTopics(g)[topic] == 12
		})
	}
	<-produced
	waitCount(t, l, n, time.Minute)
	l.check(t, "v", n)
}
