package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDrainClosesGracefully: a connection a drain stops while its client
// has pipelined requests the broker will not read gets the response to
// the request in progress and then an orderly end of stream (FIN). Closing
// with the unread requests still buffered would send a reset instead, and
// a client that gets one may lose responses it had not read yet.
func TestDrainClosesGracefully(t *testing.T) {
	var (
		ours    atomic.Value // the test connection's local address
		held    = make(chan *conn, 1)
		release = make(chan struct{})
		once    sync.Once
	)
	r := startRig(t, rigOptions{hook: func(stage string, c *conn) {
		if stage != "handle" || c.nc.RemoteAddr().String() != ours.Load() {
			return
		}
		once.Do(func() { held <- c; <-release })
	}})
	nc := dial(t, r.addr)
	ours.Store(nc.LocalAddr().String())
	body := frameFor(kmsg.NewPtrApiVersionsRequest(), 3)
	frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	c := <-held // its handler waits in the hook
	if _, err := nc.Write(bytes.Repeat(frame, 4)); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { r.stop(); close(stopped) }()
	for deadline := time.Now().Add(30 * time.Second); !c.stopping.Load(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the drain did not stop the connection within 30s")
		}
	}
	close(release)

	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatalf("the response to the request in progress was lost: %v", err)
	}
	if _, err := io.ReadFull(nc, make([]byte, binary.BigEndian.Uint32(size[:]))); err != nil {
		t.Fatalf("the response to the request in progress was cut: %v", err)
	}
	_, err := nc.Read(make([]byte, 1))
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("after its last response the connection was reset, not closed: %v", err)
	case !errors.Is(err, io.EOF):
		t.Fatalf("after its last response: %v, want EOF", err)
	}
	<-stopped
}
