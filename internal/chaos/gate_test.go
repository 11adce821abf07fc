package chaos

import (
	"io"
	"net"
	"testing"
	"time"
)

func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn) error {
	c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	_, err := io.ReadFull(c, make([]byte, 4))
	return err
}

// A cut gate drops its connections and answers no new one until healed.
func TestGate(t *testing.T) {
	g, err := StartGate(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	before, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	if err := roundTrip(before); err != nil {
		t.Fatalf("through the gate: %v", err)
	}
	g.Cut()
	if err := roundTrip(before); err == nil {
		t.Fatal("a connection survived the cut")
	}
	during, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer during.Close()
	if err := roundTrip(during); err == nil {
		t.Fatal("a connection made while cut was answered")
	}
	g.Heal()
	after, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if err := roundTrip(after); err != nil {
		t.Fatalf("after healing: %v", err)
	}
}
