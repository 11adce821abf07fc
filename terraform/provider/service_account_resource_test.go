package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/eddy-streams/eddy/api/client"
)

// testAccServiceAccount: create, rename and re-describe in place, import,
// drift over REST, a duplicate name as a readable API error, destroy.
func testAccServiceAccount(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-sa")
	ctx := ctxT(t)
	var id string
	server := func(name, desc string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			got, err := attr(s, "eddy_service_account.a", "id")
			if err != nil {
				return err
			}
			if id == "" {
				id = got
			} else if got != id {
				return fmt.Errorf("service account id changed from %s to %s: replaced, not updated", id, got)
			}
			sa, err := tn.admin.GetServiceAccount(ctx, id)
			if err != nil {
				return err
			}
			if sa.Name != name || sa.Description != desc || sa.OrgAdmin {
				return fmt.Errorf("server has %+v", sa)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             tn.checkNoneLeft,
		Steps: []resource.TestStep{
			{
				Config: tn.config(`resource "eddy_service_account" "a" { name = "app" }`),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("eddy_service_account.a", "description", ""),
					resource.TestCheckResourceAttr("eddy_service_account.a", "org_admin", "false"),
					resource.TestMatchResourceAttr("eddy_service_account.a", "id", regexp.MustCompile(`^sa-`)),
					server("app", ""),
				),
			},
			{
				Config: tn.config(`resource "eddy_service_account" "a" {
  name        = "app-2"
  description = "the shop"
}`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_service_account.a", plancheck.ResourceActionUpdate),
				}},
				Check: server("app-2", "the shop"),
			},
			{
				ResourceName:      "eddy_service_account.a",
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				PreConfig: func() {
					if _, err := tn.admin.UpdateServiceAccount(ctx, id, client.UpdateServiceAccountRequest{Description: ptr("changed outside")}); err != nil {
						t.Fatal(err)
					}
				},
				Config: tn.config(`resource "eddy_service_account" "a" {
  name        = "app-2"
  description = "the shop"
}`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_service_account.a", plancheck.ResourceActionUpdate),
				}},
				Check: server("app-2", "the shop"),
			},
			{
				// The server's 409 problem becomes a readable diagnostic.
				Config: tn.config(`
resource "eddy_service_account" "a" {
  name        = "app-2"
  description = "the shop"
}
resource "eddy_service_account" "dup" {
  name       = "admin"
  depends_on = [eddy_service_account.a]
}`),
				ExpectError: regexp.MustCompile(`(?s)Could not create service account admin: Conflict.*service account "admin".*request id req-`),
			},
		},
	})
}
