package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions end to end, through clients as their users run them: a
// franz-go GroupTransactSession pipeline under broker kills (issue 19
// acceptance 1), and kafkajs and librdkafka transactions that commit and
// abort (acceptance 4). The protocol-level cases live beside the
// coordinator's and the partition's own tests.

// readTopic reads every partition of topic from the start with the given
// isolation level until it has want records, then a little longer to see
// that nothing more arrives, and returns what it read. Records of an
// aborted transaction come after the committed ones in these tests, so a
// consumer that wrongly returned them would return them in that window.
func readTopic(t *testing.T, s *stack.Stack, topic string, level kgo.IsolationLevel, want int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, s, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(level))
	var out []*kgo.Record
	deadline := time.Now().Add(2 * time.Minute)
	var quietUntil time.Time
	for {
		if len(out) >= want && quietUntil.IsZero() {
			quietUntil = time.Now().Add(2 * time.Second)
		}
		until := deadline
		if !quietUntil.IsZero() {
			until = quietUntil
		}
		if time.Now().After(until) {
			break
		}
		ctx, cancel := context.WithDeadline(context.Background(), until)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("fetch %s/%d: %v", tp, p, err)
			}
		})
		out = append(out, fs.Records()...)
	}
	if len(out) < want {
		t.Fatalf("read %d records of %s, want %d", len(out), topic, want)
	}
	return out
}

