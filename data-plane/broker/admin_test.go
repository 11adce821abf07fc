package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAdmin drives the admin APIs through franz-go's kadm: topics with
// configs, describe/alter configs, partitions, offsets by timestamp,
// delete records, delete topics.
func TestAdmin(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 2})
	cl := newClient(t, s)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Create with configs; a bad config and a duplicate are refused.
	created, err := adm.CreateTopics(ctx, 3, -1, map[string]*string{"retention.ms": kmsg.StringPtr("3600000"), "cleanup.policy": kmsg.StringPtr("delete")}, "admin-a")
	if err != nil || created["admin-a"].Err != nil {
		t.Fatalf("create: %v %v", err, created["admin-a"].Err)
	}
	if created["admin-a"].ID == [16]byte{} {
		t.Error("CreateTopics must return the topic id")
	}
	bad, _ := adm.CreateTopics(ctx, 1, -1, map[string]*string{"retention.ms": kmsg.StringPtr("soon")}, "admin-bad")
	if !errorIs(bad["admin-bad"].Err, kerr.InvalidConfig) {
		t.Errorf("bad config: got %v, want INVALID_CONFIG", bad["admin-bad"].Err)
	}
	dup, _ := adm.CreateTopics(ctx, 1, -1, nil, "admin-a")
	if !errorIs(dup["admin-a"].Err, kerr.TopicAlreadyExists) {
		t.Errorf("duplicate: got %v, want TOPIC_ALREADY_EXISTS", dup["admin-a"].Err)
	}
	vo, err := adm.ValidateCreateTopics(ctx, 2, -1, nil, "admin-validate-only")
	if err != nil || vo["admin-validate-only"].Err != nil {
		t.Fatalf("validate-only: %v %v", err, vo["admin-validate-only"].Err)
	}
	if td, _ := adm.ListTopics(ctx, "admin-validate-only"); td.Has("admin-validate-only") && td["admin-validate-only"].Err == nil {
		t.Error("validate-only created the topic")
	}

	// Describe and alter configs.
	rc, err := adm.DescribeTopicConfigs(ctx, "admin-a")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("describe: %+v", rc)
	if v := configValue(t, rc, "retention.ms"); v != "3600000" {
		t.Errorf("retention.ms = %q", v)
	}
	if v := configValue(t, rc, "max.message.bytes"); v != "1048588" {
		t.Errorf("default max.message.bytes = %q", v)
	}
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("60000")}}, "admin-a")
	if err != nil || alt[0].Err != nil {
		t.Fatalf("incremental alter: %v %v", err, alt[0].Err)
	}
	rc, _ = adm.DescribeTopicConfigs(ctx, "admin-a")
	if v := configValue(t, rc, "retention.ms"); v != "60000" {
		t.Errorf("after incremental alter retention.ms = %q", v)
	}
	// Non-incremental AlterConfigs resets what it does not name.
	st, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kmsg.StringPtr("1048576")}}, "admin-a")
	if err != nil || st[0].Err != nil {
		t.Fatalf("alter: %v %v", err, st[0].Err)
	}
	rc, _ = adm.DescribeTopicConfigs(ctx, "admin-a")
	if v := configValue(t, rc, "retention.ms"); v != "604800000" {
		t.Errorf("after AlterConfigs retention.ms = %q, want the default", v)
	}

	// Create partitions.
	cp, err := adm.CreatePartitions(ctx, 2, "admin-a")
	if err != nil || cp["admin-a"].Err != nil {
		t.Fatalf("create partitions: %v %v", err, cp["admin-a"].Err)
	}
	td, err := adm.ListTopics(ctx, "admin-a")
	if err != nil || len(td["admin-a"].Partitions) != 5 {
		t.Fatalf("after create partitions: %v %d partitions", err, len(td["admin-a"].Partitions))
	}

	// Offsets by timestamp.
	prod := newClient(t, s, kgo.DefaultProduceTopic("admin-a"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range 10 {
		r := &kgo.Record{Partition: 0, Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	lo, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4*time.Minute+time.Second).UnixMilli(), "admin-a")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("admin-a", 0); o.Err != nil || o.Offset != 5 {
		t.Fatalf("offset for timestamp: %+v, want 5", o)
	}
	end, _ := adm.ListEndOffsets(ctx, "admin-a")
	if o, _ := end.Lookup("admin-a", 0); o.Offset != 10 {
		t.Fatalf("end offset %d, want 10", o.Offset)
	}

	// Delete records moves the start offset.
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "admin-a", Partition: 0, At: 7})
	dr, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.Lookup("admin-a", 0); r.Err != nil || r.LowWatermark != 7 {
		t.Fatalf("delete records: %+v", r)
	}
	start, _ := adm.ListStartOffsets(ctx, "admin-a")
	if o, _ := start.Lookup("admin-a", 0); o.Offset != 7 {
		t.Fatalf("start offset %d after delete records, want 7", o.Offset)
	}

	// Delete topics.
	del, err := adm.DeleteTopics(ctx, "admin-a")
	if err != nil || del["admin-a"].Err != nil {
		t.Fatalf("delete: %v %v", err, del["admin-a"].Err)
	}
	gone, _ := adm.DeleteTopics(ctx, "admin-a")
	if !errorIs(gone["admin-a"].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("deleting again: %v, want UNKNOWN_TOPIC_OR_PARTITION", gone["admin-a"].Err)
	}
}

func errorIs(err error, want *kerr.Error) bool {
	ke, ok := err.(*kerr.Error)
	return ok && ke.Code == want.Code
}

func configValue(t *testing.T, rc kadm.ResourceConfigs, name string) string {
	t.Helper()
	for _, r := range rc {
		for _, c := range r.Configs {
			if c.Key == name {
				if c.Value == nil {
					return ""
				}
				return *c.Value
			}
		}
	}
	t.Fatalf("config %s not described", name)
	return ""
}
