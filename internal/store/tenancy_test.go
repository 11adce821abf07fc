package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
)

func open(t *testing.T) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, pgtest.URL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// TestPartitionLimitUnderConcurrency: topics created at once never take a
// cluster past max_partitions (creation locks the cluster row).
func TestPartitionLimitUnderConcurrency(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	org, _, _, err := st.CreateOrg(ctx, "acme", []byte("h"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := st.CreateCluster(ctx, org.ID, "c", limits.Limits{IngressMBps: 1, EgressMBps: 1, MaxRequestsPerSec: 10_000, MaxConnections: 1000, MaxPartitions: 10, MaxStorageGB: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Go(func() {
			_, _, err := st.CreateTopic(ctx, org.ID, cl.ID, fmt.Sprintf("t%d", i), 3, nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrLimit):
			t.Errorf("unexpected error: %v", err)
		}
	}
	got, err := st.Cluster(ctx, org.ID, cl.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok != 3 || got.Partitions != 9 {
		t.Fatalf("%d topics created, %d partitions; want 3 and 9", ok, got.Partitions)
	}
}

// TestOrgScoping: every read and write names the organisation; another
// organisation's ids behave as missing.
func TestOrgScoping(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	a, saA, keyA, _ := st.CreateOrg(ctx, "a", []byte("ha"), nil)
	b, _, _, _ := st.CreateOrg(ctx, "b", []byte("hb"), nil)
	cl, err := st.CreateCluster(ctx, a.ID, "c", limits.Limits{IngressMBps: 1, EgressMBps: 1, MaxRequestsPerSec: 10_000, MaxConnections: 1000, MaxPartitions: 10, MaxStorageGB: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateTopic(ctx, a.ID, cl.ID, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"cluster":      func() error { _, err := st.Cluster(ctx, b.ID, cl.ID); return err }(),
		"topic":        func() error { _, err := st.Topic(ctx, b.ID, cl.ID, "t"); return err }(),
		"create topic": func() error { _, _, err := st.CreateTopic(ctx, b.ID, cl.ID, "x", 1, nil); return err }(),
		"update topic": func() error { _, err := st.UpdateTopic(ctx, b.ID, cl.ID, "t", 2, nil); return err }(),
		"delete topic": st.DeleteTopic(ctx, b.ID, cl.ID, "t"),
		"update cluster": func() error {
			_, err := st.UpdateCluster(ctx, b.ID, cl.ID, 0, func(*store.Cluster) error { return nil })
			return err
		}(),
		"delete cluster":  st.DeleteCluster(ctx, b.ID, cl.ID),
		"service account": func() error { _, err := st.ServiceAccount(ctx, b.ID, saA.ID); return err }(),
		"delete sa":       st.DeleteServiceAccount(ctx, b.ID, saA.ID),
		"api key":         func() error { _, err := st.APIKey(ctx, b.ID, keyA.ID); return err }(),
		"delete key":      st.DeleteAPIKey(ctx, b.ID, keyA.ID),
		"key for A's sa":  func() error { _, err := st.CreateAPIKey(ctx, b.ID, saA.ID, "", "", []byte("x"), nil); return err }(),
		"binding in A":    func() error { _, err := st.CreateRoleBinding(ctx, b.ID, cl.ID, saA.ID, "admin"); return err }(),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s from org b: %v, want ErrNotFound", name, err)
		}
	}
	if ts, _, err := st.Topics(ctx, b.ID, cl.ID, store.Page{}); err != nil || len(ts) != 0 {
		t.Errorf("topics from org b: %v %v", ts, err)
	}
	if _, err := st.Topic(ctx, a.ID, cl.ID, "t"); err != nil {
		t.Errorf("A's topic is gone: %v", err)
	}
}
