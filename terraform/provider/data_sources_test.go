package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/eddy-streams/eddy/api/client"
)

// testAccDataSources: eddy_cluster by id and by name, eddy_topic for a
// topic made over REST (not by Terraform), eddy_service_account by name
// (the organisation's admin) and by id; lookups that find nothing fail
// readably.
func testAccDataSources(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-data")
	ctx := ctxT(t)
	const base = `
resource "eddy_cluster" "c" {
  name                  = "lookup"
  max_connections       = 30
  default_topic_configs = { "retention.ms" = "60000" }
}
resource "eddy_service_account" "a" {
  name        = "app"
  description = "looked up"
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             tn.checkNoneLeft,
		Steps: []resource.TestStep{
			{
				Config: tn.config(`data "eddy_cluster" "x" {
  id   = "vc-1"
  name = "both"
}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?i)invalid attribute combination`),
			},
			{
				Config: tn.config(base),
				Check: func(s *terraform.State) error {
					id, err := attr(s, "eddy_cluster.c", "id")
					if err != nil {
						return err
					}
					n := int32(3)
					_, err = tn.admin.CreateTopic(ctx, id, client.CreateTopicRequest{Name: "made-over-rest", Partitions: &n,
						Configs: map[string]string{"cleanup.policy": "compact"}})
					return err
				},
			},
			{
				Config: tn.config(base + `
data "eddy_cluster" "by_id" { id = eddy_cluster.c.id }
data "eddy_cluster" "by_name" {
  name       = "lookup"
  depends_on = [eddy_cluster.c]
}
data "eddy_topic" "t" {
  cluster_id = eddy_cluster.c.id
  name       = "made-over-rest"
}
data "eddy_service_account" "admin" { name = "admin" }
data "eddy_service_account" "a" { id = eddy_service_account.a.id }
`),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrPair("data.eddy_cluster.by_id", "name", "eddy_cluster.c", "name"),
					resource.TestCheckResourceAttrPair("data.eddy_cluster.by_name", "id", "eddy_cluster.c", "id"),
					resource.TestCheckResourceAttrPair("data.eddy_cluster.by_name", "bootstrap_servers", "eddy_cluster.c", "bootstrap_servers"),
					resource.TestCheckResourceAttr("data.eddy_cluster.by_name", "status", "ready"),
					resource.TestCheckResourceAttr("data.eddy_cluster.by_name", "partitions_used", "3"),
					resource.TestCheckResourceAttr("data.eddy_cluster.by_name", "max_connections", "30"),
					resource.TestCheckResourceAttr("data.eddy_cluster.by_id", "max_requests_per_sec", "10000"),
					resource.TestCheckResourceAttr("data.eddy_cluster.by_id", "default_topic_configs.retention.ms", "60000"),
					resource.TestCheckResourceAttr("data.eddy_topic.t", "partitions", "3"),
					resource.TestCheckResourceAttr("data.eddy_topic.t", "configs.cleanup.policy", "compact"),
					resource.TestCheckResourceAttr("data.eddy_topic.t", "configs.retention.ms", "60000"),
					resource.TestCheckResourceAttr("data.eddy_topic.t", "high_watermark_total", "0"),
					resource.TestMatchResourceAttr("data.eddy_topic.t", "topic_id", regexp.MustCompile(`^[0-9a-f-]{36}$`)),
					resource.TestCheckResourceAttr("data.eddy_service_account.admin", "id", tn.org.AdminServiceAccount.ID),
					resource.TestCheckResourceAttr("data.eddy_service_account.admin", "org_admin", "true"),
					resource.TestCheckResourceAttr("data.eddy_service_account.a", "name", "app"),
					resource.TestCheckResourceAttr("data.eddy_service_account.a", "description", "looked up"),
				),
			},
			{
				Config: tn.config(base + `
data "eddy_topic" "missing" {
  cluster_id = eddy_cluster.c.id
  name       = "nope"
}`),
				ExpectError: regexp.MustCompile(`(?s)Could not read topic "nope".*Not found.*topic not found`),
			},
		},
	})
}
