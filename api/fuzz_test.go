package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
)

// FuzzAPI sends fuzzed bodies to every route (go test -fuzz=FuzzAPI
// ./api; make fuzz): no answer may be a 5xx or fall outside openapi.yaml.
// Without -fuzz it runs the seeds.
func FuzzAPI(f *testing.F) {
	e := newEnv(f)
	ctx := context.Background()
	a := e.newTenant("acme")
	cl := must[client.Cluster](f)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c1"}))
	must[client.Topic](f)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "t1"}))
	sa := must[client.ServiceAccount](f)(a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "app"}))
	params := map[string]string{"org_id": a.org.Organization.ID, "cluster_id": cl.ID, "topic_name": "t1",
		"binding_id": "rb-x", "service_account_id": sa.ID, "key_id": a.keyID,
		"invoice_id": "inv-x", "alert_id": "ba-x", "plan_id": "standard", "group_id": "x-1", "acl_id": "x-1",
		"partition": "0", "provider_id": "idp-x", "pool_id": "pool-x"}
	routes := e.srv.Routes()
	for _, r := range routes {
		for _, m := range echoParam.FindAllString(r.Path, -1) {
			if _, ok := params[m[1:]]; !ok {
				f.Fatalf("route %s %s has parameter %s that FuzzAPI has no value for: add one to params", r.Method, r.Path, m)
			}
		}
	}
	for i, seed := range []string{
		`{"name":"c2"}`, `{"name":"t2","partitions":3,"configs":{"retention.ms":"1000"}}`,
		`{"partitions":2}`, `{"limits":{"max_partitions":5}}`, `{"service_account_id":"` + sa.ID + `","role":"admin"}`,
		`grant_type=client_credentials&client_id=x&client_secret=y`, `{"name":`, `[]`, `null`, "\x00\xff",
	} {
		f.Add(uint8(i*7), []byte(seed), i%3 == 0)
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte, form bool) {
		r := routes[int(route)%len(routes)]
		if r.Method == "DELETE" && (r.Path == "/v1/organizations/:org_id" || r.Path == "/v1/api-keys/:key_id") {
			return // would end the fuzzing tenant's access
		}
		if strings.HasSuffix(r.Path, "/records") {
			// Valid requests need brokers (503 without); TestRecordsBadInput
			// covers what these routes refuse.
			return
		}
		path := echoParam.ReplaceAllStringFunc(r.Path, func(m string) string { return params[m[1:]] })
		ct := "application/json"
		if form {
			ct = "application/x-www-form-urlencoded"
		}
		te := *e
		te.t = t
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		te.send(rctx, a, r.Method, path, ct, string(body))
	})
}
