package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
)

// TestACLs: create, read, list (paged), delete, duplicates and field
// validation of a cluster's Kafka ACLs over REST.
func TestACLs(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e.newTenant("acme")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c1"}))
	sa := must[client.ServiceAccount](t)(a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "app"}))

	req := client.CreateACLRequest{Principal: "User:" + sa.ID, ResourceType: client.ACLResourceTopic,
		ResourceName: "orders.", PatternType: client.ACLPatternPrefixed, Operation: "write", Permission: client.ACLAllow}
	created := must[client.ACL](t)(a.admin.CreateACL(ctx, cl.ID, req))
	if created.ClusterID != cl.ID || created.Host != "*" || created.PatternType != "prefixed" || created.Operation != "write" {
		t.Fatalf("created %+v", created)
	}
	if _, err := a.admin.CreateACL(ctx, cl.ID, req); !client.IsConflict(err) {
		t.Fatalf("duplicate ACL: %v, want 409", err)
	}
	// Defaults: literal pattern, any host.
	lit := must[client.ACL](t)(a.admin.CreateACL(ctx, cl.ID, client.CreateACLRequest{Principal: "User:*",
		ResourceType: client.ACLResourceCluster, ResourceName: client.ACLClusterName, Operation: "describe", Permission: client.ACLDeny, Host: "10.1.2.3"}))
	if lit.PatternType != client.ACLPatternLiteral || lit.Host != "10.1.2.3" {
		t.Fatalf("created %+v", lit)
	}
	if got := must[client.ACL](t)(a.admin.GetACL(ctx, cl.ID, created.ID)); got != created {
		t.Fatalf("get = %+v, want %+v", got, created)
	}
	page1 := must[client.List[client.ACL]](t)(a.admin.ListACLs(ctx, cl.ID, client.ListOptions{Limit: 1}))
	if len(page1.Items) != 1 || page1.NextCursor == "" {
		t.Fatalf("page 1 = %+v", page1)
	}
	page2 := must[client.List[client.ACL]](t)(a.admin.ListACLs(ctx, cl.ID, client.ListOptions{Limit: 1, Cursor: page1.NextCursor}))
	if len(page2.Items) != 1 || page2.Items[0].ID == page1.Items[0].ID || page2.NextCursor != "" {
		t.Fatalf("page 2 = %+v", page2)
	}
	if err := a.admin.DeleteACL(ctx, cl.ID, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin.GetACL(ctx, cl.ID, created.ID); !client.IsNotFound(err) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := a.admin.DeleteACL(ctx, cl.ID, created.ID); !client.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}

	// Invalid fields are named.
	path := "/v1/clusters/" + cl.ID + "/acls"
	for _, tc := range []struct{ body, field string }{
		{`{"principal":"bob","resource_type":"topic","resource_name":"t","operation":"read","permission":"allow"}`, "principal"},
		{`{"principal":"User:*","resource_type":"user","resource_name":"t","operation":"read","permission":"allow"}`, "resource_type"},
		{`{"principal":"User:*","resource_type":"topic","resource_name":"","operation":"read","permission":"allow"}`, "resource_name"},
		{`{"principal":"User:*","resource_type":"cluster","resource_name":"c","operation":"alter","permission":"allow"}`, "resource_name"},
		{`{"principal":"User:*","resource_type":"topic","resource_name":"t","pattern_type":"match","operation":"read","permission":"allow"}`, "pattern_type"},
		{`{"principal":"User:*","resource_type":"topic","resource_name":"t","operation":"own","permission":"allow"}`, "operation"},
		{`{"principal":"User:*","resource_type":"group","resource_name":"g","operation":"write","permission":"allow"}`, "operation"},
		{`{"principal":"User:*","resource_type":"topic","resource_name":"t","operation":"read","permission":"yes"}`, "permission"},
		{`{"principal":"User:*","resource_type":"topic","resource_name":"t","operation":"read","permission":"allow","host":"example.com"}`, "host"},
		{`{"principal":"User:*","resource_type":"topic","resource_name":"t","operation":"read","permission":"allow","id":"acl-x"}`, "id"},
	} {
		status, p, _ := e.send(ctx, a, "POST", path, "application/json", tc.body)
		if status != 400 || p.Type != client.ProblemValidation || len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: %d %+v, want 400 naming %s", tc.body, status, p, tc.field)
		}
	}
	// A key limited to another cluster does not see this one's ACLs.
	other := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c2"}))
	k := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: a.org.AdminServiceAccount.ID, ClusterID: other.ID}))
	scoped := e.client(client.WithAPIKey(k.ID, k.Secret))
	if _, err := scoped.ListACLs(ctx, cl.ID, client.ListOptions{}); !client.IsNotFound(err) {
		t.Errorf("a key of another cluster lists ACLs: %v", err)
	}
}
