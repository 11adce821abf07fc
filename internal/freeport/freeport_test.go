package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestBase(t *testing.T) {
	b, err := Base(0, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if b < low || b+100 >= high {
		t.Fatalf("base %d outside [%d, %d)", b, low, high)
	}
	for _, off := range []int{0, 1, 100} {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(b+off))
		if err != nil {
			t.Fatalf("port %d is not free: %v", b+off, err)
		}
		l.Close()
	}
	if _, err := Base(-1); err == nil {
		t.Fatal("a negative offset was accepted")
	}
}

// TestBusyPortIsSkipped: a port someone listens on is never returned.
func TestBusyPortIsSkipped(t *testing.T) {
	for range 20 {
		p, err := One()
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if allFree(p, []int{0}) {
			t.Fatalf("port %d reported free while listened on", p)
		}
		// A block is free only if every port of it is.
		if allFree(p-1, []int{0, 1}) {
			t.Fatalf("block %d+{0,1} reported free while %d is listened on", p-1, p)
		}
	}
}
