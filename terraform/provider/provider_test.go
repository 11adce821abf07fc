package provider

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/eddy-streams/eddy/api/client"
)

// Unit tests of the provider's own logic; the acceptance tests
// (acc_test.go) cover the resources end to end.

func TestConfigureSettings(t *testing.T) {
	ctx := context.Background()
	p := New("test")()
	var sr provider.SchemaResponse
	p.Schema(ctx, provider.SchemaRequest{}, &sr)
	typ := sr.Schema.Type().TerraformType(ctx)
	str := func(v any) tftypes.Value { return tftypes.NewValue(tftypes.String, v) }
	config := func(endpoint, key, secret, timeout any) tfsdk.Config {
		return tfsdk.Config{Schema: sr.Schema, Raw: tftypes.NewValue(typ, map[string]tftypes.Value{
			"endpoint": str(endpoint), "api_key": str(key), "api_secret": str(secret), "request_timeout": str(timeout),
		})}
	}
	for _, env := range []string{EnvEndpoint, EnvAPIKey, EnvAPISecret} {
		t.Setenv(env, "")
	}
	for _, tc := range []struct {
		name   string
		cfg    tfsdk.Config
		env    map[string]string
		errors []string // summaries expected, "" for none
	}{
		{"all set", config("http://127.0.0.1:8080", "key-1", "s", "30s"), nil, nil},
		{"from the environment", config(nil, nil, nil, nil),
			map[string]string{EnvEndpoint: "https://api.example", EnvAPIKey: "key-1", EnvAPISecret: "s"}, nil},
		{"nothing", config(nil, nil, nil, nil), nil, []string{"Missing endpoint", "Missing api_key", "Missing api_secret"}},
		{"not a URL", config("127.0.0.1:8080", "key-1", "s", nil), nil, []string{"Invalid endpoint"}},
		{"unknown", config(tftypes.UnknownValue, "key-1", "s", nil), nil, []string{"Unknown endpoint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var resp provider.ConfigureResponse
			p.Configure(ctx, provider.ConfigureRequest{Config: tc.cfg}, &resp)
			var got []string
			for _, d := range resp.Diagnostics.Errors() {
				got = append(got, d.Summary())
			}
			if strings.Join(got, "|") != strings.Join(tc.errors, "|") {
				t.Fatalf("errors %q, want %q", got, tc.errors)
			}
			if len(tc.errors) == 0 {
				if _, ok := resp.ResourceData.(*client.Client); !ok {
					t.Fatalf("resource data %T", resp.ResourceData)
				}
			}
		})
	}
}

func TestValidators(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"checkName ok", checkName("orders-prod_1.a"), true},
		{"checkName empty", checkName(""), false},
		{"checkName leading dash", checkName("-x"), false},
		{"checkName space", checkName("a b"), false},
		{"checkName long", checkName(strings.Repeat("a", 65)), false},
		{"topic ok", checkTopicName("orders.v1_x-y"), true},
		{"topic dots", checkTopicName(".."), false},
		{"topic slash", checkTopicName("a/b"), false},
		{"topic long", checkTopicName(strings.Repeat("a", 250)), false},
		{"config ok", checkConfig("retention.ms", "-1"), true},
		{"config unknown", checkConfig("retention.msx", "1"), false},
		{"config value", checkConfig("cleanup.policy", "shred"), false},
		{"config compact,delete", checkConfig("cleanup.policy", "compact,delete"), true},
	} {
		if (tc.err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, tc.err)
		}
	}
	if err := checkConfig("retention.msx", "1"); !strings.Contains(err.Error(), "known configs: cleanup.policy") {
		t.Errorf("unknown config error does not list the known ones: %v", err)
	}
}

// TestConfigsAgainstDefaults: what Read shows and what Update keeps when
// the cluster's default topic configs were merged into a topic.
func TestConfigsAgainstDefaults(t *testing.T) {
	defaults := map[string]string{"retention.ms": "3600000", "max.message.bytes": "2000000"}
	explicit := map[string]string{"retention.ms": "3600000", "max.message.bytes": "5", "cleanup.policy": "compact"}
	// Nothing in state: the default-derived retention.ms is hidden; a
	// max.message.bytes that differs from the default is drift.
	if got, want := managedConfigs(explicit, nil, defaults), map[string]string{"max.message.bytes": "5", "cleanup.policy": "compact"}; !maps.Equal(got, want) {
		t.Errorf("managedConfigs = %v, want %v", got, want)
	}
	// A key the configuration manages shows even when it equals the default.
	prior := map[string]string{"retention.ms": "3600000"}
	if got := managedConfigs(explicit, prior, defaults); got["retention.ms"] != "3600000" {
		t.Errorf("managed default-valued key hidden: %v", got)
	}
	// Update keeps the hidden default-derived key, drops what the plan
	// removed, and takes the plan's values.
	explicit = map[string]string{"retention.ms": "3600000", "cleanup.policy": "compact", "segment.ms": "1"}
	prior = map[string]string{"cleanup.policy": "compact", "segment.ms": "1"}
	planned := map[string]string{"cleanup.policy": "delete"}
	if got, want := keptConfigs(explicit, prior, planned, defaults), map[string]string{"cleanup.policy": "delete", "retention.ms": "3600000"}; !maps.Equal(got, want) {
		t.Errorf("keptConfigs = %v, want %v", got, want)
	}
}

