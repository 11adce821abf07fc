package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// testAccIdentity: an identity provider and a pool of it are created,
// imported and destroyed; a filter naming no claim is refused by the
// server.
func testAccIdentity(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-identity")
	base := `
resource "eddy_cluster" "c" {
  name = "fed"
}
resource "eddy_service_account" "app" {
  name = "payments"
}
resource "eddy_identity_provider" "corp" {
  name     = "corp"
  issuer   = "https://login.corp.example"
  jwks_url = "https://login.corp.example/keys"
  audience = "eddy"
}
`
	pool := func(filter string) string {
		return tn.config(base + `
resource "eddy_identity_pool" "p" {
  name               = "payments"
  provider_id        = eddy_identity_provider.corp.id
  cluster_id         = eddy_cluster.c.id
  service_account_id = eddy_service_account.app.id
  filter             = ` + filter + `
}`)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             tn.checkNoneLeft,
		Steps: []resource.TestStep{
			{
				Config:      pool(`{}`),
				ExpectError: regexp.MustCompile(`(?s)filter.*a pool must say whom it admits`),
			},
			{
				Config: pool(`{ sub = ["system:serviceaccount:prod:payments"], groups = ["payments", "devs"] }`),
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("eddy_identity_pool.p", "filter.groups.#", "2"),
					resource.TestCheckResourceAttrPair("eddy_identity_pool.p", "provider_id", "eddy_identity_provider.corp", "id"),
				),
			},
			{
				Config: pool(`{ sub = ["system:serviceaccount:prod:payments"], groups = ["payments", "devs"] }`) + `
data "eddy_identity_provider" "by_name" {
  name = "corp"
}
data "eddy_identity_pool" "by_id" {
  id = eddy_identity_pool.p.id
}`,
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrPair("data.eddy_identity_provider.by_name", "id", "eddy_identity_provider.corp", "id"),
					resource.TestCheckResourceAttr("data.eddy_identity_provider.by_name", "audience", "eddy"),
					resource.TestCheckResourceAttr("data.eddy_identity_pool.by_id", "name", "payments"),
					resource.TestCheckResourceAttr("data.eddy_identity_pool.by_id", "filter.groups.#", "2"),
				),
			},
			{ResourceName: "eddy_identity_provider.corp", ImportState: true, ImportStateVerify: true},
			{ResourceName: "eddy_identity_pool.p", ImportState: true, ImportStateVerify: true},
			{
				Config: pool(`{ sub = ["system:serviceaccount:prod:other"] }`),
				Check:  resource.TestCheckResourceAttr("eddy_identity_pool.p", "filter.sub.0", "system:serviceaccount:prod:other"),
			},
		},
	})
}
