package broker_test

import (
	"context"
	"fmt"
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
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// shareArgs make share groups start at the log start (tests produce
// first) and locks expire quickly.
var shareArgs = []string{
	"--share-auto-offset-reset", "earliest",
	"--share-record-lock-duration", "2s",
	"--share-heartbeat-interval", "250ms",
	"--share-session-timeout", "6s",
}

// shareLedger records every delivery of every value to the members of a
// share group.
type shareLedger struct {
	mu         sync.Mutex
	deliveries map[string][]shareDelivery
	members    map[string]int       // records each member received
	confirmed  map[string]time.Time // when the broker confirmed a value's acknowledgement
	ackErrs    atomic.Int64
}

type shareDelivery struct {
	member string
	count  int32 // the broker's delivery count
	at     time.Time
}

func newShareLedger() *shareLedger {
	return &shareLedger{deliveries: map[string][]shareDelivery{}, members: map[string]int{}, confirmed: map[string]time.Time{}}
}

func (l *shareLedger) add(member string, recs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for _, r := range recs {
		v := string(r.Value)
		l.deliveries[v] = append(l.deliveries[v], shareDelivery{member, r.DeliveryCount(), now})
	}
	l.members[member] += len(recs)
}

// confirm records that the acknowledgements of recs were confirmed, except
// those of the partitions in failed.
func (l *shareLedger) confirm(recs []*kgo.Record, failed map[int32]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for _, r := range recs {
		if !failed[r.Partition] {
			l.confirmed[string(r.Value)] = now
		}
	}
}

// redeliveredAfterAck returns a value delivered again after its
// acknowledgement was confirmed, if any.
func (l *shareLedger) redeliveredAfterAck() (string, []shareDelivery, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for v, at := range l.confirmed {
		for _, d := range l.deliveries[v] {
			if d.at.After(at) {
				return v, l.deliveries[v], true
			}
		}
	}
	return "", nil, false
}

func (l *shareLedger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.deliveries)
}

// shareMember consumes group's topic until ctx ends, handing every poll to
// handle (which acknowledges) and flushing the acknowledgements before the
// next poll.
func shareMember(ctx context.Context, t *testing.T, s *stack.Stack, group, topic, name string, l *shareLedger, handle func([]*kgo.Record)) *sync.WaitGroup {
	t.Helper()
	var fmu sync.Mutex
	failed := map[int32]bool{} // partitions whose acknowledgements failed since the last poll
	cl := newClient(t, s, kgo.ShareGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(500*time.Millisecond),
		kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
			for _, r := range rs {
				if r.Err != nil {
					l.ackErrs.Add(1)
					t.Logf("%s: acknowledgement of partition %d failed: %v", name, r.Partition, r.Err)
					fmu.Lock()
					failed[r.Partition] = true
					fmu.Unlock()
				}
			}
		}))
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cl.Close()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(tp string, p int32, err error) {
				if ctx.Err() == nil {
					t.Logf("%s: fetch error %s/%d: %v", name, tp, p, err)
				}
			})
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			l.add(name, recs)
			fmu.Lock()
			clear(failed)
			fmu.Unlock()
			handle(recs)
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := cl.FlushAcks(fctx)
			cancel()
			if err != nil {
				t.Logf("%s: flushing acknowledgements: %v", name, err)
				continue
			}
			fmu.Lock()
			l.confirm(recs, failed)
			fmu.Unlock()
		}
	})
	return &wg
}

func acceptAll(recs []*kgo.Record) {
	for _, r := range recs {
		r.Ack(kgo.AckAccept)
	}
}

