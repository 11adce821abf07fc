package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/sasl"
	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// roundTrip sends req on nc and reads the response frame's body; an error
// means the broker closed the connection (or did not answer by deadline).
func roundTrip(nc net.Conn, req kmsg.Request, version int16, deadline time.Duration) ([]byte, error) {
	nc.SetDeadline(time.Now().Add(deadline))
	frame := frameFor(req, version)
	if _, err := nc.Write(binary.BigEndian.AppendUint32(nil, uint32(len(frame)))); err != nil {
		return nil, err
	}
	if _, err := nc.Write(frame); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(nc, body)
	return body, err
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

func heapAfterGC() runtime.MemStats {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m
}

// TestGuardPreAuthMemory: eight unauthenticated connections that each
// announce a 100 MiB frame and send 10 MiB of it are closed as soon as
// they pass the pre-auth frame limit: the broker's heap grows by less than
// 10 MiB while they are open. Connections that announce the largest
// pre-auth frame and send nothing hold no buffer for it.
func TestGuardPreAuthMemory(t *testing.T) {
	r := startRig(t, rigOptions{config: func(c *Config) {
		c.AnonymousCluster, c.SASLMechanisms = "", []string{sasl.Plain}
	}})
	before := heapAfterGC()

	const conns, announced, send = 8, 100 << 20, 10 << 20
	type result struct {
		sent int
		err  error
		took time.Duration
	}
	results := make([]result, conns)
	var wg sync.WaitGroup
	for i := range conns {
		nc := dial(t, r.addr)
		wg.Go(func() {
			start := time.Now()
			nc.SetWriteDeadline(start.Add(30 * time.Second))
			_, err := nc.Write(binary.BigEndian.AppendUint32(nil, announced))
			chunk := make([]byte, 64<<10)
			n := 0
			for err == nil && n < send {
				var w int
				w, err = nc.Write(chunk)
				n += w
			}
			results[i] = result{n, err, time.Since(start)}
		})
	}
	wg.Wait()
	during := heapAfterGC()

	for i, res := range results {
		if res.err == nil || res.sent >= send {
			t.Errorf("connection %d sent %d bytes of its 100 MiB frame (err %v); it must be closed at the frame's size", i, res.sent, res.err)
		} else if res.took > 5*time.Second {
			t.Errorf("connection %d was closed only after %s", i, res.took)
		}
	}
	grew := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap after GC: alloc %d -> %d MiB, in use %d -> %d MiB", before.HeapAlloc>>20, during.HeapAlloc>>20, before.HeapInuse>>20, during.HeapInuse>>20)
	if grew > 10<<20 {
		t.Errorf("the heap grew by %d MiB while the connections were open; want < 10 MiB", grew>>20)
	}
	if n := testutil.ToFloat64(r.s.guard.closed.WithLabelValues("preauth_frame_size")); n != conns {
		t.Errorf("closed for pre-auth frame size: %v, want %d", n, conns)
	}

	// Announcing the largest frame allowed before authentication, and
	// sending nothing of it, costs only the connection: a small read
	// buffer, no frame buffer.
	const silent = 200
	for range silent {
		nc := dial(t, r.addr)
		if _, err := nc.Write(binary.BigEndian.AppendUint32(nil, uint32(DefaultConnLimits().MaxPreAuthRequestBytes))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // read by now
	after := heapAfterGC()
	if per := (int64(after.HeapAlloc) - int64(during.HeapAlloc)) / silent; per > 16<<10 {
		t.Errorf("a silent unauthenticated connection holds %d KiB of heap; want < 16 KiB", per>>10)
	}
	// The SASL exchange still gets its frames.
	if _, err := roundTrip(dial(t, r.addr), kmsg.NewPtrApiVersionsRequest(), 3, 10*time.Second); err != nil {
		t.Fatalf("ApiVersions before authentication: %v", err)
	}
}

// TestGuardRequestMemory: after authentication a frame's size is taken
// from the broker's request-memory budget before it is read; a connection
// whose frame does not fit waits without reading, is served once the
// budget is given back, and a draining broker ends the wait at once.
func TestGuardRequestMemory(t *testing.T) {
	const budget = 1 << 20
	r := startRig(t, rigOptions{config: func(c *Config) {
		c.Conn.QueuedMaxRequestBytes, c.ShutdownTimeout = budget, 30*time.Second
	}})
	// A holds the whole budget with a frame it sends half of.
	a := dial(t, r.addr)
	if _, err := a.Write(binary.BigEndian.AppendUint32(nil, budget)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(make([]byte, budget/2)); err != nil {
		t.Fatal(err)
	}
	held := func() float64 { return testutil.ToFloat64(r.s.guard.held) }
	waitHeld := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); held() != budget; {
			if time.Now().After(deadline) {
				t.Fatalf("request memory held: %v, want %d", held(), budget)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitHeld()
	// B's small request waits for the budget.
	b := dial(t, r.addr)
	if _, err := roundTrip(b, kmsg.NewPtrApiVersionsRequest(), 3, time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a request was served while the budget was taken (err %v)", err)
	}
	// A's frame completes (a malformed body: A is closed); B is served.
	if _, err := a.Write(make([]byte, budget/2)); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(b, size[:]); err != nil {
		t.Fatalf("the waiting request was not served once the budget was free: %v", err)
	}
	if h := held(); h != 0 {
		t.Fatalf("request memory held after both were handled: %v", h)
	}

	// C holds the budget again, D waits; shutting down does not wait for
	// either beyond its drain.
	c := dial(t, r.addr)
	if _, err := c.Write(binary.BigEndian.AppendUint32(nil, budget)); err != nil {
		t.Fatal(err)
	}
	waitHeld() // C's size was read and taken before D asks
	d := dial(t, r.addr)
	if _, err := roundTrip(d, kmsg.NewPtrApiVersionsRequest(), 3, time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a request was served while the budget was taken (err %v)", err)
	}
	start := time.Now()
	r.stop()
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("shutdown took %s with a connection waiting for request memory", took)
	}
}

// TestGuardRequestMemoryHangup: a connection waiting for request memory
// stops waiting when its client hangs up, with its frame sent whole or
// with more of it unread than the connection's read buffer: it leaves the
// queue holding nothing, so the budget's holder keeps it, the next
// connection is served once it is free, and nothing stays held.
func TestGuardRequestMemoryHangup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("hungUp needs poll(2)'s POLLRDHUP")
	}
	const budget = 1 << 20
	r := startRig(t, rigOptions{config: func(c *Config) { c.Conn.QueuedMaxRequestBytes = budget }})
	held := func() float64 { return testutil.ToFloat64(r.s.guard.held) }
	open := func() float64 { return testutil.ToFloat64(r.s.met.connections) }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		poll.Until(t, 5*time.Second, what, func() error {
			if ok() {
				return nil
			}
			return fmt.Errorf("open connections %v, request memory held %v", open(), held())
		})
	}
	// A holds the whole budget with a frame it sends half of.
	a := dial(t, r.addr)
	if _, err := a.Write(binary.BigEndian.AppendUint32(nil, budget)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(make([]byte, budget/2)); err != nil {
		t.Fatal(err)
	}
	waitFor("A holds the budget", func() bool { return held() == budget })

	for _, tc := range []struct {
		name string
		send func(net.Conn) error
	}{
		{"a whole request", func(nc net.Conn) error {
			frame := frameFor(kmsg.NewPtrApiVersionsRequest(), 3)
			_, err := nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...))
			return err
		}},
		// More than the read buffer takes, but little enough for the
		// broker's socket buffer: a FIN queued behind bytes the broker's
		// kernel has not received yet cannot be seen by any means.
		{"more than the read buffer", func(nc net.Conn) error {
			nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, err := nc.Write(append(binary.BigEndian.AppendUint32(nil, budget/2), make([]byte, readBuffer+16<<10)...))
			return err
		}},
	} {
		waitFor("only A's connection is open", func() bool { return open() == 1 })
		b := dial(t, r.addr)
		if err := tc.send(b); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		waitFor(tc.name+": B is open and waiting", func() bool { return open() == 2 })
		time.Sleep(2 * hangupPoll) // B is in the queue, not just accepted
		if h := held(); h != budget {
			t.Fatalf("%s: request memory held %v while A held the budget and B waited", tc.name, h)
		}
		b.Close()
		waitFor(tc.name+": B's connection ends when its client hangs up", func() bool { return open() == 1 })
		if h := held(); h != budget {
			t.Fatalf("%s: request memory held %v after B hung up; want A's %d alone", tc.name, h, budget)
		}
	}

	// A's frame completes (a malformed body: A is closed); C is served at
	// once, ahead of no ghost, and nothing stays held.
	if _, err := a.Write(make([]byte, budget/2)); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(dial(t, r.addr), kmsg.NewPtrApiVersionsRequest(), 3, 10*time.Second); err != nil {
		t.Fatalf("a request after the budget was freed: %v", err)
	}
	waitFor("no request memory held", func() bool { return held() == 0 })
}

