package broker_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestInternalTopics: __consumer_offsets and __transaction_state are
// listed as internal, with a partition per coordinator slot; a regex
// consumer of ".*" leaves them out; they cannot be produced to, deleted
// or created; the APIs that name them answer without error (empty, no
// records).
func TestInternalTopics(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 2})
	cl := newClient(t, s)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, cl, "regex-a", 2, nil)

	td, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"__consumer_offsets", "__transaction_state"} {
		d, ok := td[name]
		if !ok || d.Err != nil || !d.IsInternal || len(d.Partitions) == 0 || d.ID == (kadm.TopicID{}) {
			t.Errorf("%s: %+v, listed %v; want internal with partitions and an id", name, d, ok)
		}
		for _, p := range d.Partitions {
			if p.Leader < 0 || p.Err != nil {
				t.Errorf("%s partition %d: leader %d, %v", name, p.Partition, p.Leader, p.Err)
			}
		}
	}
	if td["regex-a"].IsInternal {
		t.Error("regex-a listed as internal")
	}
	if plain, _ := adm.ListTopics(ctx); plain.Has("__consumer_offsets") {
		t.Error("ListTopics without internal topics lists __consumer_offsets")
	}
	if byName, err := adm.ListTopicsWithInternal(ctx, "__consumer_offsets"); err != nil || !byName["__consumer_offsets"].IsInternal {
		t.Errorf("named Metadata: %+v %v", byName, err)
	}

	// Read-only: produce, delete and create are refused.
	prod := newClient(t, s, kgo.RecordRetries(2))
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("produce to __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	del, err := adm.DeleteTopics(ctx, "__consumer_offsets")
	if err != nil || !errorIs(del["__consumer_offsets"].Err, kerr.InvalidRequest) {
		t.Errorf("delete __consumer_offsets: %v %v, want INVALID_REQUEST", err, del["__consumer_offsets"].Err)
	}
	created, _ := adm.CreateTopics(ctx, 1, -1, nil, "__transaction_state")
	if !errorIs(created["__transaction_state"].Err, kerr.TopicAlreadyExists) {
		t.Errorf("create __transaction_state: %v, want TOPIC_ALREADY_EXISTS", created["__transaction_state"].Err)
	}

	// Describe, list offsets: no errors, nothing in them.
	rc, err := adm.DescribeTopicConfigs(ctx, "__consumer_offsets")
	if err != nil || configValue(t, rc, "cleanup.policy") != "compact" {
		t.Errorf("configs of __consumer_offsets: %v %v", rc, err)
	}
	end, err := adm.ListEndOffsets(ctx, "__consumer_offsets")
	if err != nil || end.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, end.Error())
	}
	end.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("end offset of %s/%d: %d, want 0", o.Topic, o.Partition, o.Offset)
		}
	})
	if _, err := adm.FetchOffsets(ctx, "no-such-group"); err != nil {
		t.Errorf("offset fetch: %v", err)
	}
	// What names them otherwise answers a Kafka error, on a connection
	// that keeps serving.
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "__consumer_offsets", Partition: 0, At: 1, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, "g-internal", offs); err == nil && r.Error() == nil {
		t.Error("committing an offset of __consumer_offsets succeeded")
	}
	if r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")}}, "__consumer_offsets"); err == nil && r[0].Err == nil {
		t.Error("altering the configs of __consumer_offsets succeeded")
	}
	if r, err := adm.CreatePartitions(ctx, 1, "__consumer_offsets"); err == nil && r["__consumer_offsets"].Err == nil {
		t.Error("adding partitions to __consumer_offsets succeeded")
	}
	// Sent to broker 1 as they are: kgo would route them by leader.
	producers := kmsg.NewPtrDescribeProducersRequest()
	pt := kmsg.NewDescribeProducersRequestTopic()
	pt.Topic, pt.Partitions = "__consumer_offsets", []int32{0}
	producers.Topics = append(producers.Topics, pt)
	if _, err := cl.Broker(1).Request(ctx, producers); err != nil {
		t.Errorf("DescribeProducers: %v", err)
	}
	epochs := kmsg.NewPtrOffsetForLeaderEpochRequest()
	et := kmsg.NewOffsetForLeaderEpochRequestTopic()
	et.Topic = "__consumer_offsets"
	ep := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	ep.CurrentLeaderEpoch = -1
	et.Partitions = append(et.Partitions, ep)
	epochs.Topics = append(epochs.Topics, et)
	if _, err := cl.Broker(1).Request(ctx, epochs); err != nil {
		t.Errorf("OffsetForLeaderEpoch: %v", err)
	}
	if _, err := adm.ListTopicsWithInternal(ctx); err != nil {
		t.Errorf("the connection after them: %v", err)
	}

	// A regex consumer of everything consumes regex-a, not the internal
	// topics; a consumer naming __consumer_offsets gets nothing, and no
	// error.
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "regex-a", Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	re := newClient(t, s, kgo.ConsumeRegex(), kgo.ConsumeTopics(".*"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := re.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	fs.EachRecord(func(r *kgo.Record) {
		if r.Topic != "regex-a" {
			t.Errorf("regex consumer got a record of %s", r.Topic)
		}
	})
	if got := re.GetConsumeTopics(); !slices.Contains(got, "regex-a") || slices.Contains(got, "__consumer_offsets") || slices.Contains(got, "__transaction_state") {
		t.Errorf("regex consumer consumes %v", got)
	}
	direct := newClient(t, s, kgo.ConsumeTopics("__consumer_offsets"), kgo.FetchMaxWait(200*time.Millisecond))
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	fs = direct.PollFetches(pctx)
	fs.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("consuming %s/%d: %v", topic, p, err)
		}
	})
	if n := fs.NumRecords(); n != 0 {
		t.Errorf("__consumer_offsets gave %d records", n)
	}

	// Metadata by topic id answers internal topics too.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = [16]byte(td["__consumer_offsets"].ID)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || !resp.Topics[0].IsInternal {
		t.Errorf("Metadata by the id of __consumer_offsets: %+v %v", resp, err)
	}
}
