package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// groupArgs make classic groups form quickly in tests.
var groupArgs = []string{"--group-initial-rebalance-delay", "200ms"}

// ledger records every processing of every value by the members of a
// group, and when its commit was confirmed. A value may be processed again
// only from the uncommitted window: a re-processing that starts after an
// earlier processing's commit was confirmed means a committed offset was
// lost, which check reports.
type ledger struct {
	mu       sync.Mutex
	seen     map[string][]*processing
	forgiven map[string]bool // values whose re-processing is expected (see forgive)
	unknown  atomic.Int64    // UNKNOWN_MEMBER_ID responses seen by members
}

type processing struct {
	member    string
	partition int32
	offset    int64
	at        time.Time
	confirmed time.Time // zero until the commit covering it is confirmed
}

func (p *processing) String() string {
	s := fmt.Sprintf("%s p%d/o%d at %s", p.member, p.partition, p.offset, p.at.Format("15:04:05.000"))
	if !p.confirmed.IsZero() {
		s += " committed " + p.confirmed.Format("15:04:05.000")
	}
	return s
}

func newLedger() *ledger {
	return &ledger{seen: map[string][]*processing{}, forgiven: map[string]bool{}}
}

func (l *ledger) process(member string, recs []*kgo.Record) []*processing {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	out := make([]*processing, len(recs))
	for i, r := range recs {
		out[i] = &processing{member: member, partition: r.Partition, offset: r.Offset, at: now}
		l.seen[string(r.Value)] = append(l.seen[string(r.Value)], out[i])
	}
	return out
}

func (l *ledger) confirm(ps []*processing) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for _, p := range ps {
		p.confirmed = now
	}
}

// redelivered returns the values processed more than once.
func (l *ledger) redelivered() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for v, ps := range l.seen {
		if len(ps) > 1 {
			out[v] = true
		}
	}
	return out
}

// forgive allows any re-processing of vs (e.g. values an upstream stage
// produced twice).
func (l *ledger) forgive(vs map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for v := range vs {
		l.forgiven[v] = true
	}
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// check fails t unless every value of prefix 0..n-1 was processed and none
// was processed again after a confirmed commit covered it.
func (l *ledger) check(t *testing.T, prefix string, n int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	missing, dups, allowed := 0, 0, 0
	for i := 0; i < n; i++ {
		v := prefix + strconv.Itoa(i)
		ps := l.seen[v]
		if len(ps) == 0 {
			missing++
			continue
		}
		if len(ps) == 1 {
			continue
		}
		lost := false
		for _, a := range ps {
			for _, b := range ps {
				if a != b && !a.confirmed.IsZero() && a.confirmed.Before(b.at) {
					lost = true
				}
			}
		}
		if !lost || l.forgiven[v] {
			allowed++
			continue
		}
		if dups < 3 {
			t.Logf("%s processed again after its commit: %v", v, ps)
		}
		dups++
	}
	t.Logf("%d values: %d missing, %d processed again after a confirmed commit, %d re-delivered from the uncommitted window", n, missing, dups, allowed)
	if missing > 0 || dups > 0 {
		t.Fatalf("%d of %d values missing, %d processed again after a confirmed commit", missing, n, dups)
	}
}

// countingLogger counts client log lines that mention UNKNOWN_MEMBER_ID
// (n, shared by a group's members) and lines that show the member lost its
// membership (lost, the member's own).
type countingLogger struct{ n, lost *atomic.Int64 }

func (countingLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }
func (l countingLogger) Log(_ kgo.LogLevel, msg string, kv ...any) {
	line := fmt.Sprint(msg, kv)
	if strings.Contains(line, "UNKNOWN_MEMBER_ID") {
		l.n.Add(1)
	}
	for _, e := range []string{"UNKNOWN_MEMBER_ID", "UnknownMemberID", "FENCED_MEMBER_EPOCH", "ILLEGAL_GENERATION"} {
		if strings.Contains(line, e) {
			l.lost.Add(1)
		}
	}
}

// member is a group consumer that processes with a poll, process, commit
// loop: rebalances wait until the commit is done (BlockRebalanceOnPoll), so
// a clean handoff never re-delivers.
type member struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	lost   atomic.Int64 // log lines showing the member lost its membership
}

