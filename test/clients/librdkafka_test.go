//go:build cgo

package clients_test

import (
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// librdkafkaOIDC: librdkafka (the library inside confluent-kafka-go, which
// is built with OIDC support; Debian's kcat is not) with
// sasl.oauthbearer.method=oidc fetches its own tokens from Eddy's token
// endpoint and produces and consumes.
func librdkafkaOIDC(t *testing.T, e *env) {
	conf := func(extra kafka.ConfigMap) *kafka.ConfigMap {
		c := kafka.ConfigMap{
			"bootstrap.servers":                   e.bootstrap,
			"security.protocol":                   e.protocol,
			"sasl.mechanisms":                     "OAUTHBEARER",
			"sasl.oauthbearer.method":             "oidc",
			"sasl.oauthbearer.client.id":          e.keyID,
			"sasl.oauthbearer.client.secret":      e.secret,
			"sasl.oauthbearer.token.endpoint.url": e.tokenURL,
		}
		if e.ca != "" {
			c["ssl.ca.location"] = e.ca
		}
		for k, v := range extra {
			c[k] = v
		}
		return &c
	}
	p, err := kafka.NewProducer(conf(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	done := make(chan kafka.Event, 1)
	if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &e.topic, Partition: 1}, Value: []byte("librdkafka-oidc")}, done); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-done:
		if m := ev.(*kafka.Message); m.TopicPartition.Error != nil {
			t.Fatalf("produce: %v", m.TopicPartition.Error)
		}
	case <-time.After(time.Minute):
		t.Fatal("librdkafka produce not acknowledged within a minute")
	}

	c, err := kafka.NewConsumer(conf(kafka.ConfigMap{"group.id": "librdkafka-oidc", "auto.offset.reset": "earliest"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Assign([]kafka.TopicPartition{{Topic: &e.topic, Partition: 1, Offset: kafka.OffsetBeginning}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		m, err := c.ReadMessage(time.Second)
		if err != nil {
			if ke, ok := err.(kafka.Error); ok && ke.IsTimeout() {
				continue
			}
			t.Fatalf("consume: %v", err)
		}
		if string(m.Value) == "librdkafka-oidc" {
			return
		}
	}
	t.Fatal("librdkafka did not read its record back within a minute")
}
