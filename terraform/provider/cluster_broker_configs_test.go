package provider

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/poll"
)

// testAccClusterBrokerConfigs: eddy_cluster's broker_configs are checked
// at plan time, and the num.partitions they set is what a Kafka client
// creating a topic automatically gets, before and after a change in
// place; left out, the cluster has none again. A topic created with the
// topic defaults they set shows no drift.
func testAccClusterBrokerConfigs(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-broker-configs")
	ctx := ctxT(t)
	var id string
	remember := func(s *terraform.State) (err error) { id, err = attr(s, "eddy_cluster.c", "id"); return err }
	// autoCreated produces to a missing topic and checks the partitions
	// it was created with; a new topic each time, until the brokers have
	// the change.
	autoCreated := func(prefix string, want int) resource.TestCheckFunc {
		return func(*terraform.State) error {
			cl := e.kafka(t, tn.keyID+"@"+id, tn.secret, kgo.AllowAutoTopicCreation())
			adm := kadm.NewClient(cl)
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			n := 0
			return poll.Wait(ctx, func() error {
				n++
				topic := fmt.Sprintf("%s-%d", prefix, n)
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
					return err
				}
				td, err := adm.ListTopics(ctx, topic)
				if err != nil {
					return err
				}
				if got := len(td[topic].Partitions); got != want {
					return fmt.Errorf("%s was created with %d partitions, want %d", topic, got, want)
				}
				return nil
			})
		}
	}
	server := func(want map[string]string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			cl, err := tn.admin.GetCluster(ctx, id)
			if err == nil && !maps.Equal(cl.BrokerConfigs, want) {
				err = fmt.Errorf("server has broker configs %v, want %v", cl.BrokerConfigs, want)
			}
			return err
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy: func(s *terraform.State) error {
			if _, err := tn.admin.GetCluster(ctx, id); !client.IsNotFound(err) {
				return fmt.Errorf("cluster %s after destroy: %v", id, err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: tn.config(`resource "eddy_cluster" "c" {
  name           = "bc"
  broker_configs = { "num.partitions" = "0", "log.dirs" = "/tmp" }
}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid broker config.*Invalid broker config`),
			},
			{
				Config: tn.config(`resource "eddy_cluster" "c" {
  name           = "bc"
  broker_configs = { "num.partitions" = "6", "log.retention.ms" = "3600000" }
  timeouts { create = "2m" }
}

# Created with retention.ms from log.retention.ms, which is no drift.
resource "eddy_topic" "t" {
  cluster_id = eddy_cluster.c.id
  name       = "t"
  partitions = 1
}`),
				Check: resource.ComposeAggregateTestCheckFunc(
					remember,
					resource.TestCheckResourceAttr("eddy_cluster.c", "broker_configs.num.partitions", "6"),
					resource.TestCheckNoResourceAttr("eddy_topic.t", "configs.retention.ms"),
					server(map[string]string{"num.partitions": "6", "log.retention.ms": "3600000"}),
					autoCreated("auto-six", 6),
				),
			},
			{
				Config: tn.config(`resource "eddy_cluster" "c" {
  name           = "bc"
  broker_configs = { "num.partitions" = "3" }
}`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_cluster.c", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					server(map[string]string{"num.partitions": "3"}),
					autoCreated("auto-three", 3),
				),
			},
			{
				Config: tn.config(`resource "eddy_cluster" "c" { name = "bc" }`),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckNoResourceAttr("eddy_cluster.c", "broker_configs.%"),
					server(map[string]string{}),
				),
			},
		},
	})
}