// startMember starts a member of grp on topic. process, if not nil, runs on
// each polled batch before the commit (an ETL step); pace slows processing.
func startMember(t *testing.T, s *stack.Stack, grp, topic string, l *ledger, pace time.Duration, process func(context.Context, []*kgo.Record) error, opts ...kgo.Opt) *member {
	t.Helper()
	m := &member{done: make(chan struct{})}
	base := []kgo.Opt{
		kgo.SeedBrokers(s.Bootstrap()...),
		kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.WithLogger(countingLogger{&l.unknown, &m.lost}),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cl, m.cancel = cl, cancel
	name := fmt.Sprintf("m%d", memberSeq.Add(1))
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollRecords(ctx, 200)
			recs := fs.Records()
			polledAs, _ := cl.GroupMetadata()
			if len(recs) > 0 {
				if process != nil {
					if err := process(ctx, recs); err != nil {
						// Not processed: not committed either; the next
						// owner processes these records.
						cl.AllowRebalance()
						continue
					}
				}
				ps := l.process(name, recs)
				var confirmed []*processing
				for i, ok := range commitRecords(cl, polledAs, recs) {
					if ok {
						confirmed = append(confirmed, ps[i])
					}
				}
				l.confirm(confirmed)
				if pace > 0 {
					time.Sleep(pace) // simulated work, not an assertion
				}
			}
			cl.AllowRebalance()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// commitRecords commits the offsets after recs, which were polled as member
// polledAs, and reports for each record whether its commit was confirmed.
// It is not when its partition is missing from the response or has an
// error, or when the commit was made under another member id. The last happens when the member's session is
// lost (its coordinator died) between poll and commit: the client then
// sends the commit once it has rejoined, as a new member, for partitions it
// may no longer own; those records are in the uncommitted window of the
// lost session, exactly as if the commit had failed.
func commitRecords(cl *kgo.Client, polledAs string, recs []*kgo.Record) []bool {
	offs := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range recs {
		if offs[r.Topic] == nil {
			offs[r.Topic] = map[int32]kgo.EpochOffset{}
		}
		if o, ok := offs[r.Topic][r.Partition]; !ok || r.Offset+1 > o.Offset {
			offs[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
		}
	}
	ok := map[string]map[int32]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil || resp == nil || req == nil || req.MemberID != polledAs {
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 {
					if ok[t.Topic] == nil {
						ok[t.Topic] = map[int32]bool{}
					}
					ok[t.Topic][p.Partition] = true
				}
			}
		}
	})
	out := make([]bool, len(recs))
	for i, r := range recs {
		out[i] = ok[r.Topic][r.Partition]
	}
	return out
}

var memberSeq atomic.Int64

// stop ends the member's loop and closes its client, leaving the group.
func (m *member) stop() {
	m.cancel()
	<-m.done
	m.cl.Close()
}

// produceValues writes prefix0..prefix(n-1) in batches of batch every pause.
func produceValues(t *testing.T, cl *kgo.Client, topic, prefix string, n, batch int, pause time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := 0; i < n; i += batch {
		var recs []*kgo.Record
		for j := i; j < min(i+batch, n); j++ {
			recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(prefix + strconv.Itoa(j))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Errorf("produce: %v", err)
			return
		}
		time.Sleep(pause)
	}
}

// waitCount waits until the ledger holds n distinct values.
func waitCount(t *testing.T, l *ledger, n int, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if !stack.WaitFor(ctx, func() bool { return l.count() >= n }) {
		t.Fatalf("processed %d of %d values within %v", l.count(), n, within)
	}
}

// TestGroupMembershipChurn: three consumers of one group (range,
// cooperative-sticky, static members) consume a 16-partition topic while a
// producer writes; one member leaves and another joins mid-stream (a static
// member restarts under its instance id). Every record is processed, none
// twice outside the uncommitted window.
func TestGroupMembershipChurn(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: groupArgs})
	prod := newClient(t, s)
	cases := []struct {
		name   string
		opts   func(i int) []kgo.Opt
		static bool
	}{
		{"range", func(int) []kgo.Opt { return []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())} }, false},
		{"cooperative-sticky", func(int) []kgo.Opt { return []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())} }, false},
		{"static", func(i int) []kgo.Opt {
			return []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.InstanceID("static-" + strconv.Itoa(i)), kgo.SessionTimeout(10 * time.Second)}
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic, grp := "churn-"+tc.name, "churn-"+tc.name
			const n = 12000
			createTopic(t, prod, topic, 16, nil)
			l := newLedger()
			ms := make([]*member, 0, 4)
			for i := 0; i < 3; i++ {
				ms = append(ms, startMember(t, s, grp, topic, l, 0, nil, tc.opts(i)...))
			}
			produced := make(chan struct{})
			go func() { defer close(produced); produceValues(t, prod, topic, "v", n, 200, 100*time.Millisecond) }()

			// Mid-stream: member 1 leaves (a static member restarts under
			// its instance id), a fourth member joins.
			waitCount(t, l, n/5, time.Minute)
			ms[1].stop()
			if tc.static {
				ms[1] = startMember(t, s, grp, topic, l, 0, nil, tc.opts(1)...)
			}
			waitCount(t, l, n/2, time.Minute)
			ms = append(ms, startMember(t, s, grp, topic, l, 0, nil, tc.opts(3)...))
			<-produced
			waitCount(t, l, n, time.Minute)
			l.check(t, "v", n)
		})
	}
}

