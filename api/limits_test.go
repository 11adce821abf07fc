package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// TestClusterLimits: every limit the broker enforces, the request rate
// and connections included, is set on create, read back, changed alone
// by a PATCH that leaves the others as they are, and refused out of its
// range with a problem+json naming it.
func TestClusterLimits(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := e.newTenant("acme")

	plain := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "plain"}))
	if plain.Limits != limits.Defaults() {
		t.Errorf("limits of a cluster created without any: %+v, want the defaults %+v", plain.Limits, limits.Defaults())
	}

	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c1",
		Limits: &limits.Limits{MaxRequestsPerSec: 500, MaxConnections: 20}}))
	want := limits.Defaults()
	want.MaxRequestsPerSec, want.MaxConnections = 500, 20
	if got := must[client.Cluster](t)(a.admin.GetCluster(ctx, cl.ID)); got.Limits != want {
		t.Fatalf("read back %+v, want %+v", got.Limits, want)
	}

	up := must[client.Cluster](t)(a.admin.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{Limits: &limits.Limits{MaxConnections: 7}}))
	want.MaxConnections = 7
	if up.Limits != want {
		t.Fatalf("after a PATCH of max_connections: %+v, want %+v", up.Limits, want)
	}
	up = must[client.Cluster](t)(a.admin.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{Limits: &limits.Limits{MaxRequestsPerSec: 1_000_000}}))
	want.MaxRequestsPerSec = 1_000_000
	if got := must[client.Cluster](t)(a.admin.GetCluster(ctx, cl.ID)); up.Limits != want || got.Limits != want {
		t.Fatalf("after a PATCH of max_requests_per_sec: %+v, read back %+v, want %+v", up.Limits, got.Limits, want)
	}

	const js = "application/json"
	for _, tc := range []struct{ name, method, path, body, field string }{
		{"create, no requests", "POST", "/v1/clusters", `{"name":"c2","limits":{"max_requests_per_sec":0}}`, "limits.max_requests_per_sec"},
		{"create, too many requests", "POST", "/v1/clusters", `{"name":"c2","limits":{"max_requests_per_sec":1000001}}`, "limits.max_requests_per_sec"},
		{"create, negative connections", "POST", "/v1/clusters", `{"name":"c2","limits":{"max_connections":-1}}`, "limits.max_connections"},
		{"update, too many connections", "PATCH", "/v1/clusters/" + cl.ID, `{"limits":{"max_connections":100001}}`, "limits.max_connections"},
		{"update, no requests", "PATCH", "/v1/clusters/" + cl.ID, `{"limits":{"max_requests_per_sec":0}}`, "limits.max_requests_per_sec"},
		{"update, connections overflow int32", "PATCH", "/v1/clusters/" + cl.ID, `{"limits":{"max_connections":99999999999}}`, "limits.max_connections"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, p, _ := e.send(ctx, a, tc.method, tc.path, js, tc.body)
			if status != 400 || p.Type != client.ProblemValidation || len(p.Errors) != 1 || p.Errors[0].Field != tc.field || p.Errors[0].Message == "" {
				t.Fatalf("%d %+v, want 400 %s naming %s", status, p, client.ProblemValidation, tc.field)
			}
		})
	}
	if got := must[client.Cluster](t)(a.admin.GetCluster(ctx, cl.ID)); got.Limits != want {
		t.Errorf("refused updates changed the limits: %+v, want %+v", got.Limits, want)
	}
}
