package provider

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testAccExampleComplete applies terraform/examples/complete in ONE
// apply from nothing; a Kafka client then logs in with the API key it
// made (SASL/PLAIN) and produces to the topic it made, and the records
// show in that topic's high watermarks over REST. The example's ACL lets
// that client create topics named orders-… (its role does not): one such
// CreateTopics succeeds, another name is refused with
// TOPIC_AUTHORIZATION_FAILED. The destroy that ends the test case removes
// everything (CheckDestroy).
func testAccExampleComplete(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-example")
	ctx := ctxT(t)
	resource.Test(t, resource.TestCase{
		CheckDestroy: tn.checkNoneLeft,
		Steps: []resource.TestStep{{
			// The example has its own provider block, so the provider
			// is given to the step rather than the test case.
			ProtoV6ProviderFactories: factories,
			ConfigDirectory:          config.StaticDirectory("../examples/complete"),
			ConfigVariables: config.Variables{
				"endpoint":     config.StringVariable(e.s.APIURL()),
				"api_key":      config.StringVariable(tn.keyID),
				"api_secret":   config.StringVariable(tn.secret),
				"cluster_name": config.StringVariable("shop"),
			},
			Check: func(s *terraform.State) error {
				clusterID, err := attr(s, "eddy_cluster.main", "id")
				if err != nil {
					return err
				}
				topic, err := attr(s, "eddy_topic.orders", "name")
				if err != nil {
					return err
				}
				keyID, err := attr(s, "eddy_api_key.app", "id")
				if err != nil {
					return err
				}
				secret, err := attr(s, "eddy_api_key.app", "secret")
				if err != nil {
					return err
				}
				cl := e.kafka(t, keyID, secret, kgo.DefaultProduceTopic(topic))
				const n = 50
				recs := make([]*kgo.Record, n)
				for i := range recs {
					recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "order-%d", i)}
				}
				// Brokers learn of new keys and grants within moments:
				// retry a refused produce for a while.
				deadline := time.Now().Add(time.Minute)
				for {
					err := cl.ProduceSync(ctx, recs...).FirstErr()
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						return fmt.Errorf("produce with the example's API key: %w", err)
					}
					t.Logf("produce with the example's API key: %v (retrying)", err)
					time.Sleep(500 * time.Millisecond)
				}
				top, err := tn.admin.GetTopic(ctx, clusterID, topic)
				if err != nil {
					return err
				}
				var hw int64
				for _, p := range top.Partitions {
					hw += p.HighWatermark
				}
				if hw < n || top.PartitionCount != 6 { // a refused attempt may have stored some
					return fmt.Errorf("topic %s of %s after producing %d records: %d partitions, high watermarks sum to %d", topic, clusterID, n, top.PartitionCount, hw)
				}
				return createsOnlyOrdersTopics(ctx, t, kadm.NewClient(cl))
			},
		}},
	})
}

// createsOnlyOrdersTopics: the example's ACL allows CREATE on topics
// prefixed orders-, and nothing else grants it. The allowed create goes
// first, so the refusal after it is the ACL's pattern at work rather than
// a broker that has not heard of the ACL yet.
func createsOnlyOrdersTopics(ctx context.Context, t *testing.T, adm *kadm.Client) error {
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := adm.CreateTopic(ctx, 1, -1, nil, "orders-dead-letters")
		if err == nil {
			err = r.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) { // a retry after a lost answer
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("create orders-dead-letters as the application (the ACL allows it): %w", err)
		}
		t.Logf("create orders-dead-letters: %v (retrying)", err)
		time.Sleep(500 * time.Millisecond)
	}
	r, err := adm.CreateTopic(ctx, 1, -1, nil, "payments")
	if err == nil {
		err = r.Err
	}
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		return fmt.Errorf("create payments as the application: %v, want %v", err, kerr.TopicAuthorizationFailed)
	}
	return nil
}
