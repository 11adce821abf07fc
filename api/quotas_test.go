package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/laghistory"
	"github.com/eddy-streams/eddy/internal/brokerload"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/store"
)

// TestLagHistoryREST: with the sampler running at a short interval, a
// group's lag samples appear over REST, oldest first, per partition (the
// lag values themselves: internal/store's TestGroupLagHistory); a
// full page says where the next starts; bad parameters are problems;
// another organisation sees nothing.
func TestLagHistoryREST(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := e.newTenant("lag-a"), e.newTenant("lag-b")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c"}))
	must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "orders", Partitions: ptr[int32](2)}))
	commitOffsets(t, e, cl.ID, "shop-app")

	// Nothing sampled yet: an empty history, not an error.
	if h := must[client.LagHistory](t)(a.admin.GetLagHistory(ctx, cl.ID, "shop-app", client.LagHistoryQuery{})); len(h.Samples) != 0 {
		t.Fatalf("history before any sample: %+v", h)
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	sampler := laghistory.New(laghistory.Config{Interval: time.Second, Retention: time.Hour, MaxGroupsPerCluster: 10},
		e.st, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	wg.Go(func() { sampler.Run(sctx) })

	var h client.LagHistory
	poll.Until(t, time.Minute, "two lag samples", func() error {
		var err error
		h, err = a.admin.GetLagHistory(ctx, cl.ID, "shop-app", client.LagHistoryQuery{})
		if err != nil || len(h.Samples) < 2 {
			return fmt.Errorf("%d samples, %v", len(h.Samples), err)
		}
		return nil
	})
	s := h.Samples[0]
	if h.GroupID != "shop-app" || s.TotalLag != 0 || len(s.Partitions) != 2 ||
		s.Partitions[0] != (client.PartitionLag{Topic: "orders", Partition: 0}) || s.Partitions[1] != (client.PartitionLag{Topic: "orders", Partition: 1}) {
		t.Errorf("first sample: %+v", h)
	}
	if !h.Samples[0].At.Before(h.Samples[1].At) {
		t.Errorf("samples not oldest first: %v, %v", h.Samples[0].At, h.Samples[1].At)
	}
	stop()
	wg.Wait()

	// A page of one says where the next starts.
	p1 := must[client.LagHistory](t)(a.admin.GetLagHistory(ctx, cl.ID, "shop-app", client.LagHistoryQuery{Limit: 1}))
	if len(p1.Samples) != 1 || p1.NextSince == nil || !p1.NextSince.Equal(p1.Samples[0].At) {
		t.Fatalf("page of one: %+v", p1)
	}
	p2 := must[client.LagHistory](t)(a.admin.GetLagHistory(ctx, cl.ID, "shop-app", client.LagHistoryQuery{Since: *p1.NextSince, Limit: 1}))
	if len(p2.Samples) != 1 || !p2.Samples[0].At.After(p1.Samples[0].At) {
		t.Errorf("second page: %+v after %+v", p2, p1)
	}
	for _, q := range []string{"since=yesterday", "limit=0", "limit=1441", "limit=x"} {
		resp, err := e.raw().Do(authed(ctx, a, "/v1/clusters/"+cl.ID+"/consumer-groups/shop-app/lag-history?"+q, e.url))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("?%s: %d, want a validation problem", q, resp.StatusCode)
		}
	}
	if _, err := b.admin.GetLagHistory(ctx, cl.ID, "shop-app", client.LagHistoryQuery{}); !client.IsNotFound(err) {
		t.Errorf("another organisation's lag history: %v, want 404", err)
	}
}

// commitOffsets commits group's offsets on both partitions of orders, as
// broker 1 coordinating slot 1. The high watermarks are 0 (nothing was
// produced), so the lag is 0: the store's tests check the lag itself.
func commitOffsets(t *testing.T, e *env, clusterID, group string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.st.Register(ctx, 1, "127.0.0.1", 9092, "", time.Minute); err != nil {
		t.Fatal(err)
	}
	fence := store.SlotFence{Slot: 1, BrokerID: 1, LeaderEpoch: 1}
	if err := e.st.AssignSlots(ctx, fence.BrokerID, fence.LeaderEpoch, fence.Slot); err != nil {
		t.Fatal(err)
	}
	err := e.st.CommitOffsets(ctx, clusterID, group, fence, []store.GroupOffset{
		{Topic: "orders", Partition: 0, Offset: 0, LeaderEpoch: -1}, {Topic: "orders", Partition: 1, Offset: 0, LeaderEpoch: -1}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestQuotaUsage: a cluster's usage sums the live brokers' load reports
// for it (and only for it), counts its topics and groups, shows the last
// storage sample and a recent throttle, and is another organisation's 404.
func TestQuotaUsage(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := e.newTenant("quota-a"), e.newTenant("quota-b")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "c",
		Limits: &limits.Limits{IngressMBps: 5, MaxConnections: 50}}))
	must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "orders", Partitions: ptr[int32](2)}))

	q := must[client.QuotaUsage](t)(a.admin.GetQuotaUsage(ctx, cl.ID))
	if q.ClusterID != cl.ID || q.Limits.IngressMBps != 5 || q.Limits.MaxConnections != 50 || q.Partitions != 2 || q.Topics != 1 ||
		q.Groups != 0 || q.BytesInPerSec != 0 || q.Connections != 0 || q.LastThrottledAt != nil || q.StorageSampledAt != nil {
		t.Errorf("an idle cluster: %+v", q)
	}

	commitOffsets(t, e, cl.ID, "g")
	throttled := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	for id, r := range map[int32]brokerload.Rates{
		1: {BytesIn: 1000, BytesOut: 3000, Requests: 10, Connections: 2},
		2: {BytesIn: 500, Requests: 5, Connections: 1, Throttle: 0.25, LastThrottledAt: throttled},
	} {
		epoch, err := e.st.Register(ctx, id, "127.0.0.1", 9092+id, "", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		rep := brokerload.Report{At: time.Now(), Interval: 1, Clusters: map[string]brokerload.Rates{cl.ID: r, "vc-other": {BytesIn: 1e6, Connections: 9}}}
		if err := e.st.Heartbeat(ctx, id, epoch, time.Minute, rep.Marshal()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.st.SampleStorage(ctx, time.Now().Truncate(time.Minute), 60); err != nil {
		t.Fatal(err)
	}
	q = must[client.QuotaUsage](t)(a.admin.GetQuotaUsage(ctx, cl.ID))
	if q.BrokersReporting != 2 || q.BytesInPerSec != 1500 || q.BytesOutPerSec != 3000 || q.RequestsPerSec != 15 || q.Connections != 3 ||
		q.ThrottleSecondsPerSec != 0.25 || q.LastThrottledAt == nil || !q.LastThrottledAt.Equal(throttled) || q.Groups != 1 || q.StorageSampledAt == nil {
		t.Errorf("a busy cluster: %+v", q)
	}
	if _, err := b.admin.GetQuotaUsage(ctx, cl.ID); !client.IsNotFound(err) {
		t.Errorf("another organisation's quota usage: %v, want 404", err)
	}
}