// TestShareGroupQueue (issue 26, acceptance 1): six share consumers read a
// two-partition topic at once; every record is delivered and accepted
// exactly once across the group, and every consumer received records.
func TestShareGroupQueue(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: shareArgs})
	prod := newClient(t, s)
	const topic, grp, n = "share-queue", "share-queue", 100_000
	createTopic(t, prod, topic, 2, nil)
	produceValues(t, prod, topic, "q", n, 1000, 0)

	l := newShareLedger()
	ctx, cancel := context.WithCancel(context.Background())
	var members []*sync.WaitGroup
	for i := range 6 {
		members = append(members, shareMember(ctx, t, s, grp, topic, "m"+strconv.Itoa(i), l, acceptAll))
	}
	deadline, dcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer dcancel()
	ok := stack.WaitFor(deadline, func() bool { return l.distinct() >= n })
	cancel()
	for _, m := range members {
		m.Wait()
	}
	if !ok {
		t.Fatalf("received %d of %d values", l.distinct(), n)
	}
	for i := range n {
		if d := l.deliveries["q"+strconv.Itoa(i)]; len(d) != 1 {
			t.Errorf("value q%d delivered %d times: %v", i, len(d), d)
			break
		}
	}
	if len(l.members) != 6 {
		t.Errorf("records per member %v: not all six received records", l.members)
	}
	if e := l.ackErrs.Load(); e != 0 {
		t.Errorf("%d acknowledgements failed", e)
	}
	t.Logf("records per member: %v", l.members)
}

// TestShareGroupRedelivery (issue 26, acceptance 2): records a member
// holds without acknowledging go to another member once their lock
// expires; a released record is delivered again, a rejected one never;
// a record released up to the delivery limit is archived.
func TestShareGroupRedelivery(t *testing.T) {
	args := append([]string{"--share-delivery-count-limit", "3"}, shareArgs...)
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 1, BrokerArgs: args})
	prod := newClient(t, s)
	createTopic(t, prod, "share-redeliver", 1, nil)
	produceValues(t, prod, "share-redeliver", "r", 10, 10, 0)

	// A member that takes records and then sits on them.
	hold := newClient(t, s, kgo.ShareGroup("redeliver"), kgo.ConsumeTopics("share-redeliver"), kgo.FetchMaxWait(500*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var held []*kgo.Record
	for len(held) == 0 && ctx.Err() == nil {
		held = hold.PollFetches(ctx).Records()
	}
	hold.PauseFetchTopics("share-redeliver") // hold them: fetch no more
	if len(held) != 10 {
		t.Fatalf("the holding member got %d records, want all 10 (one batch)", len(held))
	}
	taken := time.Now()

	l := newShareLedger()
	var released, rejected atomic.Value
	mctx, mcancel := context.WithCancel(context.Background())
	m := shareMember(mctx, t, s, "redeliver", "share-redeliver", "other", l, func(recs []*kgo.Record) {
		for _, r := range recs {
			switch v := string(r.Value); {
			case v == "r1" && r.DeliveryCount() == 2 && released.Load() == nil:
				released.Store(v)
				r.Ack(kgo.AckRelease) // delivered again, a third time
			case v == "r2":
				rejected.Store(v)
				r.Ack(kgo.AckReject) // never delivered again
			case v == "r3":
				r.Ack(kgo.AckRelease) // until the limit of 3: archived
			default:
				r.Ack(kgo.AckAccept)
			}
		}
	})
	defer func() { mcancel(); m.Wait() }()
	poll.Until(t, 30*time.Second, "the held records to reach the other member", func() error {
		if n := l.distinct(); n < 10 {
			return fmt.Errorf("%d of 10 values redelivered", n)
		}
		return nil
	})
	// Three deliveries of r3 (the first to the holder) and a second of r1
	// take at least a lock each; then nothing is delivered again.
	time.Sleep(3 * time.Second)
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.deliveries["r0"][0]
	if first.at.Sub(taken) < 1500*time.Millisecond || first.count != 2 {
		t.Errorf("r0 reached the other member %v after it was taken, delivery %d: want after the 2s lock, delivery 2", first.at.Sub(taken), first.count)
	}
	for v, want := range map[string]int{"r0": 1, "r1": 2, "r2": 1, "r3": 2, "r9": 1} {
		if got := len(l.deliveries[v]); got != want {
			t.Errorf("%s delivered %d times to the other member, want %d: %v", v, got, want, l.deliveries[v])
		}
	}
	if d := l.deliveries["r3"]; len(d) == 2 && d[1].count != 3 {
		t.Errorf("r3's last delivery has count %d, want 3", d[1].count)
	}
	if e := l.ackErrs.Load(); e != 0 {
		t.Errorf("%d acknowledgements failed", e)
	}
}

// consumeShare reads group's topic with a new share consumer, accepting
// everything, until it holds want values, then leaves the group. It
// returns the values received.
func consumeShare(t *testing.T, s *stack.Stack, group, topic string, want int) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), kgo.ShareGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := map[string]bool{}
	for len(got) < want && ctx.Err() == nil {
		recs := cl.PollFetches(ctx).Records()
		for _, r := range recs {
			got[string(r.Value)] = true
		}
		cl.MarkAcks(kgo.AckAccept)
		if err := cl.FlushAcks(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) < want {
		t.Fatalf("share consumer got %d of %d values", len(got), want)
	}
	return got
}

