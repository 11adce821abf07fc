package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/eddy-streams/eddy/api/client"
)

// testAccRoleBinding: create, change the role in place (new binding
// first), import, a binding deleted over REST is recreated, destroy.
func testAccRoleBinding(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-rb")
	ctx := ctxT(t)
	cfg := func(role string) string {
		return tn.config(fmt.Sprintf(`
resource "eddy_cluster" "c" { name = "rb" }
resource "eddy_service_account" "a" { name = "app" }
resource "eddy_role_binding" "b" {
  cluster_id         = eddy_cluster.c.id
  service_account_id = eddy_service_account.a.id
  role               = %q
}`, role))
	}
	var clusterID, firstBinding string
	server := func(role string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			var err error
			if clusterID, err = attr(s, "eddy_cluster.c", "id"); err != nil {
				return err
			}
			bid, err := attr(s, "eddy_role_binding.b", "binding_id")
			if err != nil {
				return err
			}
			if firstBinding == "" {
				firstBinding = bid
			}
			rbs, err := tn.admin.ListRoleBindings(ctx, clusterID, client.ListOptions{})
			if err != nil {
				return err
			}
			if len(rbs.Items) != 1 || rbs.Items[0].Role != role || rbs.Items[0].ID != bid {
				return fmt.Errorf("server has bindings %+v, want one %s binding %s", rbs.Items, role, bid)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             tn.checkNoneLeft,
		Steps: []resource.TestStep{
			{
				Config: cfg("developer-read"),
				Check:  server("developer-read"),
			},
			{
				Config: cfg("developer-write"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_role_binding.b", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(server("developer-write"), func(s *terraform.State) error {
					if bid, _ := attr(s, "eddy_role_binding.b", "binding_id"); bid == firstBinding {
						return fmt.Errorf("binding %s kept after a role change", bid)
					}
					return nil
				}),
			},
			{
				ResourceName:      "eddy_role_binding.b",
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				PreConfig: func() {
					rbs, err := tn.admin.ListRoleBindings(ctx, clusterID, client.ListOptions{})
					if err != nil || len(rbs.Items) != 1 {
						t.Fatalf("bindings: %v %v", rbs, err)
					}
					if err := tn.admin.DeleteRoleBinding(ctx, clusterID, rbs.Items[0].ID); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg("developer-write"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_role_binding.b", plancheck.ResourceActionCreate),
				}},
				Check: server("developer-write"),
			},
		},
	})
}
