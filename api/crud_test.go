package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// TestCRUD walks every resource through create, read, list, update and
// delete as an org admin, with validated traffic.
func TestCRUD(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e.newTenant("acme")

	if got := must[client.Organization](t)(a.admin.GetOrganization(ctx, a.org.Organization.ID)); got.Name != "acme" {
		t.Fatalf("org = %+v", got)
	}
	cl, err := a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "prod",
		Limits:              &limits.Limits{MaxPartitions: 10},
		DefaultTopicConfigs: map[string]string{"retention.ms": "3600000"}})
	if err != nil {
		t.Fatal(err)
	}
	if cl.Limits.MaxPartitions != 10 || cl.Limits.IngressMBps != 100 || cl.Kafka.BootstrapServers == "" || cl.Kafka.OAuth.TokenEndpoint != e.url+"/oauth2/token" {
		t.Fatalf("cluster = %+v", cl)
	}
	var steps []string
	cl, err = a.admin.WaitClusterReady(ctx, cl.ID, func(c client.Cluster) { steps = append(steps, c.Status) })
	if err != nil || cl.Status != client.StatusReady {
		t.Fatalf("wait ready: %v %+v", err, cl)
	}
	t.Logf("statuses seen: %v", steps)

	top, err := a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "orders", Partitions: ptr[int32](3),
		Configs: map[string]string{"cleanup.policy": "compact"}})
	if err != nil {
		t.Fatal(err)
	}
	if top.PartitionCount != 3 || top.Configs["retention.ms"] != "3600000" || top.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("topic = %+v", top)
	}
	top, err = a.admin.UpdateTopic(ctx, cl.ID, "orders", client.UpdateTopicRequest{Partitions: ptr[int32](5)}, client.IfMatch(top.ETag))
	if err != nil || top.PartitionCount != 5 {
		t.Fatalf("grow: %v %+v", err, top)
	}
	if _, err := a.admin.UpdateTopic(ctx, cl.ID, "orders", client.UpdateTopicRequest{Partitions: ptr[int32](6)}, client.IfMatch(`"stale"`)); client.StatusOf(err) != 412 {
		t.Fatalf("stale If-Match: %v", err)
	}
	if _, err := a.admin.UpdateTopic(ctx, cl.ID, "orders", client.UpdateTopicRequest{Partitions: ptr[int32](11)}); client.StatusOf(err) != 422 {
		t.Fatalf("over the cluster's partition limit: %v", err)
	}
	ts := must[client.List[client.Topic]](t)(a.admin.ListTopics(ctx, cl.ID, client.ListOptions{}))
	if len(ts.Items) != 1 || ts.Items[0].Name != "orders" {
		t.Fatalf("topics = %+v", ts)
	}

	got := must[client.Cluster](t)(a.admin.GetCluster(ctx, cl.ID))
	if got.PartitionsUsed != 5 {
		t.Fatalf("partitions used = %d", got.PartitionsUsed)
	}
	up, err := a.admin.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{Name: ptr("production"),
		Limits: &limits.Limits{IngressMBps: 50}}, client.IfMatch(got.ETag))
	if err != nil || up.Name != "production" || up.Limits.IngressMBps != 50 || up.Limits.MaxPartitions != 10 {
		t.Fatalf("update cluster: %v %+v", err, up)
	}
	if _, err := a.admin.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{Name: ptr("again")}, client.IfMatch(got.ETag)); client.StatusOf(err) != 412 {
		t.Fatalf("stale cluster If-Match: %v", err)
	}
	if _, err := a.admin.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{Limits: &limits.Limits{MaxPartitions: 2}}); client.StatusOf(err) != 422 {
		t.Fatalf("limit below usage: %v", err)
	}

	sa := must[client.ServiceAccount](t)(a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "billing-app", Description: "reads orders"}))
	k := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID, ClusterID: cl.ID}))
	if k.Secret == "" || k.ClusterID != cl.ID {
		t.Fatalf("key = %+v", k)
	}
	if g := must[client.APIKey](t)(a.admin.GetAPIKey(ctx, k.ID)); g.Secret != "" {
		t.Fatal("GET shows the secret")
	}
	rb := must[client.RoleBinding](t)(a.admin.CreateRoleBinding(ctx, cl.ID, client.CreateRoleBindingRequest{ServiceAccountID: sa.ID, Role: client.RoleDeveloperRead}))
	if _, err := a.admin.CreateRoleBinding(ctx, cl.ID, client.CreateRoleBindingRequest{ServiceAccountID: sa.ID, Role: client.RoleDeveloperRead}); !client.IsConflict(err) {
		t.Fatalf("duplicate binding: %v", err)
	}
	if rbs := must[client.List[client.RoleBinding]](t)(a.admin.ListRoleBindings(ctx, cl.ID, client.ListOptions{})); len(rbs.Items) != 1 {
		t.Fatalf("bindings = %+v", rbs)
	}

	// A non-admin service account's key authenticates but may not manage.
	app := e.client(client.WithAPIKey(k.ID, k.Secret))
	if _, err := app.ListClusters(ctx, client.ListOptions{}); client.StatusOf(err) != 403 {
		t.Fatalf("non-admin list: %v", err)
	}

	// Rotating the admin's key: a new key and the old both work until the
	// old one is deleted.
	k2 := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: a.org.AdminServiceAccount.ID}))
	admin2 := e.client(client.WithAPIKey(k2.ID, k2.Secret))
	for _, c := range []*client.Client{a.admin, admin2} {
		if _, err := c.ListClusters(ctx, client.ListOptions{}); err != nil {
			t.Fatalf("during rotation: %v", err)
		}
	}
	if err := admin2.DeleteAPIKey(ctx, a.keyID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin.ListClusters(ctx, client.ListOptions{}); client.StatusOf(err) != 401 {
		t.Fatalf("old key after rotation: %v", err)
	}
	a.admin = admin2

	// An admin key limited to one cluster sees only that cluster.
	other := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "other"}))
	scoped := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: a.org.AdminServiceAccount.ID, ClusterID: cl.ID}))
	sc := e.client(client.WithAPIKey(scoped.ID, scoped.Secret))
	if l := must[client.List[client.Cluster]](t)(sc.ListClusters(ctx, client.ListOptions{})); len(l.Items) != 1 || l.Items[0].ID != cl.ID {
		t.Fatalf("scoped key lists %+v", l.Items)
	}
	if _, err := sc.GetCluster(ctx, other.ID); !client.IsNotFound(err) {
		t.Fatalf("scoped key reads another cluster: %v", err)
	}
	if _, err := sc.ListServiceAccounts(ctx, client.ListOptions{}); client.StatusOf(err) != 403 {
		t.Fatalf("scoped key lists service accounts: %v", err)
	}
	must[client.Topic](t)(sc.GetTopic(ctx, cl.ID, "orders"))
	if err := a.admin.DeleteCluster(ctx, other.ID); err != nil {
		t.Fatal(err)
	}

	// Pagination over service accounts.
	for i := range 4 {
		must[client.ServiceAccount](t)(a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: fmt.Sprintf("svc-%d", i)}))
	}
	var all []string
	opt := client.ListOptions{Limit: 2}
	for {
		page := must[client.List[client.ServiceAccount]](t)(a.admin.ListServiceAccounts(ctx, opt))
		for _, s := range page.Items {
			all = append(all, s.Name)
		}
		if page.NextCursor == "" {
			break
		}
		opt.Cursor = page.NextCursor
	}
	if len(all) != 6 { // admin, billing-app, svc-0..3
		t.Fatalf("paged service accounts = %v", all)
	}

	// A binding reads back by id; a service account is renamed and
	// re-described in place, and a taken name is a conflict.
	if got := must[client.RoleBinding](t)(a.admin.GetRoleBinding(ctx, cl.ID, rb.ID)); got.ID != rb.ID || got.Role != rb.Role ||
		got.ServiceAccountID != sa.ID || got.ClusterID != cl.ID || !got.CreatedAt.Equal(rb.CreatedAt) {
		t.Fatalf("GetRoleBinding = %+v, want %+v", got, rb)
	}
	desc := "renamed by the test"
	upd := must[client.ServiceAccount](t)(a.admin.UpdateServiceAccount(ctx, sa.ID, client.UpdateServiceAccountRequest{Name: ptr("app-2"), Description: &desc}))
	if upd.Name != "app-2" || upd.Description != desc || upd.ID != sa.ID {
		t.Fatalf("updated service account = %+v", upd)
	}
	if got := must[client.ServiceAccount](t)(a.admin.GetServiceAccount(ctx, sa.ID)); got.Name != upd.Name || got.Description != desc {
		t.Fatalf("service account after update = %+v, want %+v", got, upd)
	}
	if _, err := a.admin.UpdateServiceAccount(ctx, sa.ID, client.UpdateServiceAccountRequest{Name: ptr("svc-0")}); !client.IsConflict(err) {
		t.Fatalf("rename to a taken name: %v", err)
	}

	if err := a.admin.DeleteRoleBinding(ctx, cl.ID, rb.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.admin.DeleteAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := app.ListClusters(ctx, client.ListOptions{}); client.StatusOf(err) != 401 {
		t.Fatalf("deleted key: %v", err)
	}
	if err := a.admin.DeleteServiceAccount(ctx, sa.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.admin.DeleteServiceAccount(ctx, a.org.AdminServiceAccount.ID); !client.IsConflict(err) {
		t.Fatalf("self-delete: %v", err)
	}
	if err := a.admin.DeleteTopic(ctx, cl.ID, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin.GetTopic(ctx, cl.ID, "orders"); !client.IsNotFound(err) {
		t.Fatalf("deleted topic: %v", err)
	}
	if err := a.admin.DeleteCluster(ctx, cl.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin.GetCluster(ctx, cl.ID); !client.IsNotFound(err) {
		t.Fatalf("deleted cluster: %v", err)
	}
	if err := e.operator.DeleteOrganization(ctx, a.org.Organization.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin.ListClusters(ctx, client.ListOptions{}); client.StatusOf(err) != 401 {
		t.Fatalf("after org deletion: %v", err)
	}
}