// TestTxnExactlyOnceUnderKills: a consume-transform-produce pipeline built
// on franz-go's GroupTransactSession copies 200,000 records from an input
// topic of 8 partitions to an output topic while the broker holding the
// transaction coordinator, and then a broker leading output partitions,
// are SIGKILLed and restarted. A read_committed consumer of the output then
// sees every input record exactly once.
func TestTxnExactlyOnceUnderKills(t *testing.T) {
	const (
		in, out = "eos-in", "eos-out"
		group   = "eos-group"
		txnID   = "eos-txn"
		n       = 200_000
	)
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t)})
	prod := newClient(t, s, kgo.DefaultProduceTopic(in), kgo.ProducerLinger(5*time.Millisecond))
	createTopic(t, prod, in, 8, nil)
	createTopic(t, prod, out, 8, nil)
	adm := kadm.NewClient(prod)

	// The input, keyed so records spread over the partitions.
	ctx := context.Background()
	for i := 0; i < n; {
		var rs []*kgo.Record
		for ; i < n && len(rs) < 5000; i++ {
			rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i % 1009)), Value: []byte(strconv.Itoa(i))})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce input: %v", err)
		}
	}

	newSession := func() (*kgo.GroupTransactSession, error) {
		return kgo.NewGroupTransactSession(
			kgo.SeedBrokers(s.Bootstrap()...),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(in),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.TransactionalID(txnID), kgo.TransactionTimeout(30*time.Second),
			kgo.DefaultProduceTopic(out),
			kgo.RecordRetries(1<<30), kgo.MetadataMinAge(250*time.Millisecond),
		)
	}
	sess, err := newSession()
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var ends, failedEnds, restarts atomic.Int64
	var lastErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			if sess != nil {
				sess.Close()
			}
		}()
		// restart replaces a session that End or Begin failed, as an
		// application does: franz-go says no such error is retryable, and
		// the new session's InitProducerID fences the old one and aborts
		// what it left open.
		restart := func(err error) {
			lastErr.Store(err)
			restarts.Add(1)
			sess.Close()
			sess = nil
			for runCtx.Err() == nil {
				if sess, err = newSession(); err == nil {
					return
				}
				sess = nil
				lastErr.Store(fmt.Errorf("new session: %w", err))
				time.Sleep(100 * time.Millisecond)
			}
		}
		for runCtx.Err() == nil && sess != nil {
			fs := sess.PollRecords(runCtx, 2000)
			if runCtx.Err() != nil {
				return
			}
			if err := sess.Begin(); err != nil {
				restart(fmt.Errorf("begin: %w", err))
				continue
			}
			fs.EachRecord(func(r *kgo.Record) {
				sess.Produce(runCtx, &kgo.Record{Key: r.Key, Value: r.Value}, nil)
			})
			committed, err := sess.End(runCtx, kgo.TryCommit)
			ends.Add(1)
			if err != nil || !committed {
				failedEnds.Add(1)
			}
			if err != nil && runCtx.Err() == nil {
				restart(fmt.Errorf("end: %w", err))
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()

	// progress is how many input records the group has committed. It asks
	// through a new client each time: kgo keeps a group's coordinator
	// until the broker answers NOT_COORDINATOR, so a client that looked
	// the group up just before its coordinator was killed would dial the
	// dead broker until the test gave up.
	progress := func() (int64, error) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...))
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
		if err != nil {
			return 0, err
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum, nil
	}
	waitProgress := func(at int64) {
		poll.Until(t, 3*time.Minute, fmt.Sprintf("the pipeline to commit %d input records", at), func() error {
			p, err := progress()
			if err != nil {
				return err
			}
			if p < at {
				e, _ := lastErr.Load().(error)
				return fmt.Errorf("committed %d (transactions ended %d, failed %d, last error %v)", p, ends.Load(), failedEnds.Load(), e)
			}
			return nil
		})
	}

	waitProgress(n / 4)
	coords := adm.FindTxnCoordinators(ctx, txnID)
	coord, ok := coords[txnID]
	if !ok || coord.Err != nil {
		t.Fatalf("find the transaction coordinator: %+v", coords)
	}
	t.Logf("killing broker %d, the transaction coordinator", coord.NodeID)
	s.Kill(int(coord.NodeID))
	// The pipeline carries on without it (the slot moves to another
	// broker) before it comes back.
	waitProgress(3 * n / 8)
	s.Restart(int(coord.NodeID))

	waitProgress(n / 2)
	// The broker just restarted may have taken partitions it has yet to
	// report: wait for a known leader of partition 0 rather than kill
	// broker -1.
	var ls map[int32]int32
	poll.Until(t, 30*time.Second, "a leader of "+out+"/0", func() (err error) {
		ls, err = leaders(adm, out, 1)
		return err
	})
	victim := ls[0]
	t.Logf("killing broker %d, leader of %s/0 (leaders %v)", victim, out, ls)
	s.Kill(int(victim))
	waitProgress(5 * n / 8)
	s.Restart(int(victim))

	waitProgress(n)
	stop()
	wg.Wait()
	t.Logf("transactions ended: %d, of which failed or aborted: %d; sessions replaced after an error: %d (last error: %v)",
		ends.Load(), failedEnds.Load(), restarts.Load(), lastErr.Load())

	seen := make(map[string]int, n)
	for _, r := range readTopic(t, s, out, kgo.ReadCommitted(), n) {
		seen[string(r.Value)]++
	}
	var missing, dup int
	for i := range n {
		switch c := seen[strconv.Itoa(i)]; {
		case c == 0:
			missing++
		case c > 1:
			dup++
		}
	}
	if missing > 0 || dup > 0 || len(seen) != n {
		t.Fatalf("read_committed output: %d distinct of %d input records, %d missing, %d duplicated", len(seen), n, missing, dup)
	}
}

// txnClientRun runs an external transactional client (kafkajs or
// librdkafka) that commits one transaction of count records with group
// offsets {0: 42, 1: 7} and aborts a second one, then checks what
// read_committed and read_uncommitted consumers and the group see.
func txnClientRun(t *testing.T, s *stack.Stack, topic, group string, count int, cmd *exec.Cmd) {
	t.Helper()
	var out []byte
	var err error
	done := make(chan struct{})
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not finish within 2 minutes:\n%s", cmd.Path, out)
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd.Path, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum struct{ Committed, Aborted int }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Committed != count {
		t.Fatalf("unexpected output (%v):\n%s", err, out)
	}

	for _, r := range readTopic(t, s, topic, kgo.ReadCommitted(), count) {
		if !strings.HasPrefix(string(r.Value), "committed-") {
			t.Fatalf("read_committed consumer saw %q at %d/%d", r.Value, r.Partition, r.Offset)
		}
	}
	if got := readTopic(t, s, topic, kgo.ReadUncommitted(), 2*count); len(got) != 2*count {
		t.Fatalf("read_uncommitted consumer saw %d records, want %d (committed and aborted)", len(got), 2*count)
	}

	cl := newClient(t, s)
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]int64{0: 42, 1: 7} {
		if o, ok := offs.Lookup(topic, p); !ok || o.At != want {
			t.Errorf("group %s offset of %s/%d = %+v, want %d (the aborted transaction's offsets must not land)", group, topic, p, o, want)
		}
	}
}

