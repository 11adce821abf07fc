package provider

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eddy-streams/eddy/api/client"
)

// testAccACL: plan-time validation with the server's rules (before the
// principal's account exists), create (the ACL is what Kafka's
// DescribeAcls shows), a change replaces it, import (and bad import ids),
// an ACL deleted over Kafka (DeleteAcls) is drift that the next apply
// creates again, the eddy_acls data source lists it next to one made over
// Kafka, declaring that one again fails with an import hint, destroy.
func testAccACL(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-acl")
	ctx := ctxT(t)
	cfg := func(op string) string {
		return tn.config(fmt.Sprintf(`
resource "eddy_cluster" "c" { name = "acls" }
resource "eddy_service_account" "a" { name = "reader" }
resource "eddy_acl" "x" {
  cluster_id    = eddy_cluster.c.id
  principal     = "User:${eddy_service_account.a.id}"
  resource_type = "topic"
  resource_name = "orders"
  pattern_type  = "prefixed"
  operation     = %q
  permission    = "allow"
}`, op))
	}
	var clusterID, principal, firstID string
	kafkaSees := func(op kadm.ACLOperation) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			var err error
			if clusterID, err = attr(s, "eddy_cluster.c", "id"); err != nil {
				return err
			}
			sa, err := attr(s, "eddy_service_account.a", "id")
			if err != nil {
				return err
			}
			principal = "User:" + sa
			adm := kadm.NewClient(e.kafka(t, tn.keyID+"@"+clusterID, tn.secret))
			rs, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).
				Allow().AllowHosts().Deny().DenyHosts().Operations(kadm.OpAny))
			if err != nil {
				return err
			}
			var got []string
			for _, r := range rs {
				if r.Err != nil {
					return r.Err
				}
				for _, d := range r.Described {
					got = append(got, fmt.Sprintf("%s %s %s %s %s", d.Principal, d.Type, d.Name, d.Pattern, d.Operation))
				}
			}
			want := fmt.Sprintf("%s TOPIC orders PREFIXED %s", principal, op)
			if len(got) != 1 || got[0] != want {
				return fmt.Errorf("Kafka describes ACLs %q, want [%s]", got, want)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             tn.checkNoneLeft,
		Steps: []resource.TestStep{
			{
				// The principal is unknown until the account exists;
				// the rest is checked at plan time all the same.
				Config: tn.config(`
resource "eddy_service_account" "a" { name = "reader" }
resource "eddy_acl" "x" {
  cluster_id    = "vc-x"
  principal     = "User:${eddy_service_account.a.id}"
  resource_type = "group"
  resource_name = "g"
  operation     = "write"
  permission    = "allow"
}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`write does not apply to group resources`),
			},
			{
				Config: cfg("read"),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("eddy_acl.x", "host", "*"),
					kafkaSees(kadm.OpRead),
					func(s *terraform.State) (err error) { firstID, err = attr(s, "eddy_acl.x", "acl_id"); return err },
				),
			},
			{
				Config: cfg("describe"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_acl.x", plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(kafkaSees(kadm.OpDescribe), func(s *terraform.State) error {
					if id, _ := attr(s, "eddy_acl.x", "acl_id"); id == firstID {
						return fmt.Errorf("ACL %s kept after its operation changed", id)
					}
					return nil
				}),
			},
			{
				ResourceName:      "eddy_acl.x",
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				ResourceName:  "eddy_acl.x",
				ImportState:   true,
				ImportStateId: "acl-only",
				ExpectError:   regexp.MustCompile(`"acl-only" is not <cluster_id>/<acl_id>`),
			},
			{
				ResourceName:      "eddy_acl.x",
				ImportState:       true,
				ImportStateIdFunc: func(*terraform.State) (string, error) { return clusterID + "/acl-nope", nil },
				ExpectError:       regexp.MustCompile(`(?i)non-existent`),
			},
			{
				PreConfig: func() {
					adm := kadm.NewClient(e.kafka(t, tn.keyID+"@"+clusterID, tn.secret))
					rs, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics("orders").ResourcePatternType(kadm.ACLPatternPrefixed).
						Allow(principal).AllowHosts().Operations(kadm.OpDescribe))
					if err == nil {
						for _, r := range rs {
							if r.Err != nil {
								err = r.Err
							} else if len(r.Deleted) != 1 {
								err = fmt.Errorf("deleted %d ACLs", len(r.Deleted))
							}
						}
					}
					if err != nil {
						t.Fatalf("delete the ACL over Kafka: %v", err)
					}
					acls, err := tn.admin.ListACLs(ctx, clusterID, client.ListOptions{})
					if err != nil || len(acls.Items) != 0 {
						t.Fatalf("REST after the Kafka delete: %v %v", acls.Items, err)
					}
				},
				Config: cfg("describe"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_acl.x", plancheck.ResourceActionCreate),
				}},
				Check: kafkaSees(kadm.OpDescribe),
			},
			{
				// eddy_acls lists ACLs whoever made them: one made
				// over Kafka shows next to Terraform's.
				PreConfig: func() {
					adm := kadm.NewClient(e.kafka(t, tn.keyID+"@"+clusterID, tn.secret))
					rs, err := adm.CreateACLs(ctx, kadm.NewACLs().Groups("audit").Allow("User:*").AllowHosts().Operations(kadm.OpRead))
					if err == nil {
						for _, r := range rs {
							err = errors.Join(err, r.Err)
						}
					}
					if err != nil {
						t.Fatalf("create an ACL over Kafka: %v", err)
					}
				},
				Config: cfg("describe") + `
data "eddy_acls" "all" {
  cluster_id = eddy_cluster.c.id
  depends_on = [eddy_acl.x]
}
data "eddy_acls" "reader" {
  cluster_id = eddy_cluster.c.id
  principal  = eddy_acl.x.principal
}`,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.eddy_acls.all", "acls.#", "2"),
					resource.TestCheckTypeSetElemNestedAttrs("data.eddy_acls.all", "acls.*", map[string]string{
						"principal": "User:*", "resource_type": "group", "resource_name": "audit", "pattern_type": "literal",
						"operation": "read", "permission": "allow", "host": "*",
					}),
					resource.TestCheckResourceAttr("data.eddy_acls.reader", "acls.#", "1"),
					resource.TestCheckResourceAttrPair("data.eddy_acls.reader", "acls.0.acl_id", "eddy_acl.x", "acl_id"),
					resource.TestCheckResourceAttr("data.eddy_acls.reader", "acls.0.operation", "describe"),
				),
			},
			{
				// The ACL made over Kafka above, declared again: the
				// server refuses the duplicate and says how to adopt it.
				Config: cfg("describe") + `
resource "eddy_acl" "dup" {
  cluster_id    = eddy_cluster.c.id
  principal     = "User:*"
  resource_type = "group"
  resource_name = "audit"
  operation     = "read"
  permission    = "allow"
}`,
				ExpectError: regexp.MustCompile(`identical ACL exists \(acl-[a-z0-9]+\)\s+The same ACL exists already\. Import it \(terraform\s+import\s+<address>\s+vc-[a-z0-9]+/<its\s+id>\)`),
			},
		},
	})
}

// TestACLCheck: plan-time validation judges what is known and lets an
// unknown value (a reference to an account not yet created) pass.
func TestACLCheck(t *testing.T) {
	u, s := types.StringUnknown(), types.StringValue
	base := func() aclModel {
		return aclModel{Principal: s("User:sa-1"), ResourceType: s("topic"), ResourceName: s("orders"),
			PatternType: types.StringNull(), Operation: s("read"), Permission: s("allow"), Host: types.StringNull()}
	}
	for _, tc := range []struct {
		name      string
		edit      func(*aclModel)
		wantField string // "" = valid
	}{
		{"valid", func(*aclModel) {}, ""},
		{"unknown principal", func(m *aclModel) { m.Principal = u }, ""},
		{"everything unknown", func(m *aclModel) {
			*m = aclModel{Principal: u, ResourceType: u, ResourceName: u, PatternType: u, Operation: u, Permission: u, Host: u}
		}, ""},
		{"unknown type, cluster-only operation", func(m *aclModel) { m.ResourceType, m.Operation = u, s("idempotent_write") }, ""},
		{"unknown name of the cluster", func(m *aclModel) {
			m.ResourceType, m.ResourceName, m.Operation = s("cluster"), u, s("idempotent_write")
		}, ""},
		{"principal without User:", func(m *aclModel) { m.Principal = s("sa-1") }, "principal"},
		{"principal not a service account", func(m *aclModel) { m.Principal = s("User:alice") }, "principal"},
		{"operation of another type, principal unknown", func(m *aclModel) { m.Principal, m.ResourceType, m.Operation = u, s("group"), s("write") }, "operation"},
		{"cluster not named kafka-cluster", func(m *aclModel) { m.ResourceType, m.Operation = s("cluster"), s("describe") }, "resource_name"},
		{"prefixed wildcard", func(m *aclModel) { m.ResourceName, m.PatternType = s("*"), s("prefixed") }, "pattern_type"},
		{"host not an address", func(m *aclModel) { m.Host = s("example.com") }, "host"},
		{"IPv6 host", func(m *aclModel) { m.Host = s("::1") }, ""},
		// The attribute validators report these; check stays quiet
		// rather than say it twice.
		{"unknown operation name", func(m *aclModel) { m.Operation = s("produce") }, ""},
		{"name too long", func(m *aclModel) { m.ResourceName = s(strings.Repeat("x", 256)) }, ""},
	} {
		m := base()
		tc.edit(&m)
		fe := m.check()
		switch {
		case tc.wantField == "" && fe != nil:
			t.Errorf("%s: %v, want no error", tc.name, fe)
		case tc.wantField != "" && (fe == nil || fe.Field != tc.wantField):
			t.Errorf("%s: %v, want an error on %s", tc.name, fe, tc.wantField)
		}
	}
}
