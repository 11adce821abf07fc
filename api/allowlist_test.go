package api_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
)

// TestAllowListREST: a cluster's allow-list is validated and stored in
// canonical form; its sub-resources refuse a caller outside it (403)
// while the cluster itself stays manageable, so a mistaken list can be
// corrected.
func TestAllowListREST(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e.newTenant("fenced")

	if _, err := a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "bad", AllowedCIDRs: []string{"10.0.0.0/33"}}); client.StatusOf(err) != 400 {
		t.Fatalf("a bad CIDR: %v, want 400", err)
	}
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "prod", AllowedCIDRs: []string{"127.0.0.1", "10.9.8.7/8"}}))
	if want := []string{"10.0.0.0/8", "127.0.0.1/32"}; !slices.Equal(cl.AllowedCIDRs, want) {
		t.Fatalf("allowed_cidrs = %v, want %v", cl.AllowedCIDRs, want)
	}
	must[client.Cluster](t)(a.admin.WaitClusterReady(ctx, cl.ID, nil))

	// The same credentials from 127.0.0.2.
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	outside := client.New(e.url, client.WithAPIKey(a.keyID, a.secret), client.WithHTTPClient(&http.Client{Transport: tr, Timeout: time.Minute}))

	if _, err := a.admin.ListTopics(ctx, cl.ID, client.ListOptions{}); err != nil {
		t.Fatalf("from 127.0.0.1, in the list: %v", err)
	}
	if _, err := outside.ListTopics(ctx, cl.ID, client.ListOptions{}); client.StatusOf(err) != 403 {
		t.Fatalf("from 127.0.0.2, outside the list: %v, want 403", err)
	}
	if _, err := outside.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "x"}); client.StatusOf(err) != 403 {
		t.Fatalf("a topic created from outside the list: %v, want 403", err)
	}
	// The cluster itself: readable and correctable from anywhere.
	empty := []string{}
	up, err := outside.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{AllowedCIDRs: &empty})
	if err != nil || len(up.AllowedCIDRs) != 0 {
		t.Fatalf("clearing the list from outside it: %v %+v", err, up.AllowedCIDRs)
	}
	if _, err := outside.ListTopics(ctx, cl.ID, client.ListOptions{}); err != nil {
		t.Fatalf("from 127.0.0.2 with no list: %v", err)
	}
}
