package api_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// TestClusterBrokerConfigs: a cluster's Kafka broker configs are set on
// create, read back, replaced by a PATCH, refused with the config named
// when invalid (400) or above the cluster's limits (422), and new topics
// start with the topic defaults they set.
func TestClusterBrokerConfigs(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := e.newTenant("acme")

	plain := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "plain"}))
	if len(plain.BrokerConfigs) != 0 {
		t.Errorf("broker configs of a cluster created without any: %v", plain.BrokerConfigs)
	}
	want := map[string]string{"num.partitions": "6"}
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c1",
		Limits: &limits.Limits{MaxPartitions: 50}, BrokerConfigs: want}))
	if got := must[client.Cluster](t)(a.admin.GetCluster(ctx, cl.ID)); !maps.Equal(got.BrokerConfigs, want) {
		t.Fatalf("read back %v, want %v", got.BrokerConfigs, want)
	}
	want = map[string]string{"num.partitions": "3", "log.retention.ms": "3600000", "auto.create.topics.enable": "false"}
	up := must[client.Cluster](t)(a.admin.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{BrokerConfigs: &want}))
	if !maps.Equal(up.BrokerConfigs, want) {
		t.Fatalf("after a PATCH: %v, want %v", up.BrokerConfigs, want)
	}
	// A PATCH without broker_configs keeps them.
	up = must[client.Cluster](t)(a.admin.UpdateCluster(ctx, cl.ID, client.UpdateClusterRequest{Name: ptr("c1b")}))
	if !maps.Equal(up.BrokerConfigs, want) {
		t.Fatalf("after a rename: %v, want %v", up.BrokerConfigs, want)
	}

	top := must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "t"}))
	if top.Configs["retention.ms"] != "3600000" {
		t.Errorf("new topic's configs %v, want retention.ms from log.retention.ms", top.Configs)
	}
	if top.PartitionCount != 3 {
		t.Errorf("topic created without a count has %d partitions, want num.partitions (3)", top.PartitionCount)
	}

	const js = "application/json"
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		typ, field               string
	}{
		{"create, unknown config", "POST", "/v1/clusters", `{"name":"c2","broker_configs":{"log.dirs":"/tmp"}}`, 400, client.ProblemValidation, "broker_configs.log.dirs"},
		{"create, zero partitions", "POST", "/v1/clusters", `{"name":"c2","broker_configs":{"num.partitions":"0"}}`, 400, client.ProblemValidation, "broker_configs.num.partitions"},
		{"create, over max_partitions", "POST", "/v1/clusters", `{"name":"c2","limits":{"max_partitions":5},"broker_configs":{"num.partitions":"6"}}`, 422, client.ProblemLimitExceeded, "broker_configs.num.partitions"},
		{"update, bad retention", "PATCH", "/v1/clusters/" + cl.ID, `{"broker_configs":{"log.retention.ms":"soon"}}`, 400, client.ProblemValidation, "broker_configs.log.retention.ms"},
		{"update, over max_partitions", "PATCH", "/v1/clusters/" + cl.ID, `{"broker_configs":{"num.partitions":"51"}}`, 422, client.ProblemLimitExceeded, "broker_configs.num.partitions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, p, _ := e.send(ctx, a, tc.method, tc.path, js, tc.body)
			if status != tc.status || p.Type != tc.typ || len(p.Errors) != 1 || p.Errors[0].Field != tc.field || p.Errors[0].Message == "" {
				t.Fatalf("%d %+v, want %d %s naming %s", status, p, tc.status, tc.typ, tc.field)
			}
		})
	}
	if got := must[client.Cluster](t)(a.admin.GetCluster(ctx, cl.ID)); !maps.Equal(got.BrokerConfigs, want) {
		t.Errorf("refused updates changed the broker configs: %v, want %v", got.BrokerConfigs, want)
	}
}
