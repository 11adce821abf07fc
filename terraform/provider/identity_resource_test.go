package provider

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// testAccIdentity: an identity provider and a pool of it are created,
// imported and destroyed; a filter naming no claim is refused at plan
// time, a pool with neither filter nor expression and an expression that
// does not parse by the server; the pool is replaced by one with a
// filter_expression beside its filter, then by one with an expression
// alone, which the data source reads and an import gives back.
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
	// poolWith takes the pool's filter attributes, one per line.
	poolWith := func(filters ...string) string {
		return tn.config(base + `
resource "eddy_identity_pool" "p" {
  name               = "payments"
  provider_id        = eddy_identity_provider.corp.id
  cluster_id         = eddy_cluster.c.id
  service_account_id = eddy_service_account.app.id
  ` + strings.Join(filters, "\n  ") + `
}`)
	}
	pool := func(filter string) string { return poolWith("filter = " + filter) }
	const expr = `"admins" in claims.groups && claims.email.endsWith("@corp.example")`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             tn.checkNoneLeft,
		Steps: []resource.TestStep{
			{
				Config:      pool(`{}`),
				ExpectError: regexp.MustCompile(`(?s)filter.*at least 1`),
			},
			{
				Config:      poolWith(),
				ExpectError: regexp.MustCompile(`(?s)filter.*a pool must say whom it admits`),
			},
			{
				Config:      poolWith(`filter_expression = "claims.sub = \"x\""`),
				ExpectError: regexp.MustCompile(`(?s)filter_expression.*at character 12`),
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
			{
				Config: poolWith(`filter = { sub = ["system:serviceaccount:prod:other"] }`, "filter_expression = "+strconv.Quote(expr)),
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("eddy_identity_pool.p", "filter_expression", expr),
					resource.TestCheckResourceAttr("eddy_identity_pool.p", "filter.sub.0", "system:serviceaccount:prod:other"),
				),
			},
			{
				Config: poolWith("filter_expression = "+strconv.Quote(expr)) + `
data "eddy_identity_pool" "by_name" {
  name = eddy_identity_pool.p.name
}`,
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("eddy_identity_pool.p", "filter_expression", expr),
					resource.TestCheckNoResourceAttr("eddy_identity_pool.p", "filter.%"),
					resource.TestCheckResourceAttr("data.eddy_identity_pool.by_name", "filter_expression", expr),
				),
			},
			{ResourceName: "eddy_identity_pool.p", ImportState: true, ImportStateVerify: true},
		},
	})
}