// TestGroupETLChain: group A consumes topic in, produces each record to mid
// and commits; group B consumes mid. Members of both groups come and go
// concurrently. No value is lost or duplicated (outside uncommitted
// windows), and members do not see a storm of UNKNOWN_MEMBER_ID.
func TestGroupETLChain(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: groupArgs})
	prod := newClient(t, s)
	createTopic(t, prod, "etl-in", 16, nil)
	createTopic(t, prod, "etl-mid", 16, nil)
	const n = 8000
	la, lb := newLedger(), newLedger()
	forward := func(ctx context.Context, recs []*kgo.Record) error {
		out := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			out[i] = &kgo.Record{Topic: "etl-mid", Value: r.Value}
		}
		return prod.ProduceSync(ctx, out...).FirstErr()
	}
	coop := kgo.Balancers(kgo.CooperativeStickyBalancer())
	var as, bs []*member
	for i := 0; i < 2; i++ {
		as = append(as, startMember(t, s, "etl-a", "etl-in", la, 0, forward, coop))
		bs = append(bs, startMember(t, s, "etl-b", "etl-mid", lb, 0, nil))
	}
	produced := make(chan struct{})
	go func() { defer close(produced); produceValues(t, prod, "etl-in", "e", n, 200, 150*time.Millisecond) }()

	waitCount(t, lb, n/5, time.Minute)
	// Rebalance both groups at once, twice.
	as = append(as, startMember(t, s, "etl-a", "etl-in", la, 0, forward, coop))
	bs = append(bs, startMember(t, s, "etl-b", "etl-mid", lb, 0, nil))
	waitCount(t, lb, n/2, time.Minute)
	as[0].stop()
	bs[0].stop()
	<-produced
	waitCount(t, lb, n, time.Minute)
	la.check(t, "e", n)
	// Values A processed twice were forwarded twice: B sees them twice.
	lb.forgive(la.redelivered())
	lb.check(t, "e", n)
	u := la.unknown.Load() + lb.unknown.Load()
	t.Logf("members logged UNKNOWN_MEMBER_ID %d times", u)
	if u > 10 {
		t.Fatalf("members logged UNKNOWN_MEMBER_ID %d times", u)
	}
}

// coordinatorOf returns the broker coordinating grp.
func coordinatorOf(t *testing.T, adm *kadm.Client, grp string) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var id int32 = -1
	stack.WaitFor(ctx, func() bool {
		rs := adm.FindGroupCoordinators(ctx, grp)
		for _, r := range rs {
			if r.Err == nil {
				id = r.NodeID
			}
		}
		return id >= 0
	})
	if id < 0 {
		t.Fatalf("no coordinator for %s", grp)
	}
	return id
}

// groupMembers returns how many members grp's coordinator knows, and the
// group's state, whether grp is a classic or a KIP-848 group.
func groupMembers(cl *kgo.Client, grp string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ds, err := kadm.NewClient(cl).DescribeGroups(ctx, grp)
	if err != nil {
		return 0, "", err
	}
	if d := ds[grp]; d.Err == nil {
		return len(d.Members), d.State, nil
	} else if !errors.Is(d.Err, kerr.GroupIDNotFound) { // not a classic group
		return 0, "", d.Err
	}
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{grp}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, "", err
	}
	if len(resp.Groups) != 1 {
		return 0, "", fmt.Errorf("ConsumerGroupDescribe of %s: %d groups", grp, len(resp.Groups))
	}
	g := resp.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return 0, "", err
	}
	return len(g.Members), g.State, nil
}

