package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/sasl"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// sentFetch is one Fetch request as a client sent it.
type sentFetch struct {
	id, epoch  int32
	partitions []int32 // of every topic, in request order
}

// fetchLog records the Fetch requests of each client id (the rig's
// fetchHook).
type fetchLog struct {
	mu   sync.Mutex
	sent map[string][]sentFetch
}

func (l *fetchLog) hook(c *conn, req *kmsg.FetchRequest) {
	f := sentFetch{id: req.SessionID, epoch: req.SessionEpoch}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			f.partitions = append(f.partitions, rp.Partition)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent == nil {
		l.sent = map[string][]sentFetch{}
	}
	l.sent[c.clientID] = append(l.sent[c.clientID], f)
}

func (l *fetchLog) of(client string) []sentFetch {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sent[client])
}

// consumeN polls cl until it has n records, failing on any fetch error.
func consumeN(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records in a minute", len(out), n)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch error %s/%d: %v", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func produceTo(t *testing.T, cl *kgo.Client, topic string, partitions ...int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for _, p := range partitions {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "p%d", p)})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func allPartitions(n int32) []int32 {
	ps := make([]int32, n)
	for i := range ps {
		ps[i] = int32(i)
	}
	return ps
}

// TestFetchSessionIncremental (KIP-227): a kgo consumer of 100 partitions
// opens one fetch session with a full request; every later request is
// incremental in that session and names only the partitions whose fetch
// offset moved: none while idle, the one partition that got a record
// after it did.
func TestFetchSessionIncremental(t *testing.T) {
	var log fetchLog
	r := startRig(t, rigOptions{placement: true, fetchHook: log.hook})
	prod := r.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 100, -1, nil, "sessions"); err != nil {
		t.Fatal(err)
	}
	produceTo(t, prod, "sessions", allPartitions(100)...)
	cons := r.client(t, kgo.ClientID("consumer"), kgo.ConsumeTopics("sessions"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	consumeN(t, cons, 100)
	// Idle: incremental requests with nothing in them.
	poll.Until(t, 20*time.Second, "an empty incremental fetch", func() error {
		sent := log.of("consumer")
		if f := sent[len(sent)-1]; f.epoch <= 0 || len(f.partitions) > 0 {
			return fmt.Errorf("last request: epoch %d, %d partitions", f.epoch, len(f.partitions))
		}
		return nil
	})
	before := len(log.of("consumer"))
	produceTo(t, prod, "sessions", 7)
	if got := consumeN(t, cons, 1); got[0].Partition != 7 {
		t.Fatalf("got a record of partition %d, want 7", got[0].Partition)
	}
	poll.Until(t, 20*time.Second, "a request naming partition 7 alone", func() error {
		for _, f := range log.of("consumer")[before:] {
			if slices.Equal(f.partitions, []int32{7}) {
				return nil
			}
		}
		return fmt.Errorf("requests since the record: %v", log.of("consumer")[before:])
	})

	// kgo may start fetching before it knows every partition's offset:
	// the rest join the session incrementally.
	sent := log.of("consumer")
	if f := sent[0]; f.id != 0 || f.epoch != 0 || len(f.partitions) == 0 {
		t.Fatalf("first request: session %d epoch %d with %d partitions, want a full request opening a session", f.id, f.epoch, len(f.partitions))
	}
	id := sent[1].id
	named := map[int32]bool{}
	for i, f := range sent {
		if i > 0 && (f.id != id || f.id == 0 || f.epoch != int32(i)) {
			t.Fatalf("request %d: session %d epoch %d, want session %d epoch %d", i, f.id, f.epoch, id, i)
		}
		for _, p := range f.partitions {
			named[p] = true
		}
	}
	if len(named) != 100 {
		t.Fatalf("the session's requests named %d partitions, want 100", len(named))
	}
	if n := testutil.ToFloat64(r.s.sessions.open); n != 1 {
		t.Fatalf("%v sessions open, want 1", n)
	}
}

// TestFetchSessionEvicted: with one session slot, a second consumer's
// session evicts the first's; the first gets FETCH_SESSION_ID_NOT_FOUND,
// opens a new session with a full request and goes on consuming, with no
// error surfacing to either.
func TestFetchSessionEvicted(t *testing.T) {
	var log fetchLog
	r := startRig(t, rigOptions{placement: true, fetchHook: log.hook, config: func(c *Config) {
		c.FetchSessions.CacheSlots, c.FetchSessions.EvictAfter = 1, 0
	}})
	prod := r.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 4, -1, nil, "evicted"); err != nil {
		t.Fatal(err)
	}
	consumer := func(name string) *kgo.Client {
		return r.client(t, kgo.ClientID(name), kgo.ConsumeTopics("evicted"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	}
	produceTo(t, prod, "evicted", allPartitions(4)...)
	a := consumer("a")
	consumeN(t, a, 4)
	b := consumer("b")
	consumeN(t, b, 4)
	for range 3 {
		produceTo(t, prod, "evicted", allPartitions(4)...)
		consumeN(t, a, 4)
		consumeN(t, b, 4)
	}
	if n := testutil.ToFloat64(r.s.sessions.evictions); n == 0 {
		t.Fatal("no session was evicted")
	}
	if n := testutil.ToFloat64(r.s.sessions.errors.WithLabelValues(kerr.FetchSessionIDNotFound.Message)); n == 0 {
		t.Fatal("no request was answered FETCH_SESSION_ID_NOT_FOUND")
	}
	opened := 0
	for _, f := range log.of("a") {
		if f.epoch == 0 {
			opened++
		}
	}
	if opened < 2 {
		t.Fatalf("consumer a opened %d sessions, want a new one after its first was evicted", opened)
	}
}

// TestFetchSessionErrors: the session errors of KIP-227, answered at once
// at the top level, and a session id that does not resolve for another
// principal of the same cluster or for another cluster.
func TestFetchSessionErrors(t *testing.T) {
	r := startRig(t, rigOptions{placement: true})
	cl := r.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, -1, nil, "errs"); err != nil {
		t.Fatal(err)
	}
	td, err := kadm.NewClient(cl).ListTopics(ctx, "errs")
	if err != nil {
		t.Fatal(err)
	}
	topicID := td["errs"].ID
	v12 := r.client(t, kgo.MaxVersions(fetchV12()))
	var wait int32 // MaxWaitMillis of the next fetch, with MinBytes 1
	fetch := func(version int16, id, epoch int32, parts ...int32) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, wait = wait, 1, 0
		via := cl // the newest version: topic ids
		if version < 13 {
			via = v12
		}
		req.ReplicaID, req.MaxBytes, req.SessionID, req.SessionEpoch = -1, 1<<20, id, epoch
		if len(parts) > 0 {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = "errs", topicID
			for _, p := range parts {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, 1<<20, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, via)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	full := fetch(13, 0, 0, 0, 1)
	if full.ErrorCode != 0 || full.SessionID == 0 || len(full.Topics) != 1 || len(full.Topics[0].Partitions) != 2 {
		t.Fatalf("full fetch: error %d, session %d, topics %+v", full.ErrorCode, full.SessionID, full.Topics)
	}
	id := full.SessionID
	// Nothing new: MaxWaitMillis is waited out for MinBytes, as without
	// a session, and the answer names no partition.
	wait = 300
	start := time.Now()
	if resp := fetch(13, id, 1); resp.ErrorCode != 0 || resp.SessionID != id || len(resp.Topics) != 0 {
		t.Fatalf("incremental fetch with nothing new: error %d, session %d, %d topics", resp.ErrorCode, resp.SessionID, len(resp.Topics))
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("incremental fetch with nothing new answered after %v, want MaxWaitMillis 300ms", waited)
	}
	for _, tc := range []struct {
		name           string
		version        int16
		id, epoch      int32
		want           *kerr.Error
		wantSessionID0 bool
	}{
		{"unknown id", 13, id + 1, 1, kerr.FetchSessionIDNotFound, true},
		{"old epoch", 13, id, 1, kerr.InvalidFetchSessionEpoch, true},
		{"epoch ahead", 13, id, 5, kerr.InvalidFetchSessionEpoch, true},
		{"names instead of ids", 12, id, 2, kerr.FetchSessionTopicIDError, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := fetch(tc.version, tc.id, tc.epoch)
			if got := kerr.ErrorForCode(resp.ErrorCode); got != tc.want || resp.SessionID != 0 || len(resp.Topics) != 0 {
				t.Fatalf("got %v, session %d, %d topics; want %v", got, resp.SessionID, len(resp.Topics), tc.want)
			}
		})
	}
	// The refusals did not move the epoch: 2 is still the next.
	if resp := fetch(13, id, 2); resp.ErrorCode != 0 {
		t.Fatalf("epoch 2 after the refusals: %v", kerr.ErrorForCode(resp.ErrorCode))
	}

	// Another principal, of the same cluster (the rig's anonymous one) or
	// of another, cannot resolve the id, nor close it.
	epoch := int32(3)
	for _, other := range []struct {
		name string
		c    *conn
	}{
		{"another principal of the same cluster", &conn{cluster: "vc-dev", principal: &sasl.Principal{Cluster: "vc-dev", ServiceAccount: "sa-other"}}},
		{"another cluster", &conn{cluster: "vc-other"}},
	} {
		if _, code := r.s.sessions.begin(other.c, &kmsg.FetchRequest{Version: 13, SessionID: id, SessionEpoch: epoch}); code != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("%s: request of session %d: %v, want FETCH_SESSION_ID_NOT_FOUND", other.name, id, kerr.ErrorForCode(code))
		}
		r.s.sessions.begin(other.c, &kmsg.FetchRequest{Version: 13, SessionID: id, SessionEpoch: -1})
		if resp := fetch(13, id, epoch); resp.ErrorCode != 0 {
			t.Fatalf("session %d after %s tried to close it: %v", id, other.name, kerr.ErrorForCode(resp.ErrorCode))
		}
		epoch++
	}
	// Epoch -1 closes it.
	if resp := fetch(13, id, -1, 0); resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Fatalf("closing fetch: error %d, session %d", resp.ErrorCode, resp.SessionID)
	}
	if resp := fetch(13, id, epoch); kerr.ErrorForCode(resp.ErrorCode) != kerr.FetchSessionIDNotFound {
		t.Fatalf("closed session: %v, want FETCH_SESSION_ID_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestFetchSessionColdLimits: with a memory cache of one byte, reads come
// from object storage; the full and the incremental fetches of a session
// keep PartitionMaxBytes (whole batches within it, or one if the first is
// larger: KIP-74) and MaxBytes (the first partition read gets no more).
func TestFetchSessionColdLimits(t *testing.T) {
	r := startRig(t, rigOptions{placement: true, config: func(c *Config) { c.Leader.CacheBytes = 1 }})
	// Fetch v12 names topics.
	cl := r.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.MaxVersions(fetchV12()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, -1, nil, "cold"); err != nil {
		t.Fatal(err)
	}
	value := []byte(strings.Repeat("v", 10_000))
	for range 5 {
		for p := range int32(3) {
			// One batch per produce, one flush per batch.
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "cold", Partition: p, Value: value}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	offsets := map[int32]int64{0: 0, 1: 0, 2: 0}
	fetch := func(id, epoch int32, maxBytes, partMax int32, parts ...int32) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes, req.SessionID, req.SessionEpoch = -1, maxBytes, id, epoch
		if len(parts) > 0 {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = "cold"
			for _, p := range parts {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, offsets[p], partMax, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		return resp
	}
	// advance moves each partition's offset past what resp returned and
	// says which partitions returned how many bytes.
	advance := func(resp *kmsg.FetchResponse) (moved []int32, sizes map[int32]int) {
		sizes = map[int32]int{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("partition %d: %v", rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
				}
				if len(rp.RecordBatches) == 0 {
					continue
				}
				sizes[rp.Partition] = len(rp.RecordBatches)
				fs, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "cold", Partition: rp.Partition, KeepControlRecords: true}, &rp, kgo.DefaultDecompressor(), nil)
				if n := len(fs.Records); n > 0 {
					offsets[rp.Partition] = fs.Records[n-1].Offset + 1
					moved = append(moved, rp.Partition)
				}
			}
		}
		return moved, sizes
	}
	batchSize := 0
	// Full: PartitionMaxBytes of 1 still returns one whole batch each.
	resp := fetch(0, 0, 1<<20, 1, 0, 1, 2)
	id := resp.SessionID
	if id == 0 {
		t.Fatal("no session opened")
	}
	moved, sizes := advance(resp)
	for p, n := range sizes {
		if offsets[p] != 1 {
			t.Fatalf("partition %d: PartitionMaxBytes 1 returned %d bytes up to offset %d, want one batch", p, n, offsets[p])
		}
		batchSize = n
	}
	if len(moved) != 3 {
		t.Fatalf("full fetch returned data of partitions %v, want all 3", moved)
	}
	// Incremental, PartitionMaxBytes of two and a half batches: two each.
	resp = fetch(id, 1, 1<<20, int32(batchSize*5/2), moved...)
	if moved, sizes = advance(resp); len(moved) != 3 {
		t.Fatalf("incremental fetch returned data of partitions %v, want all 3", moved)
	}
	for p, n := range sizes {
		if offsets[p] != 3 || n > batchSize*5/2 {
			t.Fatalf("partition %d: PartitionMaxBytes %d returned %d bytes up to offset %d, want two batches", p, batchSize*5/2, n, offsets[p])
		}
	}
	// Incremental, MaxBytes of 1: the first partition read returns one
	// whole batch.
	resp = fetch(id, 2, 1, 1<<20, moved...)
	if len(resp.Topics) == 0 || len(resp.Topics[0].Partitions) == 0 {
		t.Fatal("incremental fetch with MaxBytes 1 returned nothing")
	}
	first := resp.Topics[0].Partitions[0].Partition
	if _, sizes = advance(resp); sizes[first] != batchSize || offsets[first] != 4 {
		t.Fatalf("MaxBytes 1: partition %d returned %d bytes up to offset %d, want one batch of %d", first, sizes[first], offsets[first], batchSize)
	}
}

// fetchV12 is the newest versions with Fetch pinned to v12, the last that
// names topics rather than topic ids.
func fetchV12() *kversion.Versions {
	v := kversion.Stable()
	v.SetMaxKeyVersion(1, 12)
	return v
}

// TestFetchSessionCache: the cache's rules without a broker: Kafka's
// eviction (an idle session first, else the smallest if the new one is
// larger, else none) and the partition bound of a session.
func TestFetchSessionCache(t *testing.T) {
	c := &conn{cluster: "vc-a"}
	full := func(partitions int) *kmsg.FetchRequest {
		req := &kmsg.FetchRequest{Version: 12}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		for p := range partitions {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = int32(p)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return req
	}
	open := func(fs *fetchSessions, partitions int) int32 {
		t.Helper()
		req := full(partitions)
		plan, code := fs.begin(c, req)
		if code != 0 || !plan.open {
			t.Fatalf("full fetch: code %d, open %v", code, plan.open)
		}
		return fs.create(c, req, req.ResponseKind().(*kmsg.FetchResponse))
	}
	resolves := func(fs *fetchSessions, id int32) bool {
		_, code := fs.begin(c, &kmsg.FetchRequest{Version: 12, SessionID: id, SessionEpoch: 1})
		return code == 0
	}

	t.Run("busy sessions: the smallest goes for a larger one", func(t *testing.T) {
		fs := newFetchSessions(FetchSessionLimits{CacheSlots: 2, MaxPartitions: 100, EvictAfter: time.Hour}, nil)
		small, large := open(fs, 3), open(fs, 5)
		if id := open(fs, 2); id != 0 {
			t.Fatal("a session smaller than every busy one was created")
		}
		if id := open(fs, 4); id == 0 || resolves(fs, small) || !resolves(fs, large) {
			t.Fatalf("a session of 4: id %d; want the one of 3 evicted and the one of 5 kept", id)
		}
		if n := testutil.ToFloat64(fs.evictions); n != 1 {
			t.Fatalf("%v evictions, want 1", n)
		}
	})
	t.Run("an idle session goes first", func(t *testing.T) {
		fs := newFetchSessions(FetchSessionLimits{CacheSlots: 2, MaxPartitions: 100, EvictAfter: 0}, nil)
		first, second := open(fs, 5), open(fs, 5)
		if !resolves(fs, first) { // now the most recently used
			t.Fatal("first session does not resolve")
		}
		if id := open(fs, 1); id == 0 || resolves(fs, second) {
			t.Fatalf("a session of 1: id %d; want the least recently used evicted", id)
		}
	})
	t.Run("a cluster at its bound evicts only its own", func(t *testing.T) {
		fs := newFetchSessions(FetchSessionLimits{CacheSlots: 3, MaxPartitions: 100, EvictAfter: time.Hour, MaxPerCluster: 2}, nil)
		b := &conn{cluster: "vc-b"}
		req := full(1)
		if plan, code := fs.begin(b, req); code != 0 || !plan.open {
			t.Fatalf("vc-b's full fetch: code %d, open %v", code, plan.open)
		}
		theirs := fs.create(b, req, req.ResponseKind().(*kmsg.FetchResponse))
		first, second := open(fs, 5), open(fs, 6)
		if theirs == 0 || first == 0 || second == 0 {
			t.Fatalf("sessions %d %d %d, want three", theirs, first, second)
		}
		// The cache is full and vc-a at its bound: vc-b's session of 1 is
		// the smallest, but vc-a's new session may only take vc-a's.
		if id := open(fs, 10); id == 0 || resolves(fs, first) || !resolves(fs, second) {
			t.Fatalf("vc-a's third session: id %d; want vc-a's smallest evicted", id)
		}
		if _, code := fs.begin(b, &kmsg.FetchRequest{Version: 12, SessionID: theirs, SessionEpoch: 1}); code != 0 {
			t.Fatalf("vc-b's session after vc-a filled its share: %v", kerr.ErrorForCode(code))
		}
		if id := open(fs, 3); id != 0 {
			t.Fatal("vc-a at its bound got a session smaller than all of its own")
		}
		if n := len(fs.byID); n != 3 {
			t.Fatalf("%d sessions, want 3", n)
		}
	})
	t.Run("only readable partitions", func(t *testing.T) {
		fs := newFetchSessions(DefaultFetchSessionLimits(), nil)
		for _, code := range []int16{kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code, kerr.TopicAuthorizationFailed.Code} {
			req := full(2)
			resp := req.ResponseKind().(*kmsg.FetchResponse)
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = "t"
			for p := range int32(2) {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = p
				if p == 1 {
					rp.ErrorCode = code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
			if id := fs.create(c, req, resp); id != 0 {
				t.Fatalf("a full fetch answered %v for a partition got session %d", kerr.ErrorForCode(code), id)
			}
		}
		if n := len(fs.byID); n != 0 {
			t.Fatalf("%d sessions kept, want none", n)
		}
	})
	t.Run("partition bound", func(t *testing.T) {
		fs := newFetchSessions(FetchSessionLimits{CacheSlots: 10, MaxPartitions: 3}, nil)
		if id := open(fs, 4); id != 0 {
			t.Fatal("a session of 4 partitions was created past a bound of 3")
		}
		id := open(fs, 3)
		grow := &kmsg.FetchRequest{Version: 12, SessionID: id, SessionEpoch: 1}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.Partitions = "u", []kmsg.FetchRequestTopicPartition{kmsg.NewFetchRequestTopicPartition()}
		grow.Topics = append(grow.Topics, rt)
		if _, code := fs.begin(c, grow); code != kerr.FetchSessionIDNotFound.Code || resolves(fs, id) {
			t.Fatalf("growing past the bound: code %d; want FETCH_SESSION_ID_NOT_FOUND and the session closed", code)
		}
	})
	t.Run("forgotten and rotated", func(t *testing.T) {
		fs := newFetchSessions(DefaultFetchSessionLimits(), nil)
		id := open(fs, 3)
		req := &kmsg.FetchRequest{Version: 12, SessionID: id, SessionEpoch: 1,
			ForgottenTopics: []kmsg.FetchRequestForgottenTopic{{Topic: "t", Partitions: []int32{1}}}}
		plan, code := fs.begin(c, req)
		if code != 0 || len(plan.read.Topics) != 1 || len(plan.read.Topics[0].Partitions) != 2 {
			t.Fatalf("after forgetting 1 of 3: code %d, reads %+v", code, plan.read.Topics)
		}
		// Partition 0 returns records: it goes to the back.
		resp := plan.read.ResponseKind().(*kmsg.FetchResponse)
		st := kmsg.NewFetchResponseTopic()
		st.Topic = "t"
		for _, p := range []int32{0, 2} {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition, sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = p, -1, -1, -1
			if p == 0 {
				sp.RecordBatches, sp.HighWatermark, sp.LastStableOffset = []byte{1}, 5, 5
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
		fs.finish(c, plan, resp)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].Partition != 0 {
			t.Fatalf("incremental response %+v, want partition 0 alone (2 has nothing new)", resp.Topics)
		}
		plan, _ = fs.begin(c, &kmsg.FetchRequest{Version: 12, SessionID: id, SessionEpoch: 2})
		var order []int32
		for _, rp := range plan.read.Topics[0].Partitions {
			order = append(order, rp.Partition)
		}
		if !slices.Equal(order, []int32{2, 0}) {
			t.Fatalf("read order %v, want [2 0]: the partition that returned records last", order)
		}
	})
}
