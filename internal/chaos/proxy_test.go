package chaos

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/s3test"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/s3bucket"
)

func TestProxyFaults(t *testing.T) {
	endpoint, ak, sk := s3test.Start(t)
	p, err := StartProxy(endpoint, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := s3bucket.New(ctx, s3bucket.Config{Endpoint: p.URL(), Region: s3test.Region, Bucket: "chaos-proxy",
		AccessKey: ak, SecretKey: sk, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateBucketIfMissing(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}

	// The SDK retries SlowDown, 500s and resets a few times: a fault on
	// every request fails the call, and only its Op's.
	for _, f := range []Fault{{Status: http.StatusServiceUnavailable}, {Status: http.StatusInternalServerError}, {Reset: true}, {Down: true}} {
		p.Set(OpPut, f)
		if err := b.Put(ctx, "b", []byte("y")); err == nil {
			t.Errorf("put through %+v succeeded", f)
		}
		if _, err := b.Get(ctx, "a"); err != nil {
			t.Errorf("get while only PUT suffers %+v: %v", f, err)
		}
	}
	p.Clear()
	if err := b.Put(ctx, "b", []byte("y")); err != nil {
		t.Fatalf("put after Clear: %v", err)
	}

	p.Set(OpGet, Fault{Latency: 300 * time.Millisecond})
	start := time.Now()
	if got, err := b.Get(ctx, "b"); err != nil || !bytes.Equal(got, []byte("y")) {
		t.Fatalf("get: %q, %v", got, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("get took %v through 300ms of latency", d)
	}
	p.Set(OpList, Fault{Down: true})
	if err := b.List(ctx, "", func(bucket.Object) error { return nil }); err == nil {
		t.Error("list through a down LIST succeeded")
	}
	hits := p.Hits()
	for _, k := range []string{"PUT 503", "PUT 500", "PUT reset", "PUT down", "GET latency", "LIST down"} {
		if hits[k] == 0 {
			t.Errorf("no %q hits counted: %v", k, hits)
		}
	}
}