// TestShareGroupOffsets (issue 26, acceptance 4): a share group's offsets
// are described, reset to the earliest and latest offsets and to a
// timestamp, and deleted through kadm; a consumer then reads from there.
func TestShareGroupOffsets(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 1, BrokerArgs: shareArgs})
	prod := newClient(t, s)
	adm := kadm.NewClient(prod)
	const topic, grp = "share-offsets", "share-offsets"
	createTopic(t, prod, topic, 2, nil)
	produceValues(t, prod, topic, "a", 50, 50, 0)
	time.Sleep(20 * time.Millisecond)
	middle := time.Now().UnixMilli()
	time.Sleep(20 * time.Millisecond)
	produceValues(t, prod, topic, "b", 50, 50, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}

	// describe checks the group's start offsets against want (nil: none
	// stored) and its lag against lag.
	describe := func(what string, want kadm.ListedOffsets, lag func(p int32) int64) {
		t.Helper()
		d, err := adm.DescribeShareGroupOffsets(ctx, grp)
		if err != nil || d[grp].Err != nil {
			t.Fatalf("%s: describe: %v %v", what, err, d[grp].Err)
		}
		got := d[grp].Offsets[topic]
		if want == nil {
			if len(got) != 0 {
				t.Fatalf("%s: offsets %+v, want none", what, got)
			}
			return
		}
		for p := range int32(2) {
			w, _ := want.Lookup(topic, p)
			if o := got[p]; o.StartOffset != w.Offset || o.Lag != lag(p) || o.Err != nil {
				t.Errorf("%s: partition %d start %d lag %d (%v), want start %d lag %d", what, p, o.StartOffset, o.Lag, o.Err, w.Offset, lag(p))
			}
		}
	}
	alter := func(what string, to kadm.ListedOffsets) {
		t.Helper()
		r, err := adm.AlterShareGroupOffsets(ctx, grp, to.Offsets())
		if err != nil || r.Error() != nil {
			t.Fatalf("%s: alter: %v %v", what, err, r.Error())
		}
	}
	none := func(int32) int64 { return 0 }
	all := func(p int32) int64 { o, _ := ends.Lookup(topic, p); return o.Offset }

	consumeShare(t, s, grp, topic, 100)
	describe("consumed", ends, none)

	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	alter("earliest", starts)
	describe("earliest", starts, all)
	if got := consumeShare(t, s, grp, topic, 100); len(got) != 100 {
		t.Fatalf("after the reset to earliest got %d values", len(got))
	}

	alter("latest", ends)
	describe("latest", ends, none)

	at, err := adm.ListOffsetsAfterMilli(ctx, middle, topic)
	if err != nil {
		t.Fatal(err)
	}
	alter("timestamp", at)
	got := consumeShare(t, s, grp, topic, 50)
	for v := range got {
		if v[0] != 'b' {
			t.Fatalf("after the reset to a timestamp between a and b got %s", v)
		}
	}

	// Not while the group has a member.
	member := newClient(t, s, kgo.ShareGroup(grp), kgo.ConsumeTopics(topic))
	poll.Until(t, 30*time.Second, "the member to join", func() error {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		member.PollFetches(pctx) // joins; nothing is left to read
		pcancel()
		d, err := adm.DescribeShareGroups(ctx, grp)
		if err != nil {
			return err
		}
		if n := len(d[grp].Members); n != 1 {
			return fmt.Errorf("%d members", n)
		}
		return nil
	})
	if _, err := adm.AlterShareGroupOffsets(ctx, grp, starts.Offsets()); err == nil {
		t.Fatal("altered the offsets of a group with a member")
	}
	member.Close()

	r, err := adm.DeleteShareGroupOffsets(ctx, grp, topic)
	if err != nil || r.Error() != nil {
		t.Fatalf("delete: %v %v", err, r.Error())
	}
	describe("deleted", nil, nil)
	// Deleted: the group starts over at share.auto.offset.reset (earliest).
	consumeShare(t, s, grp, topic, 100)
}

