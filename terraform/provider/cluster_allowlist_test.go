package provider

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// testAccClusterAllowList: allowed_cidrs reaches the server, changes in
// place, is cleared by leaving it out, and a block not in network form is
// refused at plan time (the server would store another spelling).
func testAccClusterAllowList(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-allow")
	server := func(want ...string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			id, err := attr(s, "eddy_cluster.c", "id")
			if err != nil {
				return err
			}
			cl, err := tn.admin.GetCluster(context.Background(), id)
			if err != nil {
				return err
			}
			if !slices.Equal(cl.AllowedCIDRs, want) && (len(want) > 0 || len(cl.AllowedCIDRs) > 0) {
				return fmt.Errorf("server allowed_cidrs = %v, want %v", cl.AllowedCIDRs, want)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             tn.checkNoneLeft,
		Steps: []resource.TestStep{
			{
				Config: tn.config(`resource "eddy_cluster" "c" {
  name          = "allow"
  allowed_cidrs = ["10.1.2.3/8"]
}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)not in network form.*10\.0\.0\.0/8`),
			},
			{
				Config: tn.config(`resource "eddy_cluster" "c" {
  name          = "allow"
  allowed_cidrs = ["127.0.0.1/32"]
}`),
				Check: server("127.0.0.1/32"),
			},
			{
				Config: tn.config(`resource "eddy_cluster" "c" {
  name          = "allow"
  allowed_cidrs = ["127.0.0.1/32", "10.0.0.0/8"]
}`),
				Check: server("10.0.0.0/8", "127.0.0.1/32"),
			},
			{
				Config: tn.config(`resource "eddy_cluster" "c" { name = "allow" }`),
				Check:  server(),
			},
		},
	})
}