// TestTxnKafkaJS: kafkajs's transactions, sendOffsets included.
func TestTxnKafkaJS(t *testing.T) {
	node := tool(t, "node")
	_, file, _, _ := runtime.Caller(0)
	jsDir := filepath.Join(filepath.Dir(file), "..", "..", "test", "js")
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "kafkajs")); err != nil {
		t.Fatal("kafkajs is not installed in test/js; `make deps` runs npm ci there")
	}
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t)})
	cmd := exec.Command(node, filepath.Join(jsDir, "txn.js"), strings.Join(s.Bootstrap(), ","), "kafkajs-txn", "kafkajs-txn-group", "300")
	cmd.Dir = jsDir
	txnClientRun(t, s, "kafkajs-txn", "kafkajs-txn-group", 300, cmd)
}

// TestTxnLibrdkafka: librdkafka's transactional producer, through
// Debian's python3-confluent-kafka (`make deps` installs it). librdkafka
// speaks only the transaction protocol before KIP-890 part 2.
func TestTxnLibrdkafka(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		t.Fatalf("python3-confluent-kafka is not installed (`make deps` installs it): %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "test", "py", "txn.py")
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t)})
	cmd := exec.Command(py, script, strings.Join(s.Bootstrap(), ","), "rdkafka-txn", "rdkafka-txn-group", "300")
	txnClientRun(t, s, "rdkafka-txn", "rdkafka-txn-group", 300, cmd)
}

// TestTxnVersion2: franz-go negotiates transaction version 2 (KIP-890 part
// 2): the broker advertises the finalized feature, and the client ends its
// transactions with EndTxn v5 and produces with Produce v12 or later.
func TestTxnVersion2(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t)})
	lg := &versionLog{used: map[string]int{}}
	cl := newClient(t, s, kgo.TransactionalID("tv2"), kgo.DefaultProduceTopic("tv2"), kgo.WithLogger(lg), kgo.RecordDeliveryTimeout(20*time.Second))
	createTopic(t, cl, "tv2", 1, nil)
	ctx := context.Background()

	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var finalized int16 = -1
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "transaction.version" {
			finalized = f.MaxVersionLevel
		}
	}
	if finalized != 2 {
		t.Fatalf("ApiVersions finalizes transaction.version at %d, want 2 (features %+v)", finalized, resp.FinalizedFeatures)
	}

	for i := range 3 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if v := lg.used["EndTxn"]; v < 5 {
		t.Errorf("franz-go ended its transactions with EndTxn v%d, want v5 (transaction version 2)", v)
	}
	if v := lg.used["Produce"]; v < 12 {
		t.Errorf("franz-go produced with Produce v%d, want v12 or later (transaction version 2)", v)
	}
	if got := readTopic(t, s, "tv2", kgo.ReadCommitted(), 3); len(got) != 3 {
		t.Errorf("read_committed saw %d records, want 3", len(got))
	}
}

// versionLog keeps the highest version of each request a kgo client
// wrote, from the client's own debug log ("wrote EndTxn v5"): kgo's hooks
// report request keys but not versions.
type versionLog struct {
	mu   sync.Mutex
	used map[string]int
}

func (*versionLog) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l *versionLog) Log(_ kgo.LogLevel, msg string, kv ...any) {
	if os.Getenv("DEBUGKGO") != "" {
		fmt.Fprintln(os.Stderr, append([]any{msg}, kv...)...)
	}
	name, v, ok := strings.Cut(strings.TrimPrefix(msg, "wrote "), " v")
	if !ok || !strings.HasPrefix(msg, "wrote ") {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return
	}
	l.mu.Lock()
	l.used[name] = max(l.used[name], n)
	l.mu.Unlock()
}