// committed fetches a group's committed offsets, retrying while the
// coordinator moves. Each call uses a fresh client: kgo keeps a cached
// coordinator that was killed until its requests to it fail with a
// coordinator error, and a dead broker only refuses connections.
func committed(t *testing.T, s *stack.Stack, grp string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		rs, err := adm.FetchOffsets(ctx, grp)
		if err == nil && rs.Error() == nil {
			out := map[int32]int64{}
			rs.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("fetch offsets of %s: %v", grp, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestGroupCoordinatorKilled: while a group rebalances (a member joins),
// its coordinator is killed with SIGKILL. The group converges on the new
// coordinator, consumes everything, and no committed offset goes back. The
// members from before the kill keep their membership: the new coordinator
// loads the group, so they are never told UNKNOWN_MEMBER_ID (or fenced)
// and never become zombies that consume partitions handed to someone else.
// Classic and KIP-848 members alike.
func TestGroupCoordinatorKilled(t *testing.T) {
	t.Run("classic", func(t *testing.T) { testCoordinatorKilled(t) })
	t.Run("kip848", func(t *testing.T) {
		testCoordinatorKilled(t, kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	})
}

func testCoordinatorKilled(t *testing.T, opts ...kgo.Opt) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: groupArgs})
	prod := newClient(t, s)
	adm := kadm.NewClient(prod)
	const topic, grp, n = "failover-group", "failover-group", 6000
	createTopic(t, prod, topic, 16, nil)
	produceValues(t, prod, topic, "f", n, 500, 0)

	l := newLedger()
	old := []*member{
		startMember(t, s, grp, topic, l, 30*time.Millisecond, nil, opts...),
		startMember(t, s, grp, topic, l, 30*time.Millisecond, nil, opts...),
	}
	waitCount(t, l, n/4, time.Minute)

	coord := coordinatorOf(t, adm, grp)
	before := committed(t, s, grp)
	startMember(t, s, grp, topic, l, 30*time.Millisecond, nil, opts...) // starts a rebalance
	poll.Until(t, time.Minute, "the third member's join to reach the coordinator", func() error {
		n, state, err := groupMembers(prod, grp)
		if err == nil && n < 3 {
			err = fmt.Errorf("%d members, state %s", n, state)
		}
		return err
	})
	t.Logf("killing coordinator broker %d", coord)
	s.Kill(int(coord))

	waitCount(t, l, n, 90*time.Second)
	l.check(t, "f", n)
	for i, m := range old {
		if lost := m.lost.Load(); lost > 0 {
			t.Errorf("member %d from before the kill lost its membership (%d log lines)", i, lost)
		}
	}
	if now := coordinatorOf(t, adm, grp); now == coord {
		t.Fatalf("coordinator is still the killed broker %d", coord)
	}
	// Every partition's committed offset reaches the end, and none went
	// back from before the kill.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var after map[int32]int64
	ok := stack.WaitFor(ctx, func() bool {
		after = committed(t, s, grp)
		var sum int64
		for _, o := range after {
			sum += o
		}
		return sum == n
	})
	for p, o := range before {
		if after[p] < o {
			t.Errorf("partition %d: committed offset went back from %d to %d", p, o, after[p])
		}
	}
	if !ok {
		t.Fatalf("committed offsets %v do not add up to %d", after, n)
	}
}

// TestConsumerGroupKIP848: franz-go members using the KIP-848 protocol
// (server-side assignment) consume a 16-partition topic while members come
// and go; ConsumerGroupDescribe shows the group.
func TestConsumerGroupKIP848(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t)})
	prod := newClient(t, s)
	for _, tc := range []struct {
		assignor string
		balancer kgo.GroupBalancer
	}{
		{"uniform", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(tc.assignor, func(t *testing.T) { testKIP848(t, s, prod, tc.assignor, tc.balancer) })
	}
}

