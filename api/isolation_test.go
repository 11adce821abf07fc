package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
)

// Routes without path parameters, and why the isolation walk does not
// need to aim them at another organisation's resources. A new route
// without parameters fails the test until it is listed here.
var unscopedRoutes = map[string]string{
	"GET /healthz":                          "public",
	"GET /readyz":                           "public",
	"GET /metrics":                          "public",
	"GET /openapi.yaml":                     "public",
	"GET /.well-known/jwks.json":            "public",
	"GET /.well-known/openid-configuration": "public",
	"POST /oauth2/token":                    "public; the API key names the organisation",
	"POST /v1/organizations":                "operator only (checked below)",
	"GET /v1/organizations":                 "operator only (checked below)",
	"POST /v1/plans":                        "operator only (TestPlans)",
	"GET /v1/plans":                         "operator only (TestPlans)",
	"GET /v1/brokers":                       "operator only (TestPool)",
	"GET /v1/autoscaler/decisions":          "operator only (TestPool)",
	"POST /v1/clusters":                     "creates in the caller's organisation",
	"GET /v1/clusters":                      "lists the caller's organisation (checked below)",
	"POST /v1/service-accounts":             "creates in the caller's organisation",
	"GET /v1/service-accounts":              "lists the caller's organisation (checked below)",
	"POST /v1/api-keys":                     "names a service account and cluster (checked below)",
	"GET /v1/api-keys":                      "lists the caller's organisation (checked below)",
	"GET /v1/billing/usage":                 "the caller's organisation; a cluster_id of another is 404 (checked below)",
	"GET /v1/billing/invoices":              "lists the caller's organisation (checked below)",
	"GET /v1/billing/estimate":              "rates the caller's organisation (checked below)",
	"POST /v1/billing/budget-alerts":        "creates in the caller's organisation",
	"GET /v1/billing/budget-alerts":         "lists the caller's organisation (checked below)",
	"GET /v1/audit-log":                     "the caller's organisation (TestAuditLogREST)",
	"POST /v1/identity-providers":           "creates in the caller's organisation",
	"GET /v1/identity-providers":            "lists the caller's organisation (checked below)",
	"POST /v1/identity-pools":               "names a provider, cluster and service account of the caller's organisation (checked below)",
	"GET /v1/identity-pools":                "lists the caller's organisation (checked below)",
}

// bodies for routes that take one: valid requests, so only ownership can
// make them fail.
var walkBodies = map[string]string{
	"POST /v1/clusters/:cluster_id/topics":                     `{"name":"stolen","partitions":1}`,
	"PATCH /v1/clusters/:cluster_id/topics/:topic_name":        `{"partitions":4}`,
	"PATCH /v1/clusters/:cluster_id":                           `{"name":"stolen"}`,
	"POST /v1/clusters/:cluster_id/role-bindings":              `{"service_account_id":"%SA%","role":"admin"}`,
	"PATCH /v1/service-accounts/:service_account_id":           `{"name":"stolen"}`,
	"POST /v1/clusters/:cluster_id/acls":                       `{"principal":"User:%SA%","resource_type":"topic","resource_name":"orders","operation":"all","permission":"allow"}`,
	"PUT /v1/organizations/:org_id/billing":                    `{"plan":"standard","time_zone":"Asia/Tokyo"}`,
	"PATCH /v1/plans/:plan_id":                                 `{"ceilings":{"max_topics":1}}`,
	"POST /v1/organizations/:org_id/billing/adjustments":       `{"month":"2026-03","kind":"credit","amount":"1000"}`,
	"POST /v1/clusters/:cluster_id/topics/:topic_name/records": `{"records":[{"key":"k","value":"stolen"}]}`,
}