// TestShareGroupFailover (issue 26, acceptance 3): the broker holding the
// share group's coordinator and then a partition's leader are killed
// (SIGKILL) while six members consume; no record is delivered again after
// its acknowledgement was confirmed, and every record ends acknowledged.
func TestShareGroupFailover(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, BrokerArgs: shareArgs})
	prod := newClient(t, s)
	adm := kadm.NewClient(prod)
	const topic, grp, n = "share-failover", "share-failover", 20_000
	createTopic(t, prod, topic, 2, nil)
	produceValues(t, prod, topic, "f", n, 500, 0)

	l := newShareLedger()
	ctx, cancel := context.WithCancel(context.Background())
	var members []*sync.WaitGroup
	slow := func(recs []*kgo.Record) {
		time.Sleep(20 * time.Millisecond) // keep the consumption going through the kills
		acceptAll(recs)
	}
	for i := range 6 {
		members = append(members, shareMember(ctx, t, s, grp, topic, "m"+strconv.Itoa(i), l, slow))
	}
	stop := sync.OnceFunc(func() {
		cancel()
		for _, m := range members {
			m.Wait()
		}
	})
	defer stop()
	wait := func(count int) {
		t.Helper()
		poll.Until(t, 2*time.Minute, "the members to receive "+strconv.Itoa(count)+" values", func() error {
			if got := l.distinct(); got < count {
				return fmt.Errorf("%d values", got)
			}
			return nil
		})
	}
	wait(n / 4)
	coord := coordinatorOf(t, adm, grp)
	t.Logf("killing the coordinator, broker %d", coord)
	s.Kill(int(coord))
	wait(n / 2)
	s.Restart(int(coord))
	// Partition 0's leader as placed (Metadata names a stand-in while a
	// partition has none), once it answers.
	st, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var lead int32 = -1
	poll.Until(t, time.Minute, "partition 0 to have a live leader", func() error {
		if ends, err := adm.ListEndOffsets(ctx, topic); err != nil || ends.Error() != nil {
			return fmt.Errorf("end offsets: %v %v", err, ends.Error())
		}
		p, err := st.PartitionByName(ctx, "vc-dev", topic, 0)
		if err != nil || p.LeaderID < 0 {
			return fmt.Errorf("leader %d (%v)", p.LeaderID, err)
		}
		lead = p.LeaderID
		return nil
	})
	t.Logf("killing partition 0's leader, broker %d", lead)
	s.Kill(int(lead))
	wait(n)

	var ends kadm.ListedOffsets
	poll.Until(t, time.Minute, "end offsets from the partitions' new leaders", func() error {
		var err error
		if ends, err = adm.ListEndOffsets(ctx, topic); err == nil {
			err = ends.Error()
		}
		return err
	})
	poll.Until(t, 2*time.Minute, "every record to be acknowledged", func() error {
		d, err := adm.DescribeShareGroupOffsets(ctx, grp)
		if err != nil {
			return err
		}
		for p := range int32(2) {
			end, _ := ends.Lookup(topic, p)
			if o := d[grp].Offsets[topic][p]; o.StartOffset != end.Offset || o.Lag != 0 {
				return fmt.Errorf("partition %d: start %d lag %d, end %d", p, o.StartOffset, o.Lag, end.Offset)
			}
		}
		return nil
	})
	stop()
	if v, ds, ok := l.redeliveredAfterAck(); ok {
		t.Errorf("value %s delivered again after its acknowledgement was confirmed at %v: %v", v, l.confirmed[v], ds)
	}
	t.Logf("records per member: %v; failed acknowledgements: %d", l.members, l.ackErrs.Load())
}

