package api_test

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/api"
	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// TestSpecValid: api/openapi.yaml is a valid OpenAPI 3.1 document.
func TestSpecValid(t *testing.T) {
	doc := loadSpec(t)
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

var echoParam = regexp.MustCompile(`:([a-z_]+)`)

// specPath turns an echo path (/v1/clusters/:cluster_id) into an OpenAPI
// one (/v1/clusters/{cluster_id}).
func specPath(p string) string { return echoParam.ReplaceAllString(p, "{$1}") }

// TestSpecMatchesRoutes: every route the server has is in the document,
// and every operation of the document is a route.
func TestSpecMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	doc := loadSpec(t)
	have := map[string]bool{}
	for _, r := range e.srv.Routes() {
		key := r.Method + " " + specPath(r.Path)
		have[key] = true
		item := doc.Paths.Value(specPath(r.Path))
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("route %s is not in openapi.yaml", key)
		}
	}
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	sort.Strings(ops)
	for _, op := range ops {
		if !have[op] {
			t.Errorf("openapi.yaml has %s, which the server does not serve", op)
		}
	}
}

// TestServedSpec: /openapi.yaml serves the embedded document.
func TestServedSpec(t *testing.T) {
	e := newEnv(t)
	resp, err := e.raw().Get(e.url + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != string(api.Spec()) {
		t.Fatalf("served spec differs from api.Spec() (%v)", err)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/.well-known/openid-configuration", "/.well-known/jwks.json"} {
		resp, err := e.raw().Get(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
	_ = client.ProblemBase
}

// TestSpecLimits: the document's limits are limits.Limits' fields with
// limits' bounds, so the spec cannot drift from what the server checks.
func TestSpecLimits(t *testing.T) {
	doc := loadSpec(t)
	var fields []string
	for f := range reflect.TypeFor[limits.Limits]().Fields() {
		fields = append(fields, strings.Split(f.Tag.Get("json"), ",")[0])
	}
	for _, name := range []string{"Limits", "LimitsPatch"} {
		s := doc.Components.Schemas[name].Value
		if len(s.Properties) != len(fields) {
			t.Errorf("%s has %d properties, limits.Limits %d fields %v", name, len(s.Properties), len(fields), fields)
		}
		for _, f := range fields {
			p := s.Properties[f]
			if p == nil {
				t.Errorf("%s has no %s", name, f)
				continue
			}
			b := limits.BoundOf(f)
			if p.Value.Min == nil || p.Value.Max == nil || int64(*p.Value.Min) != b.Min || int64(*p.Value.Max) != b.Max {
				t.Errorf("%s.%s: range %v..%v, limits has %d..%d", name, f, p.Value.Min, p.Value.Max, b.Min, b.Max)
			}
		}
	}
}
