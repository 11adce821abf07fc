package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// send issues a raw request as t's admin and decodes a problem answer.
func (e *env) send(ctx context.Context, tn tenant, method, path, contentType, body string, hdr ...string) (int, client.Problem, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	req.SetBasicAuth(tn.keyID, tn.secret)
	resp, err := e.raw().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p client.Problem
	if resp.StatusCode >= 400 && path != "/oauth2/token" {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			e.t.Errorf("%s %s: %d with Content-Type %q", method, path, resp.StatusCode, ct)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			e.t.Errorf("%s %s: problem does not decode: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, p, resp.Header
}

// TestBadInput: each kind of bad request gets a problem+json with the
// right status and type, naming the field where there is one.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e.newTenant("acme")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c1", Limits: &limits.Limits{MaxPartitions: 4}}))
	must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "t1", Partitions: ptr[int32](2)}))
	topics := "/v1/clusters/" + cl.ID + "/topics"
	const js = "application/json"
	big := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`

	for _, tc := range []struct {
		name, method, path, ct, body string
		status                       int
		typ, field                   string
	}{
		{"malformed JSON", "POST", "/v1/clusters", js, `{"name":`, 400, client.ProblemMalformed, ""},
		{"not JSON", "POST", "/v1/clusters", js, `name=c2`, 400, client.ProblemMalformed, ""},
		{"empty body", "POST", "/v1/clusters", js, ``, 400, client.ProblemMalformed, ""},
		{"array body", "POST", "/v1/clusters", js, `[]`, 400, client.ProblemMalformed, ""},
		{"trailing data", "POST", "/v1/clusters", js, `{"name":"c2"} {}`, 400, client.ProblemMalformed, ""},
		{"unknown field", "POST", "/v1/clusters", js, `{"name":"c2","replicas":3}`, 400, client.ProblemValidation, "replicas"},
		{"unknown nested field", "POST", "/v1/clusters", js, `{"name":"c2","limits":{"cpu":1}}`, 400, client.ProblemValidation, "cpu"},
		{"wrong type", "POST", "/v1/clusters", js, `{"name":7}`, 400, client.ProblemValidation, "name"},
		{"missing name", "POST", "/v1/clusters", js, `{}`, 400, client.ProblemValidation, "name"},
		{"bad name", "POST", "/v1/clusters", js, `{"name":"-x y"}`, 400, client.ProblemValidation, "name"},
		{"limit too small", "POST", "/v1/clusters", js, `{"name":"c2","limits":{"max_partitions":0}}`, 400, client.ProblemValidation, "limits.max_partitions"},
		{"limit too large", "POST", "/v1/clusters", js, `{"name":"c2","limits":{"ingress_mbps":10001}}`, 400, client.ProblemValidation, "limits.ingress_mbps"},
		{"limit overflows int32", "POST", "/v1/clusters", js, `{"name":"c2","limits":{"egress_mbps":99999999999}}`, 400, client.ProblemValidation, "limits.egress_mbps"},
		{"bad default config", "POST", "/v1/clusters", js, `{"name":"c2","default_topic_configs":{"retention.ms":"soon"}}`, 400, client.ProblemValidation, "default_topic_configs.retention.ms"},
		{"duplicate cluster", "POST", "/v1/clusters", js, `{"name":"c1"}`, 409, client.ProblemConflict, ""},
		{"wrong content type", "POST", "/v1/clusters", "text/plain", `{"name":"c2"}`, 415, client.ProblemUnsupportedMedia, ""},
		{"no content type", "POST", "/v1/clusters", "", `{"name":"c2"}`, 415, client.ProblemUnsupportedMedia, ""},
		{"oversized body", "POST", "/v1/clusters", js, big, 413, client.ProblemTooLarge, ""},
		{"oversized body with idempotency key", "POST", "/v1/service-accounts", js, big, 413, client.ProblemTooLarge, ""},
		{"zero partitions", "POST", topics, js, `{"name":"t2","partitions":0}`, 400, client.ProblemValidation, "partitions"},
		{"negative partitions", "POST", topics, js, `{"name":"t2","partitions":-3}`, 400, client.ProblemValidation, "partitions"},
		{"too many partitions", "POST", topics, js, `{"name":"t2","partitions":10001}`, 400, client.ProblemValidation, "partitions"},
		{"fractional partitions", "POST", topics, js, `{"name":"t2","partitions":1.5}`, 400, client.ProblemValidation, "partitions"},
		{"over cluster partition limit", "POST", topics, js, `{"name":"t2","partitions":3}`, 422, client.ProblemLimitExceeded, ""},
		{"bad topic name", "POST", topics, js, `{"name":"a/b"}`, 400, client.ProblemValidation, "name"},
		{"dot topic name", "POST", topics, js, `{"name":".."}`, 400, client.ProblemValidation, "name"},
		{"long topic name", "POST", topics, js, `{"name":"` + strings.Repeat("a", 250) + `"}`, 400, client.ProblemValidation, "name"},
		{"unknown topic config", "POST", topics, js, `{"name":"t2","configs":{"foo":"1"}}`, 400, client.ProblemValidation, "configs.foo"},
		{"bad topic config", "POST", topics, js, `{"name":"t2","configs":{"cleanup.policy":"shred"}}`, 400, client.ProblemValidation, "configs.cleanup.policy"},
		{"duplicate topic", "POST", topics, js, `{"name":"t1"}`, 409, client.ProblemConflict, ""},
		{"shrink partitions", "PATCH", topics + "/t1", js, `{"partitions":1}`, 422, client.ProblemInvalidChange, ""},
		{"null configs value", "PATCH", topics + "/t1", js, `{"configs":{"retention.ms":null}}`, 400, client.ProblemValidation, "configs.retention.ms"},
		{"bad role", "POST", "/v1/clusters/" + cl.ID + "/role-bindings", js, `{"service_account_id":"` + a.org.AdminServiceAccount.ID + `","role":"root"}`, 400, client.ProblemValidation, "role"},
		{"bad service account ref", "POST", "/v1/api-keys", js, `{"service_account_id":"bob"}`, 400, client.ProblemValidation, "service_account_id"},
		{"missing service account", "POST", "/v1/api-keys", js, `{"service_account_id":"sa-doesnotexist"}`, 404, client.ProblemNotFound, ""},
		{"long description", "POST", "/v1/service-accounts", js, `{"name":"x","description":"` + strings.Repeat("d", 300) + `"}`, 400, client.ProblemValidation, "description"},
		{"bad service account rename", "PATCH", "/v1/service-accounts/" + a.org.AdminServiceAccount.ID, js, `{"name":"-x"}`, 400, client.ProblemValidation, "name"},
		{"missing role binding", "GET", "/v1/clusters/" + cl.ID + "/role-bindings/rb-nope", "", "", 404, client.ProblemNotFound, ""},
		{"bad limit param", "GET", "/v1/clusters?limit=0", "", "", 400, client.ProblemValidation, "limit"},
		{"bad cursor", "GET", "/v1/clusters?cursor=***", "", "", 400, client.ProblemValidation, "cursor"},
		{"forged cursor", "GET", "/v1/clusters?cursor=Zm9v", "", "", 400, client.ProblemValidation, "cursor"},
		{"unknown route", "GET", "/v1/nothing", "", "", 404, client.ProblemNotFound, ""},
		{"wrong method", "PUT", "/v1/clusters", js, `{}`, 405, client.ProblemMethodNotAllowed, ""},
		{"bad idempotency key", "POST", "/v1/service-accounts", js, `{"name":"x"}`, 400, client.ProblemValidation, "Idempotency-Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			switch tc.name {
			case "bad idempotency key":
				hdr = []string{"Idempotency-Key", "has spaces in it"}
			case "oversized body with idempotency key":
				hdr = []string{"Idempotency-Key", "k-big"}
			}
			status, p, _ := e.send(ctx, a, tc.method, tc.path, tc.ct, tc.body, hdr...)
			if status != tc.status || p.Type != tc.typ || p.Status != tc.status || p.Title == "" || p.RequestID == "" {
				t.Fatalf("%d %+v, want %d %s", status, p, tc.status, tc.typ)
			}
			if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
				t.Fatalf("errors = %+v, want field %s", p.Errors, tc.field)
			}
		})
	}
	// Nothing was created by any of it.
	if cls := must[client.List[client.Cluster]](t)(a.admin.ListClusters(ctx, client.ListOptions{})); len(cls.Items) != 1 {
		t.Errorf("clusters = %d", len(cls.Items))
	}
	if ts := must[client.List[client.Topic]](t)(a.admin.ListTopics(ctx, cl.ID, client.ListOptions{})); len(ts.Items) != 1 || ts.Items[0].PartitionCount != 2 {
		t.Errorf("topics = %+v", ts.Items)
	}

	// The operator gets 404 for unknown routes too, not a role error.
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/nothing", nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	if resp, err := e.raw().Do(req); err != nil || resp.StatusCode != 404 {
		t.Errorf("operator, unknown route: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	// Unauthenticated and wrongly authenticated requests.
	for _, auth := range []string{"", "Basic !!!", "Basic " + basic(a.keyID, "wrong"), "Basic " + basic("key-nope", a.secret), "Bearer nope", "Digest x"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/clusters", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := e.raw().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: %d, WWW-Authenticate %q", auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

// TestIdempotency: repeating a POST with the same Idempotency-Key returns
// the first result and creates nothing new.
func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e.newTenant("acme")
	req := client.CreateClusterRequest{Name: "c1"}
	first := must[client.Cluster](t)(a.admin.CreateCluster(ctx, req, client.IdempotencyKey("k1")))
	again := must[client.Cluster](t)(a.admin.CreateCluster(ctx, req, client.IdempotencyKey("k1")))
	if again.ID != first.ID || again.ETag != first.ETag {
		t.Fatalf("replay = %+v, first %+v", again, first)
	}
	if _, err := a.admin.CreateCluster(ctx, req); !client.IsConflict(err) {
		t.Fatalf("without a key the duplicate name conflicts: %v", err)
	}
	if cls := must[client.List[client.Cluster]](t)(a.admin.ListClusters(ctx, client.ListOptions{})); len(cls.Items) != 1 {
		t.Fatalf("%d clusters", len(cls.Items))
	}
	// The same key for a different request is refused.
	if _, err := a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c2"}, client.IdempotencyKey("k1")); client.StatusOf(err) != 422 {
		t.Fatalf("key reuse: %v", err)
	}
	// Replayed headers say so.
	status, _, hdr := e.send(ctx, a, "POST", "/v1/clusters", "application/json", `{"name":"c1"}`, "Idempotency-Key", "k1")
	if status != 201 || hdr.Get("Idempotent-Replayed") != "true" || hdr.Get("Location") != "/v1/clusters/"+first.ID {
		t.Fatalf("raw replay: %d %v", status, hdr)
	}
	// Keys are per organisation: another tenant's k1 is its own.
	b := e.newTenant("other")
	bc := must[client.Cluster](t)(b.admin.CreateCluster(ctx, req, client.IdempotencyKey("k1")))
	if bc.ID == first.ID {
		t.Fatal("org B got org A's replay")
	}

	// Topics and API keys; a replayed key never shows the secret again.
	must[client.Topic](t)(a.admin.CreateTopic(ctx, first.ID, client.CreateTopicRequest{Name: "t"}, client.IdempotencyKey("t")))
	tp := must[client.Topic](t)(a.admin.CreateTopic(ctx, first.ID, client.CreateTopicRequest{Name: "t"}, client.IdempotencyKey("t")))
	if tp.Name != "t" {
		t.Fatalf("topic replay = %+v", tp)
	}
	sa := must[client.ServiceAccount](t)(a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "app"}, client.IdempotencyKey("sa")))
	k1 := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID}, client.IdempotencyKey("key")))
	k2 := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID}, client.IdempotencyKey("key")))
	if k1.ID != k2.ID || k1.Secret == "" || k2.Secret != "" {
		t.Fatalf("key replay: first %+v, replay %+v", k1, k2)
	}
	keys := must[client.List[client.APIKey]](t)(a.admin.ListAPIKeys(ctx, client.ListOptions{}))
	if len(keys.Items) != 2 { // the admin's and k1
		t.Fatalf("%d keys", len(keys.Items))
	}
	// Concurrent repeats: one request creates, the others replay it or are
	// told it is still in flight; exactly one service account results.
	var wg sync.WaitGroup
	ids := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			status, p, hdr := e.send(ctx, a, "POST", "/v1/service-accounts", "application/json", `{"name":"racer"}`, "Idempotency-Key", "race")
			switch {
			case status == 201:
				ids <- hdr.Get("Location")
			case status == 409 && p.Type == client.ProblemIdempotencyInFlight:
			default:
				t.Errorf("concurrent repeat: %d %+v", status, p)
			}
		})
	}
	wg.Wait()
	close(ids)
	var winner string
	for id := range ids {
		if winner == "" {
			winner = id
		}
		if id != winner {
			t.Errorf("concurrent repeats created %s and %s", winner, id)
		}
	}
	n := 0
	for _, s := range must[client.List[client.ServiceAccount]](t)(a.admin.ListServiceAccounts(ctx, client.ListOptions{})).Items {
		if s.Name == "racer" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d service accounts named racer", n)
	}

	// Failed validation is replayed too (it is a response), and creates nothing.
	for range 2 {
		if status, p, _ := e.send(ctx, a, "POST", "/v1/clusters", "application/json", `{"name":"bad name"}`, "Idempotency-Key", "bad"); status != 400 {
			t.Fatalf("invalid: %d %+v", status, p)
		}
	}
}

func basic(id, secret string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(id, secret)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestRandomBodies throws random and mutated bodies at every route and
// checks that no answer is a 5xx or outside the spec (the validating
// transport fails the test on both).
func TestRandomBodies(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := e.newTenant("acme")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c1"}))
	must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "t1"}))
	sa := must[client.ServiceAccount](t)(a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "app"}))
	rb := must[client.RoleBinding](t)(a.admin.CreateRoleBinding(ctx, cl.ID, client.CreateRoleBindingRequest{ServiceAccountID: sa.ID, Role: "admin"}))
	ac := must[client.ACL](t)(a.admin.CreateACL(ctx, cl.ID, client.CreateACLRequest{Principal: "User:" + sa.ID,
		ResourceType: "group", ResourceName: "g", Operation: "read", Permission: "allow"}))
	params := map[string]string{"org_id": a.org.Organization.ID, "cluster_id": cl.ID, "topic_name": "t1",
		"binding_id": rb.ID, "service_account_id": sa.ID, "key_id": a.keyID,
		"invoice_id": "inv-x", "alert_id": "ba-x", "acl_id": ac.ID, "group_id": "g", "plan_id": "standard"}
	rnd := rand.New(rand.NewPCG(1, 2))
	n := 40
	if testing.Short() {
		n = 10
	}
	for _, r := range e.srv.Routes() {
		path := echoParam.ReplaceAllStringFunc(r.Path, func(m string) string { return params[m[1:]] })
		if r.Method == "DELETE" {
			continue // deleting is not what this test is about; isolation and CRUD cover it
		}
		for i := range n {
			body := randomBody(rnd, i)
			ct := "application/json"
			if r.Path == "/oauth2/token" {
				ct = "application/x-www-form-urlencoded"
			}
			e.send(ctx, a, r.Method, path, ct, body)
		}
	}
}

// randomBody returns a random JSON-ish body: structured values around the
// API's field names, mutations of them, or random bytes.
func randomBody(rnd *rand.Rand, i int) string {
	fields := []string{"name", "partitions", "configs", "limits", "max_partitions", "ingress_mbps", "default_topic_configs",
		"service_account_id", "cluster_id", "role", "description", "grant_type", "retention.ms",
		"principal", "resource_type", "resource_name", "pattern_type", "operation", "permission", "host"}
	var val func(depth int) any
	val = func(depth int) any {
		switch k := rnd.IntN(9); {
		case k == 0:
			return nil
		case k == 1:
			return rnd.IntN(3) == 0
		case k == 2:
			return rnd.Int64() - rnd.Int64()
		case k == 3:
			return rnd.Float64() * 1e12
		case k == 4:
			return []string{"", "x", "vc-x", "sa-x", "admin", "compact", strings.Repeat("é", 70), "1", "-1", "\u0000"}[rnd.IntN(10)]
		case k < 7 && depth < 3:
			m := map[string]any{}
			for range rnd.IntN(4) {
				m[fields[rnd.IntN(len(fields))]] = val(depth + 1)
			}
			return m
		case depth < 3:
			a := make([]any, rnd.IntN(3))
			for j := range a {
				a[j] = val(depth + 1)
			}
			return a
		}
		return "leaf"
	}
	switch i % 4 {
	case 0, 1:
		b, _ := json.Marshal(val(0))
		return string(b)
	case 2:
		b, _ := json.Marshal(val(0))
		if len(b) > 1 {
			p := rnd.IntN(len(b))
			b = append(b[:p:p], b[p+1:]...)
		}
		return string(b)
	}
	b := make([]byte, rnd.IntN(64))
	for j := range b {
		b[j] = byte(rnd.IntN(256))
	}
	return fmt.Sprintf("%s", b)
}