// TestNewTopicDefaults: the defaults hidden are the ones the server
// applies, broker configs' topic defaults included.
func TestNewTopicDefaults(t *testing.T) {
	cl := client.Cluster{BrokerConfigs: map[string]string{"log.retention.ms": "3600000", "num.partitions": "6"},
		DefaultTopicConfigs: map[string]string{"cleanup.policy": "compact"}}
	explicit := map[string]string{"retention.ms": "3600000", "cleanup.policy": "compact", "segment.ms": "1"}
	if got, want := managedConfigs(explicit, nil, newTopicDefaults(cl)), map[string]string{"segment.ms": "1"}; !maps.Equal(got, want) {
		t.Errorf("managedConfigs = %v, want %v", got, want)
	}
}

func TestRotationDue(t *testing.T) {
	now := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	created := types.StringValue("2026-01-01T00:00:00Z")
	for _, tc := range []struct {
		after types.String
		want  bool
	}{
		{types.StringNull(), false},
		{types.StringValue("720h"), true}, // exactly 30 days
		{types.StringValue("721h"), false},
		{types.StringValue("1h"), true},
		{types.StringUnknown(), false},
		{types.StringValue("nonsense"), false},
	} {
		if got := rotationDue(created, tc.after, now); got != tc.want {
			t.Errorf("rotationDue(%s) = %v, want %v", tc.after, got, tc.want)
		}
	}
}

// TestPartitionsDecrease: fewer partitions plan a replacement with a
// warning that names the topic and the data loss; more do not.
func TestPartitionsDecrease(t *testing.T) {
	ctx := context.Background()
	var sr resource.SchemaResponse
	newTopicResource().Schema(ctx, resource.SchemaRequest{}, &sr)
	typ := sr.Schema.Type().TerraformType(ctx)
	obj := func(partitions int64) tftypes.Value {
		vals := map[string]tftypes.Value{}
		for name, a := range typ.(tftypes.Object).AttributeTypes {
			vals[name] = tftypes.NewValue(a, nil)
		}
		vals["name"] = tftypes.NewValue(tftypes.String, "orders")
		vals["partitions"] = tftypes.NewValue(tftypes.Number, partitions)
		return tftypes.NewValue(typ, vals)
	}
	for _, tc := range []struct {
		from, to int64
		replace  bool
	}{{6, 3, true}, {3, 6, false}, {3, 3, false}} {
		req := planmodifier.Int64Request{
			Path:       path.Root("partitions"),
			StateValue: types.Int64Value(tc.from), PlanValue: types.Int64Value(tc.to), ConfigValue: types.Int64Value(tc.to),
			State: tfsdk.State{Schema: sr.Schema, Raw: obj(tc.from)},
			Plan:  tfsdk.Plan{Schema: sr.Schema, Raw: obj(tc.to)},
		}
		var resp planmodifier.Int64Response
		partitionsDecreaseReplaces{}.PlanModifyInt64(ctx, req, &resp)
		if resp.RequiresReplace != tc.replace {
			t.Errorf("%d -> %d: replace %v", tc.from, tc.to, resp.RequiresReplace)
		}
		if tc.replace {
			w := resp.Diagnostics.Warnings()
			if len(w) != 1 || !strings.Contains(w[0].Detail(), `topic "orders" from 6 to 3 deletes the topic with all its records`) {
				t.Errorf("warning = %v", w)
			}
		} else if len(resp.Diagnostics) != 0 {
			t.Errorf("%d -> %d: diagnostics %v", tc.from, tc.to, resp.Diagnostics)
		}
	}
}

func TestAPIErrorDiagnostic(t *testing.T) {
	var d diag.Diagnostics
	addAPIError(&d, `create topic "x"`, &client.Problem{Type: client.ProblemValidation, Title: "Validation failed", Status: 400,
		Detail: "the request has invalid fields", RequestID: "req-123",
		Errors: []client.FieldError{{Field: "configs.retention.ms", Message: `"soon" is not an integer`}}})
	if len(d) != 1 {
		t.Fatalf("diagnostics %v", d)
	}
	if s := d[0].Summary(); s != `Could not create topic "x": Validation failed` {
		t.Errorf("summary %q", s)
	}
	for _, want := range []string{"configs.retention.ms: \"soon\" is not an integer", "request id req-123", "HTTP 400"} {
		if !strings.Contains(d[0].Detail(), want) {
			t.Errorf("detail %q lacks %q", d[0].Detail(), want)
		}
	}
	d = nil
	addAPIError(&d, "read cluster", errors.New("dial tcp: connection refused"))
	if len(d) != 1 || !strings.Contains(d[0].Detail(), "connection refused") {
		t.Errorf("plain error: %v", d)
	}
}

// TestRetrying: 503s and lost connections are retried for GETs and for
// POSTs with an Idempotency-Key, with the body resent; other POSTs are not.
func TestRetrying(t *testing.T) {
	var (
		calls  atomic.Int32
		mu     sync.Mutex
		bodies []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &retrying{next: http.DefaultTransport}}
	do := func(method, key string) int {
		calls.Store(0)
		mu.Lock()
		bodies = nil
		mu.Unlock()
		req, _ := http.NewRequest(method, srv.URL, strings.NewReader(`{"a":1}`))
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	got := do(http.MethodPatch, "")
	mu.Lock()
	resent := len(bodies) == 3 && bodies[2] == `{"a":1}`
	mu.Unlock()
	if got != 200 || calls.Load() != 3 || !resent {
		t.Errorf("PATCH: %d after %d calls, bodies %q", got, calls.Load(), bodies)
	}
	if got := do(http.MethodPost, "k"); got != 200 || calls.Load() != 3 {
		t.Errorf("POST with key: %d after %d calls", got, calls.Load())
	}
	if got := do(http.MethodPost, ""); got != 503 || calls.Load() != 1 {
		t.Errorf("POST without key: %d after %d calls", got, calls.Load())
	}
}