// TestIsolation walks echo's route table: for every route that names a
// resource, a caller from organisation B gets 404 problem+json for
// organisation A's resource, with an API key and with a bearer token, and
// A's resources are unchanged afterwards.
func TestIsolation(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, b := e.newTenant("org-a"), e.newTenant("org-b")

	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "shared-name"}))
	must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "orders"}))
	sa := must[client.ServiceAccount](t)(a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "app"}))
	key := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID}))
	rb := must[client.RoleBinding](t)(a.admin.CreateRoleBinding(ctx, cl.ID, client.CreateRoleBindingRequest{ServiceAccountID: sa.ID, Role: client.RoleAdmin}))
	acl := must[client.ACL](t)(a.admin.CreateACL(ctx, cl.ID, client.CreateACLRequest{Principal: "User:" + sa.ID,
		ResourceType: client.ACLResourceTopic, ResourceName: "orders", Operation: "read", Permission: client.ACLDeny}))
	// B has same-named things of its own, which must not be confused with A's.
	bcl := must[client.Cluster](t)(b.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "shared-name"}))
	bsa := must[client.ServiceAccount](t)(b.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "app"}))
	// A has usage, an invoice and a budget alert.
	inv := e.usageAndInvoice(a.org.Organization.ID, cl.ID)
	alert := must[client.BudgetAlert](t)(a.admin.CreateBudgetAlert(ctx, client.CreateBudgetAlertRequest{Name: "a", Threshold: "10", WebhookURL: "https://example.com/hook"}))
	// A trusts an identity provider, with a pool.
	idp := must[client.IdentityProvider](t)(a.admin.CreateIdentityProvider(ctx, client.CreateIdentityProviderRequest{
		Name: "corp", Issuer: "https://login.a.example", JWKSURL: "https://login.a.example/keys", Audience: "eddy"}))
	pool := must[client.IdentityPool](t)(a.admin.CreateIdentityPool(ctx, client.CreateIdentityPoolRequest{
		Name: "p", ProviderID: idp.ID, ClusterID: cl.ID, ServiceAccountID: sa.ID, Filter: map[string][]string{"sub": {"x"}}}))

	params := map[string]string{
		"org_id": a.org.Organization.ID, "cluster_id": cl.ID, "topic_name": "orders",
		"binding_id": rb.ID, "service_account_id": sa.ID, "key_id": key.ID,
		"invoice_id": inv.ID, "alert_id": alert.ID, "acl_id": acl.ID, "group_id": "shop-app",
		"plan_id": "standard", "partition": "0", "provider_id": idp.ID, "pool_id": pool.ID,
	}
	tok := must[client.Token](t)(b.admin.Token(ctx, b.keyID, b.secret))
	creds := map[string]func(*http.Request){
		"api-key": func(r *http.Request) { r.SetBasicAuth(b.keyID, b.secret) },
		"bearer":  func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok.AccessToken) },
	}
	hc := e.raw()
	walked := 0
	for _, r := range e.srv.Routes() {
		route := r.Method + " " + r.Path
		if !strings.Contains(r.Path, ":") {
			if _, ok := unscopedRoutes[r.Method+" "+r.Path]; !ok {
				t.Errorf("route %s has no path parameter and is not in unscopedRoutes: say how it stays inside the caller's organisation", route)
			}
			continue
		}
		path := echoParam.ReplaceAllStringFunc(r.Path, func(m string) string {
			v, ok := params[m[1:]]
			if !ok {
				t.Fatalf("route %s: no value for %s in the walk's params", route, m)
			}
			return v
		})
		body := strings.ReplaceAll(walkBodies[route], "%SA%", bsa.ID)
		for name, auth := range creds {
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, _ := http.NewRequestWithContext(ctx, r.Method, e.url+path, rd)
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			auth(req)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var p client.Problem
			json.Unmarshal(rb, &p)
			if resp.StatusCode != http.StatusNotFound || p.Type != client.ProblemNotFound {
				t.Errorf("%s as org B (%s): %d %s, want 404 %s", route, name, resp.StatusCode, rb, client.ProblemNotFound)
			}
			walked++
		}
	}
	if walked < 2*15 {
		t.Errorf("walked only %d requests", walked)
	}

	// Routes without parameters stay inside B's organisation.
	if _, err := b.admin.ListOrganizations(ctx, client.ListOptions{}); client.StatusOf(err) != 403 {
		t.Errorf("org admin lists organisations: %v", err)
	}
	if _, err := b.admin.CreateOrganization(ctx, client.CreateOrganizationRequest{Name: "evil"}); client.StatusOf(err) != 403 {
		t.Errorf("org admin creates an organisation: %v", err)
	}
	cls := must[client.List[client.Cluster]](t)(b.admin.ListClusters(ctx, client.ListOptions{}))
	if len(cls.Items) != 1 || cls.Items[0].ID != bcl.ID {
		t.Errorf("B's clusters = %+v", cls.Items)
	}
	sas := must[client.List[client.ServiceAccount]](t)(b.admin.ListServiceAccounts(ctx, client.ListOptions{}))
	for _, s := range sas.Items {
		if s.ID == sa.ID || s.ID == a.org.AdminServiceAccount.ID {
			t.Errorf("B lists A's service account %s", s.ID)
		}
	}
	keys := must[client.List[client.APIKey]](t)(b.admin.ListAPIKeys(ctx, client.ListOptions{}))
	for _, k := range keys.Items {
		if k.ID == key.ID || k.ID == a.keyID {
			t.Errorf("B lists A's key %s", k.ID)
		}
	}
	if _, err := b.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID}); !client.IsNotFound(err) {
		t.Errorf("B makes a key for A's service account: %v", err)
	}
	if _, err := b.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: bsa.ID, ClusterID: cl.ID}); !client.IsNotFound(err) {
		t.Errorf("B makes a key scoped to A's cluster: %v", err)
	}
	if _, err := b.admin.CreateRoleBinding(ctx, bcl.ID, client.CreateRoleBindingRequest{ServiceAccountID: sa.ID, Role: client.RoleAdmin}); !client.IsNotFound(err) {
		t.Errorf("B binds A's service account: %v", err)
	}

	// B sees none of A's identity providers and pools, nor makes a pool
	// of A's provider, cluster or service account.
	if l := must[client.List[client.IdentityProvider]](t)(b.admin.ListIdentityProviders(ctx, client.ListOptions{})); len(l.Items) != 0 {
		t.Errorf("B lists identity providers %+v", l.Items)
	}
	if l := must[client.List[client.IdentityPool]](t)(b.admin.ListIdentityPools(ctx, client.ListOptions{})); len(l.Items) != 0 {
		t.Errorf("B lists identity pools %+v", l.Items)
	}
	bidp := must[client.IdentityProvider](t)(b.admin.CreateIdentityProvider(ctx, client.CreateIdentityProviderRequest{
		Name: "corp", Issuer: "https://login.b.example", JWKSURL: "https://login.b.example/keys", Audience: "eddy"}))
	for name, req := range map[string]client.CreateIdentityPoolRequest{
		"A's provider":        {Name: "x", ProviderID: idp.ID, ClusterID: bcl.ID, ServiceAccountID: bsa.ID, Filter: map[string][]string{"sub": {"x"}}},
		"A's cluster":         {Name: "x", ProviderID: bidp.ID, ClusterID: cl.ID, ServiceAccountID: bsa.ID, Filter: map[string][]string{"sub": {"x"}}},
		"A's service account": {Name: "x", ProviderID: bidp.ID, ClusterID: bcl.ID, ServiceAccountID: sa.ID, Filter: map[string][]string{"sub": {"x"}}},
	} {
		if _, err := b.admin.CreateIdentityPool(ctx, req); client.StatusOf(err) < 400 || client.StatusOf(err) >= 500 {
			t.Errorf("B makes a pool of %s: %v", name, err)
		}
	}

	// B's billing shows none of A's usage, invoices or alerts.
	if _, err := b.admin.GetUsage(ctx, client.UsageQuery{ClusterID: cl.ID}); !client.IsNotFound(err) {
		t.Errorf("B reads the usage of A's cluster: %v", err)
	}
	if u := must[client.Usage](t)(b.admin.GetUsage(ctx, client.UsageQuery{Granularity: "month", From: inv.PeriodStart, To: inv.PeriodEnd})); len(u.Items) != 0 {
		t.Errorf("B's usage = %+v", u.Items)
	}
	if est := must[client.Estimate](t)(b.admin.GetEstimate(ctx)); est.MonthToDate != "0.00" || len(est.Invoice.Lines) != 0 {
		t.Errorf("B's estimate = %+v", est)
	}
	if invs := must[client.List[client.Invoice]](t)(b.admin.ListInvoices(ctx, client.ListOptions{})); len(invs.Items) > 1 ||
		len(invs.Items) == 1 && (invs.Items[0].ID == inv.ID || invs.Items[0].Total != "0.00") {
		t.Errorf("B's invoices = %+v", invs.Items)
	}
	if csv := string(must[[]byte](t)(b.admin.ListInvoicesCSV(ctx, client.ListOptions{}))); strings.Contains(csv, inv.ID) {
		t.Errorf("B's invoice CSV lists A's invoice:\n%s", csv)
	}
	if _, err := b.admin.GetInvoiceCSV(ctx, inv.ID); !client.IsNotFound(err) {
		t.Errorf("B reads A's invoice as CSV: %v", err)
	}
	if as := must[client.List[client.BudgetAlert]](t)(b.admin.ListBudgetAlerts(ctx, client.ListOptions{})); len(as.Items) != 0 {
		t.Errorf("B's alerts = %+v", as.Items)
	}

	// A's resources are intact.
	if got := must[client.Invoice](t)(a.admin.GetInvoice(ctx, inv.ID)); got.Total != inv.Total || got.Credits != "0.00" {
		t.Errorf("A's invoice changed: %+v", got)
	}
	if s := must[client.BillingSettings](t)(a.admin.GetBillingSettings(ctx, a.org.Organization.ID)); s.TimeZone != "UTC" {
		t.Errorf("A's billing settings changed: %+v", s)
	}
	must[client.BudgetAlert](t)(a.admin.GetBudgetAlert(ctx, alert.ID))
	got := must[client.Cluster](t)(a.admin.GetCluster(ctx, cl.ID))
	top := must[client.Topic](t)(a.admin.GetTopic(ctx, cl.ID, "orders"))
	if got.Name != "shared-name" || top.PartitionCount != 1 {
		t.Errorf("A's cluster or topic changed: %+v %+v", got, top)
	}
	if _, err := a.admin.GetTopic(ctx, cl.ID, "stolen"); !client.IsNotFound(err) {
		t.Errorf("B created a topic in A's cluster: %v", err)
	}
	must[client.APIKey](t)(a.admin.GetAPIKey(ctx, key.ID))
	if got := must[client.ServiceAccount](t)(a.admin.GetServiceAccount(ctx, sa.ID)); got.Name == "stolen" {
		t.Errorf("B renamed A's service account")
	}
	if rbs := must[client.List[client.RoleBinding]](t)(a.admin.ListRoleBindings(ctx, cl.ID, client.ListOptions{})); len(rbs.Items) != 1 {
		t.Errorf("A's bindings = %+v", rbs.Items)
	}
	if got := must[client.ACL](t)(a.admin.GetACL(ctx, cl.ID, acl.ID)); got != acl {
		t.Errorf("A's ACL changed: %+v, was %+v", got, acl)
	}
	if acls := must[client.List[client.ACL]](t)(a.admin.ListACLs(ctx, cl.ID, client.ListOptions{})); len(acls.Items) != 1 {
		t.Errorf("A's ACLs = %+v", acls.Items)
	}
	// B's own cluster does not show A's ACL, nor find it by id.
	if acls := must[client.List[client.ACL]](t)(b.admin.ListACLs(ctx, bcl.ID, client.ListOptions{})); len(acls.Items) != 0 {
		t.Errorf("B's cluster lists ACLs %+v", acls.Items)
	}
	if _, err := b.admin.GetACL(ctx, bcl.ID, acl.ID); !client.IsNotFound(err) {
		t.Errorf("B reads A's ACL through its own cluster: %v", err)
	}
	if err := b.admin.DeleteACL(ctx, bcl.ID, acl.ID); !client.IsNotFound(err) {
		t.Errorf("B deletes A's ACL through its own cluster: %v", err)
	}
	must[client.Organization](t)(e.operator.GetOrganization(ctx, a.org.Organization.ID))
}
