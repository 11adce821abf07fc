package provider

import (
	"fmt"
	"maps"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eddy-streams/eddy/api/client"
)

// testAccTopic: plan-time validation, create, partitions grow in place
// with config changes (keeping the cluster-default configs), import, a
// config altered over Kafka shows as drift and is put back, fewer
// partitions replace the topic, destroy.
func testAccTopic(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-topic")
	ctx := ctxT(t)
	cluster := func(topic string) string {
		return tn.config(`
resource "eddy_cluster" "c" {
  name = "topics"
  default_topic_configs = { "retention.ms" = "3600000", "max.message.bytes" = "2000000" }
}
` + topic)
	}
	var clusterID, topicUUID string
	remember := func(s *terraform.State) (err error) {
		if clusterID, err = attr(s, "eddy_cluster.c", "id"); err != nil {
			return err
		}
		topicUUID, err = attr(s, "eddy_topic.t", "topic_id")
		return err
	}
	server := func(partitions int32, configs map[string]string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			top, err := tn.admin.GetTopic(ctx, clusterID, "orders")
			if err != nil {
				return err
			}
			if top.PartitionCount != partitions || !maps.Equal(top.Configs, configs) {
				return fmt.Errorf("server has %d partitions, configs %v; want %d, %v", top.PartitionCount, top.Configs, partitions, configs)
			}
			return nil
		}
	}
	const v2 = `
resource "eddy_topic" "t" {
  cluster_id = eddy_cluster.c.id
  name       = "orders"
  partitions = 4
  configs    = { "cleanup.policy" = "delete", "retention.ms" = "7200000" }
}`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             tn.checkNoneLeft,
		Steps: []resource.TestStep{
			{
				Config: cluster(`resource "eddy_topic" "t" {
  cluster_id = "vc-x"
  name       = "no/slashes"
  partitions = 0
  configs    = { "retention.msx" = "1", "cleanup.policy" = "shred" }
}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid topic name.*` + `|` + `(?s)unknown topic config "retention.msx"`),
			},
			{
				Config: cluster(`resource "eddy_topic" "t" {
  cluster_id = eddy_cluster.c.id
  name       = "orders"
  partitions = 2
  configs    = { "cleanup.policy" = "compact" }
}`),
				Check: resource.ComposeAggregateTestCheckFunc(
					remember,
					resource.TestCheckResourceAttr("eddy_topic.t", "partitions", "2"),
					resource.TestCheckResourceAttr("eddy_topic.t", "configs.%", "1"),
					// The cluster's defaults are merged in on the server, yet
					// the follow-up plan (run by the framework) is empty.
					server(2, map[string]string{"cleanup.policy": "compact", "retention.ms": "3600000", "max.message.bytes": "2000000"}),
				),
			},
			{
				Config: cluster(v2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_topic.t", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrPtr("eddy_topic.t", "topic_id", &topicUUID),
					server(4, map[string]string{"cleanup.policy": "delete", "retention.ms": "7200000", "max.message.bytes": "2000000"}),
				),
			},
			{
				ResourceName:      "eddy_topic.t",
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				// Drift over Kafka: retention.ms altered with
				// IncrementalAlterConfigs by an admin client. The plan
				// must show it and the apply puts it back.
				PreConfig: func() {
					adm := kadm.NewClient(e.kafka(t, tn.keyID+"@"+clusterID, tn.secret))
					rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("1000")}}, "orders")
					if err == nil {
						_, err = rs.On("orders", nil)
					}
					if err != nil {
						t.Fatalf("alter config over Kafka: %v", err)
					}
				},
				Config: cluster(v2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_topic.t", plancheck.ResourceActionUpdate),
				}},
				Check: func(*terraform.State) error {
					adm := kadm.NewClient(e.kafka(t, tn.keyID+"@"+clusterID, tn.secret))
					rcs, err := adm.DescribeTopicConfigs(ctx, "orders")
					if err != nil {
						return err
					}
					rc, err := rcs.On("orders", nil)
					if err != nil {
						return err
					}
					for _, c := range rc.Configs {
						if c.Key == "retention.ms" && (c.Value == nil || *c.Value != "7200000") {
							return fmt.Errorf("retention.ms over Kafka after apply = %v", c.MaybeValue())
						}
					}
					return nil
				},
			},
			{
				// A config added over REST is drift too.
				PreConfig: func() {
					cfg := map[string]string{"cleanup.policy": "delete", "retention.ms": "7200000", "max.message.bytes": "2000000", "segment.ms": "600000"}
					if _, err := tn.admin.UpdateTopic(ctx, clusterID, "orders", client.UpdateTopicRequest{Configs: &cfg}); err != nil {
						t.Fatal(err)
					}
				},
				Config:             cluster(v2),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config: cluster(v2),
				Check:  server(4, map[string]string{"cleanup.policy": "delete", "retention.ms": "7200000", "max.message.bytes": "2000000"}),
			},
			{
				// Fewer partitions: the topic is replaced.
				Config: cluster(`resource "eddy_topic" "t" {
  cluster_id = eddy_cluster.c.id
  name       = "orders"
  partitions = 3
}`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_topic.t", plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error {
						id, err := attr(s, "eddy_topic.t", "topic_id")
						if err == nil && id == topicUUID {
							err = fmt.Errorf("topic id unchanged (%s): not replaced", id)
						}
						return err
					},
					resource.TestCheckNoResourceAttr("eddy_topic.t", "configs.%"),
					server(3, map[string]string{"retention.ms": "3600000", "max.message.bytes": "2000000"}),
				),
			},
		},
	})
}
