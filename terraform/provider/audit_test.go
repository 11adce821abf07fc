package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/poll"
)

// testAccAudit (issue 24, acceptance 4): a topic created and destroyed
// by Terraform leaves exactly one topic.create and one topic.delete row in
// the organisation's audit log, with the provider's principal.
func testAccAudit(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-audit")
	principal := "User:" + tn.org.AdminServiceAccount.ID
	audited := func(*terraform.State) error {
		if err := tn.checkNoneLeft(nil); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return poll.Wait(ctx, func() error {
			for _, action := range []string{"topic.create", "topic.delete"} {
				rows, err := tn.admin.ListAuditLog(ctx, "", client.AuditFilter{Action: action}, client.ListOptions{})
				if err != nil {
					return err
				}
				if len(rows.Items) != 1 || rows.Items[0].ResourceName != "audited" || rows.Items[0].Principal != principal || rows.Items[0].Result != "ok" {
					return fmt.Errorf("%s rows = %+v, want one for topic audited by %s", action, rows.Items, principal)
				}
			}
			return nil
		})
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             audited,
		Steps: []resource.TestStep{{
			Config: tn.config(`
resource "eddy_cluster" "c" {
  name = "audit"
}
resource "eddy_topic" "t" {
  cluster_id = eddy_cluster.c.id
  name       = "audited"
  partitions = 1
}`),
		}},
	})
}
