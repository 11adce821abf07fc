package store_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/store"
)

// TestBrokerConfigs: a cluster's broker configs are stored as set, read by
// the brokers' snapshot (num.partitions, auto.create.topics.enable), kept
// within the cluster's effective limits, and give new topics the defaults
// they set beneath the topic's own configs.
func TestBrokerConfigs(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	org, _, _, err := st.CreateOrg(ctx, "bc", []byte("h"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := limits.Defaults()
	l.MaxPartitions, l.MaxRetentionMs = 20, 7_200_000
	cl, err := st.CreateClusterWith(ctx, org.ID, "c", l, nil, map[string]string{"num.partitions": "6"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cl.AutoCreateTopics || cl.DefaultPartitions != 6 || cl.BrokerConfigs["num.partitions"] != "6" {
		t.Fatalf("created cluster: auto %v, partitions %d, configs %v", cl.AutoCreateTopics, cl.DefaultPartitions, cl.BrokerConfigs)
	}

	set := func(k, v string) error {
		return st.SetBrokerConfigs(ctx, cl.ID, false, func(m map[string]string) (map[string]string, error) {
			m[k] = v
			return m, nil
		})
	}
	if err := set("num.partitions", "21"); !errors.Is(err, store.ErrLimit) {
		t.Errorf("num.partitions above max_partitions: %v, want ErrLimit", err)
	}
	if err := set("log.retention.ms", "-1"); !errors.Is(err, store.ErrLimit) {
		t.Errorf("log.retention.ms forever above max_retention_ms: %v, want ErrLimit", err)
	}
	if err := set("log.retention.ms", "3600000"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAutoCreateTopics(ctx, cl.ID, false); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"num.partitions": "6", "log.retention.ms": "3600000", "auto.create.topics.enable": "false"}
	if got, err := st.BrokerConfigs(ctx, cl.ID); err != nil || !maps.Equal(got, want) {
		t.Errorf("BrokerConfigs = %v, %v; want %v", got, err, want)
	}
	md, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sc := md.Clusters[cl.ID]; sc.AutoCreateTopics || sc.DefaultPartitions != 6 {
		t.Errorf("snapshot: auto %v, partitions %d; want false, 6", sc.AutoCreateTopics, sc.DefaultPartitions)
	}

	if _, _, err := st.CreateTopic(ctx, org.ID, cl.ID, "a", 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateTopic(ctx, org.ID, cl.ID, "b", 1, map[string]string{"retention.ms": "60000"}); err != nil {
		t.Fatal(err)
	}
	for topic, ms := range map[string]string{"a": "3600000", "b": "60000"} {
		if cfg, err := st.TopicConfigs(ctx, cl.ID, topic); err != nil || cfg["retention.ms"] != ms {
			t.Errorf("topic %s configs %v, %v; want retention.ms %s", topic, cfg, err, ms)
		}
	}

	// max_partitions lowered below num.partitions: the other configs can
	// still change; num.partitions only to within it.
	if _, err := st.SetLimits(ctx, cl.ID, false, func(own *limits.Limits, _ limits.Limits) error {
		own.MaxPartitions = 5
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := set("log.retention.ms", "1800000"); err != nil {
		t.Errorf("log.retention.ms with num.partitions above a lowered max_partitions: %v", err)
	}
	if err := set("num.partitions", "7"); !errors.Is(err, store.ErrLimit) {
		t.Errorf("num.partitions raised above max_partitions: %v, want ErrLimit", err)
	}

	// Validate-only: the same checks, nothing written.
	validate := func(k, v string) error {
		return st.SetBrokerConfigs(ctx, cl.ID, true, func(m map[string]string) (map[string]string, error) {
			m[k] = v
			return m, nil
		})
	}
	if err := validate("log.retention.ms", "-1"); !errors.Is(err, store.ErrLimit) {
		t.Errorf("validate-only log.retention.ms forever: %v, want ErrLimit", err)
	}
	if err := validate("message.max.bytes", "2000000"); err != nil {
		t.Errorf("validate-only message.max.bytes: %v", err)
	}
	if got, err := st.BrokerConfigs(ctx, cl.ID); err != nil || got["message.max.bytes"] != "" || got["log.retention.ms"] != "1800000" {
		t.Errorf("after validate-only: %v, %v; want nothing written", got, err)
	}
}

// TestCreateTopicDefaults: however a topic is created, it starts with its
// own configs over the cluster's default_topic_configs over its broker
// configs' topic defaults, and CreateTopic returns what it stored.
func TestCreateTopicDefaults(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	org, _, _, err := st.CreateOrg(ctx, "ctd", []byte("h"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := st.CreateClusterWith(ctx, org.ID, "c", limits.Defaults(),
		map[string]string{"retention.ms": "120000", "cleanup.policy": "compact"},
		map[string]string{"log.retention.ms": "3600000", "message.max.bytes": "2000000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, stored, err := st.CreateTopic(ctx, org.ID, cl.ID, "t", 1, map[string]string{"cleanup.policy": "delete"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"retention.ms": "120000", "cleanup.policy": "delete", "max.message.bytes": "2000000"}
	if !maps.Equal(stored, want) {
		t.Errorf("CreateTopic returned %v, want %v", stored, want)
	}
	if got, err := st.TopicConfigs(ctx, cl.ID, "t"); err != nil || !maps.Equal(got, want) {
		t.Errorf("stored configs %v, %v; want %v", got, err, want)
	}
}
