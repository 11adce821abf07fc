package api_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/poll"
)

// TestAuditLogREST: each REST mutation leaves one row with its principal,
// action, resource and result (refusals as denied); the listing is the
// organisation's own, for its org admins and the operator, filtered and
// paged; bad parameters are 400; no row holds a secret.
func TestAuditLogREST(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e.newTenant("audited")
	b := e.newTenant("other")

	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "prod"}))
	must[client.Cluster](t)(a.admin.WaitClusterReady(ctx, cl.ID, nil))
	must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "orders"}))
	if err := a.admin.DeleteTopic(ctx, cl.ID, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := a.admin.DeleteTopic(ctx, cl.ID, "missing"); client.StatusOf(err) != 404 {
		t.Fatalf("delete a missing topic: %v", err)
	}
	sa := must[client.ServiceAccount](t)(a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "app"}))
	key := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID}))
	app := e.client(client.WithAPIKey(key.ID, key.Secret))
	if _, err := app.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "nope"}); client.StatusOf(err) != 403 {
		t.Fatalf("a non-admin created a topic: %v", err)
	}

	org := a.org.Organization.ID
	admin := "User:" + a.org.AdminServiceAccount.ID
	var rows []client.AuditEntry
	want := []struct{ action, name, principal, result string }{
		{"organization.create", org, "operator", "ok"},
		{"cluster.create", cl.ID, admin, "ok"},
		{"topic.create", "orders", admin, "ok"},
		{"topic.delete", "orders", admin, "ok"},
		{"topic.delete", "missing", admin, "failed"},
		{"service-account.create", sa.ID, admin, "ok"},
		{"api-key.create", key.ID, admin, "ok"},
		{"topic.create", "", "User:" + sa.ID, "denied"},
	}
	poll.Until(t, 15*time.Second, "the audit rows", func() error {
		rows = rows[:0]
		for o := (client.ListOptions{Limit: 3}); ; {
			page, err := a.admin.ListAuditLog(ctx, org, client.AuditFilter{}, o)
			if err != nil {
				return err
			}
			rows = append(rows, page.Items...)
			if page.NextCursor == "" {
				break
			}
			o.Cursor = page.NextCursor
		}
		for _, w := range want {
			n := 0
			for _, r := range rows {
				if r.Action == w.action && r.ResourceName == w.name {
					if r.Principal != w.principal || r.Result != w.result || r.Channel != "rest" || r.Source == "" {
						return fmt.Errorf("row %+v, want principal %s, result %s", r, w.principal, w.result)
					}
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("%d rows for %s %s, want 1 (rows: %+v)", n, w.action, w.name, rows)
			}
		}
		return nil
	})
	for i := 1; i < len(rows); i++ {
		prev, _ := strconv.ParseInt(rows[i-1].ID, 10, 64)
		if id, _ := strconv.ParseInt(rows[i].ID, 10, 64); id >= prev {
			t.Fatalf("rows not newest first: %s after %s", rows[i].ID, rows[i-1].ID)
		}
	}
	for _, r := range rows {
		text := fmt.Sprintf("%+v", r)
		for _, secret := range []string{a.secret, key.Secret} {
			if strings.Contains(text, secret) {
				t.Fatalf("audit row %s holds a secret", text)
			}
		}
		if r.Action == "topic.delete" && r.ResourceName == "missing" && r.Detail != "HTTP 404" {
			t.Fatalf("failed row detail %q", r.Detail)
		}
	}

	// Filters.
	denied := must[client.List[client.AuditEntry]](t)(a.admin.ListAuditLog(ctx, org, client.AuditFilter{Result: "denied"}, client.ListOptions{}))
	if len(denied.Items) != 1 || denied.Items[0].Principal != "User:"+sa.ID {
		t.Fatalf("denied rows = %+v", denied.Items)
	}
	byAction := must[client.List[client.AuditEntry]](t)(a.admin.ListAuditLog(ctx, org, client.AuditFilter{Action: "topic.create", Principal: admin, ClusterID: cl.ID}, client.ListOptions{}))
	if len(byAction.Items) != 1 || byAction.Items[0].ResourceName != "orders" {
		t.Fatalf("topic.create rows = %+v", byAction.Items)
	}
	if l := must[client.List[client.AuditEntry]](t)(a.admin.ListAuditLog(ctx, org, client.AuditFilter{Since: time.Now().Add(time.Hour)}, client.ListOptions{})); len(l.Items) != 0 {
		t.Fatalf("rows from the future: %+v", l.Items)
	}
	if l := must[client.List[client.AuditEntry]](t)(a.admin.ListAuditLog(ctx, org, client.AuditFilter{Until: time.Now().Add(-time.Hour)}, client.ListOptions{})); len(l.Items) != 0 {
		t.Fatalf("rows from before the test: %+v", l.Items)
	}
	// The caller's own organisation's log is the same.
	if own := must[client.List[client.AuditEntry]](t)(a.admin.ListAuditLog(ctx, "", client.AuditFilter{Result: "denied"}, client.ListOptions{})); len(own.Items) != 1 || own.Items[0].ID != denied.Items[0].ID {
		t.Fatalf("own log's denied rows = %+v", own.Items)
	}
	// The operator reads any organisation's log.
	if l := must[client.List[client.AuditEntry]](t)(e.operator.ListAuditLog(ctx, org, client.AuditFilter{Action: "organization.create"}, client.ListOptions{})); len(l.Items) != 1 {
		t.Fatalf("operator's view: %+v", l.Items)
	}

	// Who may read it.
	if _, err := app.ListAuditLog(ctx, org, client.AuditFilter{}, client.ListOptions{}); client.StatusOf(err) != 403 {
		t.Fatalf("a non-admin read the audit log: %v", err)
	}
	if _, err := app.ListAuditLog(ctx, "", client.AuditFilter{}, client.ListOptions{}); client.StatusOf(err) != 403 {
		t.Fatalf("a non-admin read its own organisation's audit log: %v", err)
	}
	if _, err := b.admin.ListAuditLog(ctx, org, client.AuditFilter{}, client.ListOptions{}); client.StatusOf(err) != 404 {
		t.Fatalf("another organisation read the audit log: %v", err)
	}
	scoped := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: a.org.AdminServiceAccount.ID, ClusterID: cl.ID}))
	if _, err := e.client(client.WithAPIKey(scoped.ID, scoped.Secret)).ListAuditLog(ctx, org, client.AuditFilter{}, client.ListOptions{}); client.StatusOf(err) != 403 {
		t.Fatalf("a cluster-scoped key read the organisation's audit log: %v", err)
	}

	// Bad parameters.
	for _, q := range []string{"result=maybe", "since=yesterday", "until=1", "limit=0", "cursor=bogus", "action=" + strings.Repeat("a", 300)} {
		if code, p, _ := e.send(ctx, a, "GET", "/v1/organizations/"+org+"/audit-log?"+q, "", ""); code != 400 {
			t.Fatalf("?%s: status %d (%+v), want 400", q, code, p)
		}
	}
}