func testKIP848(t *testing.T, s *stack.Stack, prod *kgo.Client, assignor string, balancer kgo.GroupBalancer) {
	topic, grp, n := "kip848-"+assignor, "kip848-"+assignor, 8000
	createTopic(t, prod, topic, 16, nil)
	l := newLedger()
	next := []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(balancer)}
	ms := []*member{startMember(t, s, grp, topic, l, 0, nil, next...), startMember(t, s, grp, topic, l, 0, nil, next...)}
	produced := make(chan struct{})
	go func() { defer close(produced); produceValues(t, prod, topic, "k", n, 200, 50*time.Millisecond) }()

	waitCount(t, l, n/5, time.Minute)
	ms = append(ms, startMember(t, s, grp, topic, l, 0, nil, next...))

	// The group is a KIP-848 group with three members, and reaches Stable
	// with every partition assigned once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last string
	if !stack.WaitFor(ctx, func() bool {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{grp}
		resp, err := req.RequestWith(ctx, prod)
		if err != nil || len(resp.Groups) != 1 {
			last = fmt.Sprint(err)
			return false
		}
		g := resp.Groups[0]
		parts := 0
		for _, m := range g.Members {
			for _, tp := range m.Assignment.TopicPartitions {
				parts += len(tp.Partitions)
			}
		}
		last = fmt.Sprintf("error %d state %s assignor %s members %d partitions %d", g.ErrorCode, g.State, g.AssignorName, len(g.Members), parts)
		return g.ErrorCode == 0 && g.State == "Stable" && g.AssignorName == assignor && len(g.Members) == 3 && parts == 16
	}) {
		t.Fatalf("consumer group did not settle: %s", last)
	}
	ms[0].stop()
	<-produced
	waitCount(t, l, n, time.Minute)
	l.check(t, "k", n)
}