// A partition (Alter) or topic (Delete) named twice in one request is
// INVALID_REQUEST for the repeat; the others are applied, not failed by
// Postgres refusing two rows for one key in one statement.
func TestShareGroupOffsetsDuplicates(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 1, BrokerArgs: shareArgs})
	cl := newClient(t, s)
	const topic, grp = "share-dups", "share-dups"
	createTopic(t, cl, topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	alter := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	alter.GroupID = grp
	at := kmsg.NewAlterShareGroupOffsetsRequestTopic()
	at.Topic = topic
	for _, p := range []int32{0, 1, 0} {
		ap := kmsg.NewAlterShareGroupOffsetsRequestTopicPartition()
		ap.Partition, ap.StartOffset = p, 0
		at.Partitions = append(at.Partitions, ap)
	}
	alter.Topics = append(alter.Topics, at)
	ar, err := alter.RequestWith(ctx, cl)
	if err != nil || ar.ErrorCode != 0 || len(ar.Topics) != 1 {
		t.Fatalf("alter: %v %+v", err, ar)
	}
	var codes []int16
	for _, p := range ar.Topics[0].Partitions {
		codes = append(codes, p.ErrorCode)
	}
	if want := []int16{0, 0, kerr.InvalidRequest.Code}; fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("alter with partition 0 twice answered %v, want %v", codes, want)
	}

	// Item 15 rides along: a group with stored state and no members is
	// Empty, and GROUP_ID_NOT_FOUND once its state is deleted.
	describe := func() (int16, string) {
		t.Helper()
		req := kmsg.NewPtrShareGroupDescribeRequest()
		req.GroupIDs = []string{grp}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Groups) != 1 {
			t.Fatalf("describe: %v %+v", err, resp)
		}
		return resp.Groups[0].ErrorCode, resp.Groups[0].GroupState
	}
	if code, state := describe(); code != 0 || state != "Empty" {
		t.Fatalf("a group with stored state described as %d %q, want Empty", code, state)
	}

	del := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
	del.GroupID = grp
	for range 2 {
		dt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
		dt.Topic = topic
		del.Topics = append(del.Topics, dt)
	}
	dr, err := del.RequestWith(ctx, cl)
	if err != nil || dr.ErrorCode != 0 || len(dr.Topics) != 2 {
		t.Fatalf("delete: %v %+v", err, dr)
	}
	if c0, c1 := dr.Topics[0].ErrorCode, dr.Topics[1].ErrorCode; c0 != 0 || c1 != kerr.InvalidRequest.Code {
		t.Fatalf("delete with the topic twice answered %d and %d, want 0 and INVALID_REQUEST", c0, c1)
	}
	if code, _ := describe(); code != kerr.GroupIDNotFound.Code {
		t.Fatalf("a group without state or members described with code %d, want GROUP_ID_NOT_FOUND", code)
	}
}
