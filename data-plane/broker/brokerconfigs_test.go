package broker_test

import (
	"context"
	"fmt"
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

// TestBrokerConfigs: the cluster's broker configs describe on the broker
// resource ("" and any broker id); the Kafka API alters the dynamic ones
// on the cluster default only; num.partitions (set as the REST API sets
// it) is what automatic creation and CreateTopics without a count use,
// and the topic defaults apply to new topics.
func TestBrokerConfigs(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1})
	adm := kadm.NewClient(newClient(t, s))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rc, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := configValue(t, rc, "num.partitions"); v != "1" {
		t.Errorf("num.partitions = %q, want the default 1", v)
	}
	if v := configValue(t, rc, "auto.create.topics.enable"); v != "true" {
		t.Errorf("auto.create.topics.enable = %q", v)
	}
	if rc, err := adm.DescribeBrokerConfigs(ctx, 1); err != nil || configValue(t, rc, "message.max.bytes") != "1048588" {
		t.Errorf("broker 1's configs: %v %v", rc, err)
	}

	// Read-only through the Kafka API, as in Kafka; per-broker refused.
	alter := func(name, value string, brokers ...int32) error {
		t.Helper()
		res, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: kmsg.StringPtr(value)}}, brokers...)
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Err
	}
	if err := alter("num.partitions", "6"); !errorIs(err, kerr.InvalidRequest) {
		t.Errorf("num.partitions through the Kafka API: %v, want INVALID_REQUEST", err)
	}
	if err := alter("log.retention.ms", "3600000", 1); !errorIs(err, kerr.InvalidRequest) {
		t.Errorf("altering broker 1: %v, want INVALID_REQUEST", err)
	}
	if err := alter("log.retention.ms", "soon"); !errorIs(err, kerr.InvalidConfig) {
		t.Errorf("bad log.retention.ms: %v, want INVALID_CONFIG", err)
	}
	if err := alter("log.retention.ms", "3600000"); err != nil {
		t.Fatalf("log.retention.ms: %v", err)
	}
	// Validate-only checks and writes nothing.
	if res, err := adm.ValidateAlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kmsg.StringPtr("60000")}}); err != nil || res[0].Err != nil {
		t.Errorf("validate-only log.retention.ms: %v %v", res, err)
	}
	rc, err = adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := describedConfig(t, rc, "log.retention.ms"); c.Value == nil || *c.Value != "3600000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Errorf("log.retention.ms after alter: %+v, want 3600000 from the dynamic cluster default", c)
	}

	// num.partitions as the REST API and Terraform set it.
	st, err := store.Open(ctx, url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SetBrokerConfigs(ctx, "vc-dev", false, func(m map[string]string) (map[string]string, error) {
		m["num.partitions"] = "6"
		return m, nil
	}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "num.partitions 6 described", func() error {
		rc, err := adm.DescribeBrokerConfigs(ctx)
		if err != nil {
			return err
		}
		if v := configValue(t, rc, "num.partitions"); v != "6" {
			return fmt.Errorf("num.partitions %s", v)
		}
		return nil
	})

	// Produce to a missing topic creates it with num.partitions, once the
	// broker's snapshot has it.
	n := 0
	poll.Until(t, 30*time.Second, "auto-created topic with 6 partitions", func() error {
		n++
		topic := fmt.Sprintf("auto-six-%d", n)
		prod := newClient(t, s, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
		defer prod.Close()
		if err := prod.ProduceSync(ctx, kgo.StringRecord("v")).FirstErr(); err != nil {
			return err
		}
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return err
		}
		if got := len(td[topic].Partitions); got != 6 {
			return fmt.Errorf("%s has %d partitions", topic, got)
		}
		return nil
	})
	created, err := adm.CreateTopics(ctx, -1, -1, nil, "default-count")
	if err != nil || created["default-count"].Err != nil || created["default-count"].NumPartitions != 6 {
		t.Errorf("CreateTopics without a count: %+v %v", created["default-count"], err)
	}
	// The answer shows the configs as stored, the cluster's defaults in.
	if c := created["default-count"].Configs["retention.ms"]; c.Value == nil || *c.Value != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("CreateTopics answer's retention.ms: %+v, want 3600000 set on the topic", c)
	}
	tc, err := adm.DescribeTopicConfigs(ctx, "default-count")
	if err != nil || configValue(t, tc, "retention.ms") != "3600000" {
		t.Errorf("new topic's retention.ms: %v %v, want log.retention.ms 3600000", tc, err)
	}
}

// describedConfig returns config name of rc, failing the test if it is
// not described.
func describedConfig(t *testing.T, rc kadm.ResourceConfigs, name string) kadm.Config {
	t.Helper()
	for _, r := range rc {
		for _, c := range r.Configs {
			if c.Key == name {
				return c
			}
		}
	}
	t.Fatalf("config %s not described", name)
	return kadm.Config{}
}