// TestGroupBadInput: group requests with bad input get Kafka's error codes.
func TestGroupBadInput(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: groupArgs})
	cl := newClient(t, s)
	createTopic(t, cl, "bad-groups", 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A real member, to have a generation to get wrong.
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "bad", 30000, 30000
	join.ProtocolType = "consumer"
	jp := kmsg.NewJoinGroupRequestProtocol()
	jp.Name, jp.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0}
	join.Protocols = []kmsg.JoinGroupRequestProtocol{jp}
	var jr *kmsg.JoinGroupResponse
	for {
		var err error
		jr, err = join.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if jr.ErrorCode != kerr.MemberIDRequired.Code {
			break
		}
		join.MemberID = jr.MemberID
	}
	if jr.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(jr.ErrorCode))
	}
	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Group, sreq.MemberID, sreq.Generation = "bad", jr.MemberID, jr.Generation
	sreq.ProtocolType, sreq.Protocol = &join.ProtocolType, jr.Protocol
	if _, err := sreq.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}

	commit := func(member string, gen int32, partition int32, meta string) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = "bad", member, gen
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "bad-groups"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata = partition, 1, &meta
		rt.Partitions = []kmsg.OffsetCommitRequestTopicPartition{rp}
		req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	hb := func(member string, gen int32) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = "bad", member, gen
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	bigJoin := func() int16 {
		req := kmsg.NewPtrJoinGroupRequest()
		*req = *join
		req.Group, req.MemberID = "bad-big", ""
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", make([]byte, 2<<20)
		req.Protocols = []kmsg.JoinGroupRequestProtocol{p}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	cgh := func(member string, epoch int32, assignor *string) int16 {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch = "bad-848", member, epoch
		req.RebalanceTimeoutMillis, req.SubscribedTopicNames, req.ServerAssignor = 30000, []string{"bad-groups"}, assignor
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	// A KIP-848 member to fence.
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.RebalanceTimeoutMillis = "bad-848", "m848", 30000
	req.SubscribedTopicNames, req.Topics = []string{"bad-groups"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 || resp.MemberEpoch <= 0 {
		t.Fatalf("KIP-848 join: %v %+v", err, resp)
	}
	bogus := "bogus"

	for _, tc := range []struct {
		name string
		got  func() int16
		want *kerr.Error
	}{
		{"commit wrong generation", func() int16 { return commit(jr.MemberID, jr.Generation+5, 0, "") }, kerr.IllegalGeneration},
		{"commit unknown member", func() int16 { return commit("nobody", jr.Generation, 0, "") }, kerr.UnknownMemberID},
		{"commit unknown partition", func() int16 { return commit(jr.MemberID, jr.Generation, 99, "") }, kerr.UnknownTopicOrPartition},
		{"commit oversized metadata", func() int16 { return commit(jr.MemberID, jr.Generation, 0, strings.Repeat("x", 5000)) }, kerr.OffsetMetadataTooLarge},
		{"commit ok", func() int16 { return commit(jr.MemberID, jr.Generation, 0, "kept") }, nil},
		{"heartbeat wrong generation", func() int16 { return hb(jr.MemberID, jr.Generation-1) }, kerr.IllegalGeneration},
		{"heartbeat unknown member", func() int16 { return hb("nobody", jr.Generation) }, kerr.UnknownMemberID},
		{"join oversized metadata", bigJoin, kerr.InvalidRequest},
		{"848 unknown member", func() int16 { return cgh("nobody", 3, nil) }, kerr.UnknownMemberID},
		{"848 fenced epoch", func() int16 { return cgh("m848", 1000, nil) }, kerr.FencedMemberEpoch},
		{"848 unsupported assignor", func() int16 { return cgh("m848", 0, &bogus) }, kerr.UnsupportedAssignor},
		// The classic group's metadata is no consumer subscription, so it
		// cannot be upgraded online (migration: kip848_test.go).
		{"848 on classic group that cannot be upgraded", func() int16 {
			r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			r.Group, r.MemberID, r.RebalanceTimeoutMillis = "bad", "x", 30000
			r.SubscribedTopicNames, r.Topics = []string{"bad-groups"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			resp, err := r.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.ErrorCode
		}, kerr.GroupIDNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.got()
			if want := int16(0); tc.want != nil {
				want = tc.want.Code
				if got != want {
					t.Fatalf("error %v, want %v", kerr.ErrorForCode(got), tc.want)
				}
			} else if got != 0 {
				t.Fatalf("error %v, want none", kerr.ErrorForCode(got))
			}
		})
	}

	// FindCoordinator v4 answers a batch of keys, each with the broker
	// that owns the key's slot.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 4
	fc.CoordinatorKeys = []string{"bad", "bad-848", "other"}
	fcr, err := fc.RequestWith(ctx, cl.Broker(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(fcr.Coordinators) != 3 {
		t.Fatalf("FindCoordinator v4: %d coordinators for 3 keys", len(fcr.Coordinators))
	}
	adm0 := kadm.NewClient(cl)
	for _, rc := range fcr.Coordinators {
		if rc.ErrorCode != 0 || rc.NodeID < 1 {
			t.Fatalf("FindCoordinator v4 %s: node %d, %v", rc.Key, rc.NodeID, kerr.ErrorForCode(rc.ErrorCode))
		}
		if want := coordinatorOf(t, adm0, rc.Key); want != rc.NodeID {
			t.Fatalf("FindCoordinator v4 %s: node %d, single lookup says %d", rc.Key, rc.NodeID, want)
		}
	}

	// The committed metadata is kept.
	adm := kadm.NewClient(cl)
	offs, err := adm.FetchOffsets(ctx, "bad")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("bad-groups", 0); !ok || o.At != 1 || o.Metadata != "kept" {
		t.Fatalf("committed offset %+v, want 1 with metadata kept", o)
	}
}

// TestGroupSurvivesCoordinatorMove: the coordinator slot of a consuming
// group moves to another broker (as the rebalancer moves slots when the
// pool grows or shrinks). The new coordinator loads the group, so members
// keep their membership and their partitions: nobody is told
// UNKNOWN_MEMBER_ID or fenced, and no committed record is processed again.
func TestGroupSurvivesCoordinatorMove(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"classic", nil},
		{"kip848", []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := pgtest.URL(t)
			s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2, BrokerArgs: groupArgs})
			prod := newClient(t, s)
			adm := kadm.NewClient(prod)
			const topic, grp, n = "moving-group", "moving-group", 6000
			createTopic(t, prod, topic, 8, nil)
			l := newLedger()
			ms := []*member{
				startMember(t, s, grp, topic, l, 0, nil, tc.opts...),
				startMember(t, s, grp, topic, l, 0, nil, tc.opts...),
			}
			produced := make(chan struct{})
			go func() { defer close(produced); produceValues(t, prod, topic, "m", n, 100, 50*time.Millisecond) }()
			waitCount(t, l, n/4, time.Minute)

			from := coordinatorOf(t, adm, grp)
			to := int32(1)
			if from == 1 {
				to = 2
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			st, err := store.Open(ctx, url, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.MoveSlots(ctx, from, to); err != nil {
				t.Fatal(err)
			}
			t.Logf("moved the coordinator slots of broker %d to broker %d", from, to)
			if !stack.WaitFor(ctx, func() bool { return coordinatorOf(t, adm, grp) == to }) {
				t.Fatalf("the group's coordinator did not move to broker %d", to)
			}
			<-produced
			waitCount(t, l, n, 90*time.Second)
			l.check(t, "m", n)
			for i, m := range ms {
				if lost := m.lost.Load(); lost > 0 {
					t.Errorf("member %d lost its membership when the coordinator moved (%d log lines)", i, lost)
				}
			}
		})
	}
}