// TestTxnTimeoutAbortInvisible: a franz-go producer opens a transaction
// and never ends it. While it is open, kadm's DescribeTransactions,
// ListTransactions and DescribeProducers show it, and the last stable
// offset stops at its first record; once the coordinator aborts it on
// timeout, the LSO moves on, read_committed consumers never see its
// records and read_uncommitted ones do.
func TestTxnTimeoutAbortInvisible(t *testing.T) {
	const topic, txnID = "txn-timeout", "txn-timeout"
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Metrics: true,
		BrokerArgs: []string{"--transaction-check-interval", "200ms"}})
	plain := newClient(t, s, kgo.DefaultProduceTopic(topic))
	createTopic(t, plain, topic, 1, nil)
	adm := kadm.NewClient(plain)
	ctx := context.Background()
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	txn := newClient(t, s, kgo.DefaultProduceTopic(topic), kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(3*time.Second))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var rs []*kgo.Record
	for i := range 10 {
		rs = append(rs, &kgo.Record{Value: []byte("open-" + strconv.Itoa(i))})
	}
	if err := txn.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	first := rs[0].Offset

	// Open: the admin APIs show it, and the LSO stops at its first record
	// while a record after it raises the high watermark.
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Each broker learns leaderships from its routing view, so the admin
	// requests may briefly meet one that does not know the new topic yet.
	poll.Until(t, 30*time.Second, "kadm to show the open transaction and its producer", func() error {
		dts, err := adm.DescribeTransactions(ctx, txnID)
		if err != nil {
			return err
		}
		if dt, ok := dts[txnID]; !ok || dt.State != "Ongoing" || dt.ProducerID != rs[0].ProducerID || len(dt.Topics[topic]) != 1 {
			return fmt.Errorf("DescribeTransactions of the open transaction: %+v", dts)
		}
		lts, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
		if err != nil {
			return err
		}
		if lt, ok := lts[txnID]; !ok || lt.ProducerID != rs[0].ProducerID {
			return fmt.Errorf("ListTransactions(Ongoing) = %+v, want %s", lts, txnID)
		}
		dps, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			return err
		}
		var seen bool
		dps.EachProducer(func(p kadm.DescribedProducer) {
			if p.ProducerID == rs[0].ProducerID && p.CurrentTxnStartOffset == first {
				seen = true
			}
		})
		if !seen {
			return fmt.Errorf("DescribeProducers does not show producer %d with its transaction open at %d: %+v", rs[0].ProducerID, first, dps)
		}
		return nil
	})
	lso := func() (int64, int64) {
		committed, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		end, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := committed.Lookup(topic, 0)
		e, _ := end.Lookup(topic, 0)
		return c.Offset, e.Offset
	}
	if l, hw := lso(); l != first || hw <= first+10 {
		t.Fatalf("with the transaction open: LSO %d, high watermark %d; want the LSO at its first record %d", l, hw, first)
	}
	// A group at the start lags by the whole log, but a read_committed
	// group only up to the open transaction.
	var offs kadm.Offsets
	offs.AddOffset(topic, 0, 0, -1)
	if r, err := adm.CommitOffsets(ctx, "lagging", offs); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	wantStable := fmt.Sprintf(`eddy_group_stable_lag{group="lagging",partition="0",topic=%q,virtual_cluster="vc-dev"} %d`, topic, first)
	poll.Until(t, 30*time.Second, "the group's stable lag to stop at the open transaction", func() error {
		if m := scrape(t, s); !strings.Contains(m, wantStable) {
			return fmt.Errorf("no %s in:\n%s", wantStable, grepLines(m, "eddy_group"))
		}
		return nil
	})

	// The coordinator aborts it on timeout; the marker moves the LSO up
	// to the high watermark.
	poll.Until(t, 30*time.Second, "the timed-out transaction to be aborted and its marker written", func() error {
		if l, hw := lso(); l != hw {
			return fmt.Errorf("LSO %d, high watermark %d", l, hw)
		}
		return nil
	})
	for _, r := range readTopic(t, s, topic, kgo.ReadCommitted(), 2) {
		if strings.HasPrefix(string(r.Value), "open-") {
			t.Fatalf("read_committed consumer saw %q of the aborted transaction", r.Value)
		}
	}
	if got := readTopic(t, s, topic, kgo.ReadUncommitted(), 12); len(got) != 12 {
		t.Fatalf("read_uncommitted consumer saw %d records, want 12", len(got))
	}
}
