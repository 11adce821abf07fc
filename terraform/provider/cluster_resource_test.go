package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// testAccCluster: create (waiting for ready), update in place, import,
// drift made over REST, plan-time validation, destroy.
func testAccCluster(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-cluster")
	ctx := ctxT(t)
	var id string
	remember := func(s *terraform.State) (err error) { id, err = attr(s, "eddy_cluster.c", "id"); return err }
	sameID := func(s *terraform.State) error {
		got, err := attr(s, "eddy_cluster.c", "id")
		if err == nil && got != id {
			err = fmt.Errorf("cluster id changed from %s to %s: replaced instead of updated", id, got)
		}
		return err
	}
	server := func(check func(client.Cluster) error) resource.TestCheckFunc {
		return func(*terraform.State) error {
			cl, err := tn.admin.GetCluster(ctx, id)
			if err != nil {
				return err
			}
			return check(cl)
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy: func(s *terraform.State) error {
			if _, err := tn.admin.GetCluster(ctx, id); !client.IsNotFound(err) {
				return fmt.Errorf("cluster %s after destroy: %v", id, err)
			}
			return tn.checkNoneLeft(s)
		},
		Steps: []resource.TestStep{
			{
				Config:      tn.config(`resource "eddy_cluster" "c" { name = "-bad name" }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Invalid cluster name`),
			},
			{
				Config: tn.config(`resource "eddy_cluster" "c" {
  name = "c1"
  max_partitions = 0
  default_topic_configs = { "retention.ms" = "soon" }
}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)max_partitions.*retention.ms|(?s)retention.ms.*max_partitions`),
			},
			{
				Config: tn.config(`resource "eddy_cluster" "c" {
  name                 = "c1"
  max_requests_per_sec = 0
  max_connections      = 100001
}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)max_requests_per_sec.*max_connections|(?s)max_connections.*max_requests_per_sec`),
			},
			{
				Config: tn.config(`resource "eddy_cluster" "c" {
  name           = "c1"
  max_partitions = 20
  default_topic_configs = { "retention.ms" = "3600000" }
  timeouts { create = "2m" }
}`),
				Check: resource.ComposeAggregateTestCheckFunc(
					remember,
					resource.TestCheckResourceAttr("eddy_cluster.c", "status", client.StatusReady),
					resource.TestCheckResourceAttr("eddy_cluster.c", "max_partitions", "20"),
					resource.TestCheckResourceAttr("eddy_cluster.c", "ingress_mbps", "100"), // the server's default
					resource.TestCheckResourceAttr("eddy_cluster.c", "max_requests_per_sec", "10000"),
					resource.TestCheckResourceAttr("eddy_cluster.c", "max_connections", "1000"),
					resource.TestCheckResourceAttr("eddy_cluster.c", "default_topic_configs.retention.ms", "3600000"),
					resource.TestCheckResourceAttrSet("eddy_cluster.c", "bootstrap_servers"),
					resource.TestCheckResourceAttr("eddy_cluster.c", "sasl_mechanisms.#", "2"),
					resource.TestMatchResourceAttr("eddy_cluster.c", "oauth_token_endpoint", regexp.MustCompile(`/oauth2/token$`)),
					server(func(cl client.Cluster) error {
						if cl.Name != "c1" || cl.Limits.MaxPartitions != 20 || cl.Status != client.StatusReady {
							return fmt.Errorf("server has %+v", cl)
						}
						return nil
					}),
				),
			},
			{
				// Rename, new limits, defaults cleared: all in place.
				Config: tn.config(`resource "eddy_cluster" "c" {
  name                 = "c2"
  max_partitions       = 30
  egress_mbps          = 50
  max_requests_per_sec = 500
  max_connections      = 25
}`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_cluster.c", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					sameID,
					resource.TestCheckNoResourceAttr("eddy_cluster.c", "default_topic_configs.%"),
					server(func(cl client.Cluster) error {
						if cl.Name != "c2" || cl.Limits.MaxPartitions != 30 || cl.Limits.EgressMBps != 50 || len(cl.DefaultTopicConfigs) != 0 ||
							cl.Limits.MaxRequestsPerSec != 500 || cl.Limits.MaxConnections != 25 {
							return fmt.Errorf("server has %+v", cl)
						}
						return nil
					}),
				),
			},
			{
				ResourceName:      "eddy_cluster.c",
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				// Drift: renamed and re-limited over REST; the plan puts it back.
				PreConfig: func() {
					if _, err := tn.admin.UpdateCluster(ctx, id, client.UpdateClusterRequest{Name: ptr("renamed-outside"),
						Limits: &limits.Limits{MaxPartitions: 40, MaxConnections: 99}}); err != nil {
						t.Fatal(err)
					}
				},
				Config: tn.config(`resource "eddy_cluster" "c" {
  name                 = "c2"
  max_partitions       = 30
  egress_mbps          = 50
  max_requests_per_sec = 500
  max_connections      = 25
}`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_cluster.c", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(sameID, server(func(cl client.Cluster) error {
					if cl.Name != "c2" || cl.Limits.MaxPartitions != 30 || cl.Limits.MaxConnections != 25 || cl.Limits.MaxRequestsPerSec != 500 {
						return fmt.Errorf("drift not corrected: %+v", cl)
					}
					return nil
				})),
			},
		},
	})
}

func ptr[T any](v T) *T { return &v }
