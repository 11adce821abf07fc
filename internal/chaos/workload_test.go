package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Stopping the producers lets the records they buffered finish: none may
// fail for good because the producing loop was told to stop.
func TestStopProducingFailsNothing(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := NewHistory()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := StartWorkload(ctx, WorkloadConfig{Seeds: c.ListenAddrs(), Topic: "t", Partitions: 4,
		AcksAllProducers: 2, AcksOneProducers: 2, Rate: 2000}, h)
	if err != nil {
		t.Fatal(err)
	}
	for len(h.Acks()) < 100 {
		if ctx.Err() != nil {
			t.Fatal("no acknowledgements")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if all, one := h.Failed(); all+one != 0 {
		t.Fatalf("%d acks=all and %d acks=1 attempts failed: %v", all, one, h.FailErrors())
	}
}