// TestGuardFileLimit: with the process's open-file limit reached, a new
// connection is not served and the accept loop waits (counting EMFILE)
// instead of ending the broker; once descriptors are free again the
// pending connection is served and a kgo client produces and consumes.
func TestGuardFileLimit(t *testing.T) {
	r := startRig(t, rigOptions{placement: true})
	cl := r.client(t, kgo.DefaultProduceTopic("fds"), kgo.ConsumeTopics("fds"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, "fds"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatalf("produce before: %v", err)
	}

	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	low := orig
	low.Cur = uint64(len(fds) + 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var fillers []*os.File
	release := func() {
		for _, f := range fillers {
			f.Close()
		}
		fillers = nil
	}
	t.Cleanup(func() {
		release()
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Errorf("restore the open-file limit: %v", err)
		}
	})
	// Take every descriptor but one, then dial with that one: the
	// client's side gets it, the broker's accept gets EMFILE.
	fill := func() {
		for {
			f, err := os.Open(os.DevNull)
			if err != nil {
				if !errors.Is(err, syscall.EMFILE) {
					t.Fatal(err)
				}
				return
			}
			fillers = append(fillers, f)
		}
	}
	fill()
	var pending net.Conn
	for range 5 {
		fillers[len(fillers)-1].Close()
		fillers = fillers[:len(fillers)-1]
		if pending, err = net.DialTimeout("tcp", r.addr, 5*time.Second); err == nil {
			break
		}
		fill() // another goroutine took the descriptor
	}
	if pending == nil {
		release()
		t.Fatalf("could not dial at the limit: %v", err)
	}
	defer pending.Close()
	emfile := r.s.guard.acceptErrs.WithLabelValues("EMFILE")
	if _, err := roundTrip(pending, kmsg.NewPtrApiVersionsRequest(), 3, 1500*time.Millisecond); err == nil {
		release()
		t.Fatal("a connection past the open-file limit was served")
	}
	if testutil.ToFloat64(emfile) == 0 {
		release()
		t.Fatal("no EMFILE counted while the limit was reached")
	}

	release()
	// The pending connection is accepted once the back-off (at most a
	// second) ends; its request was sent already.
	pending.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(pending, size[:]); err != nil {
		t.Fatalf("the pending connection was not served once descriptors were free: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after: %v", err)
	}
	var got []string
	for len(got) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 2 || got[0] != "before" || got[1] != "after" {
		t.Fatalf("consumed %q, want [before after]", got)
	}
}

// TestPanicClosesOnlyItsConnection: a panic in a handler, in an acks=all
// produce's deferred wait and in the writer each close their own
// connection, are counted by API, and never stop the broker: a client on
// another connection keeps producing and fetching throughout.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	var poisoned sync.Map // client address -> stage to panic at
	r := startRig(t, rigOptions{placement: true, hook: func(stage string, c *conn) {
		if at, ok := poisoned.Load(c.nc.RemoteAddr().String()); ok && at == stage {
			panic("injected at " + stage)
		}
	}})
	cl := r.client(t, kgo.DefaultProduceTopic("steady"), kgo.ConsumeTopics("steady"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, "steady"); err != nil {
		t.Fatal(err)
	}

	// A steady client produces and consumes all along.
	var (
		mu       sync.Mutex
		produced int
		failures []error
	)
	steadyCtx, stopSteady := context.WithCancel(ctx)
	var steady sync.WaitGroup
	steady.Go(func() {
		for steadyCtx.Err() == nil {
			err := cl.ProduceSync(steadyCtx, &kgo.Record{Value: []byte("x")}).FirstErr()
			mu.Lock()
			if err == nil {
				produced++
			} else if steadyCtx.Err() == nil {
				failures = append(failures, err)
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	})

	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 10000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "steady"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = batchtest.Build(batchtest.Spec{N: 1, Value: []byte("poison"), ProducerID: -1})
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	for _, tc := range []struct {
		stage, api string
		req        kmsg.Request
		version    int16
	}{
		{"handle", "Metadata", kmsg.NewPtrMetadataRequest(), 12},
		{"deferred", "Produce", produce, 9},
		{"write", "unknown", kmsg.NewPtrApiVersionsRequest(), 3},
	} {
		t.Run(tc.stage, func(t *testing.T) {
			nc := dial(t, r.addr)
			// The same request on a healthy connection is served.
			if _, err := roundTrip(dial(t, r.addr), tc.req, tc.version, 30*time.Second); err != nil {
				t.Fatalf("healthy %s: %v", tc.api, err)
			}
			poisoned.Store(nc.LocalAddr().String(), tc.stage)
			if body, err := roundTrip(nc, tc.req, tc.version, 30*time.Second); err == nil {
				t.Fatalf("poisoned %s answered (%d bytes); its connection must close", tc.api, len(body))
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("poisoned %s: connection neither answered nor closed", tc.api)
			}
			if n := testutil.ToFloat64(r.s.guard.panics.WithLabelValues(tc.api)); n != 1 {
				t.Fatalf("panics counted for %s: %v, want 1", tc.api, n)
			}
		})
	}

	time.Sleep(300 * time.Millisecond)
	stopSteady()
	steady.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 || produced == 0 {
		t.Fatalf("the steady client produced %d records, failures: %v", produced, failures)
	}
	// Everything acknowledged (and the poisoned acks=all batch, which was
	// appended before its wait panicked) is there to fetch.
	n := 0
	for n < produced && ctx.Err() == nil {
		n += cl.PollFetches(ctx).NumRecords()
	}
	if n < produced {
		t.Fatalf("fetched %d of %d records", n, produced)
	}
	if c := testutil.ToFloat64(r.s.guard.closed.WithLabelValues("panic")); c != 3 {
		t.Fatalf("connections closed for a panic: %v, want 3", c)
	}
}
