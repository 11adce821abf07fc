package provider

import (
	"fmt"
	"maps"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// testAccClusterQuotaConfig: eddy_cluster_quota and eddy_cluster_config
// set a cluster's quotas and cluster-level configs beside an eddy_cluster
// that ignores them (no drift either way), change in place, are read back
// by their data sources, import by cluster id, refuse a bad value at plan
// time, and on destroy put the quotas back to the defaults and empty the
// configs while the cluster stays.
func testAccClusterQuotaConfig(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-quota-config")
	ctx := ctxT(t)
	var id string
	remember := func(s *terraform.State) (err error) { id, err = attr(s, "eddy_cluster.c", "id"); return err }
	server := func(want map[string]int64, configs map[string]string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			cl, err := tn.admin.GetCluster(ctx, id)
			if err != nil {
				return err
			}
			have := limitMap(cl.Limits)
			for k, v := range want {
				if have[k] != v {
					return fmt.Errorf("server has %s = %d, want %d", k, have[k], v)
				}
			}
			if !maps.Equal(cl.BrokerConfigs, configs) {
				return fmt.Errorf("server has broker configs %v, want %v", cl.BrokerConfigs, configs)
			}
			return nil
		}
	}
	const cluster = `
resource "eddy_cluster" "c" {
  name = "quotas"
  lifecycle { ignore_changes = [broker_configs, ingress_mbps] }
}
`
	withBoth := func(quota, configs string) string {
		return tn.config(cluster + fmt.Sprintf(`
resource "eddy_cluster_quota" "q" {
  cluster_id = eddy_cluster.c.id
%s
}
resource "eddy_cluster_config" "k" {
  cluster_id = eddy_cluster.c.id
  configs    = %s
}
data "eddy_cluster_quota" "q" {
  cluster_id = eddy_cluster_quota.q.cluster_id
}
data "eddy_cluster_config" "k" {
  cluster_id = eddy_cluster_config.k.cluster_id
}
`, quota, configs))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy: func(*terraform.State) error {
			if _, err := tn.admin.GetCluster(ctx, id); !client.IsNotFound(err) {
				return fmt.Errorf("cluster %s after destroy: %v", id, err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config:      withBoth(`  max_topics = 0`, `{ "num.partitions" = "0" }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)max_topics.*between 1 and 100000|Invalid broker config`),
			},
			{
				Config: withBoth("  max_topics   = 5\n  ingress_mbps = 20", `{ "num.partitions" = "4" }`),
				Check: resource.ComposeAggregateTestCheckFunc(
					remember,
					server(map[string]int64{"max_topics": 5, "ingress_mbps": 20}, map[string]string{"num.partitions": "4"}),
					resource.TestCheckResourceAttrPair("eddy_cluster_quota.q", "id", "eddy_cluster.c", "id"),
					resource.TestCheckResourceAttr("eddy_cluster_quota.q", "plan", "standard"),
					resource.TestCheckResourceAttr("eddy_cluster_quota.q", "effective_limits.max_topics", "5"),
					resource.TestCheckResourceAttr("eddy_cluster_quota.q", "max_groups", fmt.Sprint(limits.Defaults().MaxGroups)),
					resource.TestCheckResourceAttr("data.eddy_cluster_quota.q", "max_topics", "5"),
					resource.TestCheckResourceAttr("data.eddy_cluster_quota.q", "ingress_mbps", "20"),
					resource.TestCheckResourceAttr("data.eddy_cluster_quota.q", "ceilings.max_topics", "100000"),
					resource.TestCheckResourceAttr("data.eddy_cluster_config.k", "configs.num.partitions", "4"),
					resource.TestCheckResourceAttr("data.eddy_cluster_config.k", "configs.%", "1"),
				),
			},
			{
				Config: withBoth("  max_topics   = 7\n  ingress_mbps = 20", `{ "num.partitions" = "2", "log.retention.ms" = "3600000" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_cluster_quota.q", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("eddy_cluster_config.k", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("eddy_cluster.c", plancheck.ResourceActionNoop),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					server(map[string]int64{"max_topics": 7, "ingress_mbps": 20}, map[string]string{"num.partitions": "2", "log.retention.ms": "3600000"}),
					resource.TestCheckResourceAttr("data.eddy_cluster_quota.q", "max_topics", "7"),
					resource.TestCheckResourceAttr("data.eddy_cluster_config.k", "configs.log.retention.ms", "3600000"),
				),
			},
			{
				ResourceName:      "eddy_cluster_quota.q",
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: func(*terraform.State) (string, error) { return id, nil },
			},
			{
				ResourceName:      "eddy_cluster_config.k",
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: func(*terraform.State) (string, error) { return id, nil },
			},
			{
				// Destroying both leaves the cluster with the default
				// quotas and no configs.
				Config: tn.config(cluster),
				Check: server(map[string]int64{"max_topics": int64(limits.Defaults().MaxTopics), "ingress_mbps": int64(limits.Defaults().IngressMBps)},
					map[string]string{}),
			},
		},
	})
}
