package chaos

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Gate is a TCP proxy in front of Postgres for one broker, so that the
// nemesis can partition that broker from the database while clients still
// reach it: Cut drops every connection through the gate and black-holes
// new ones (accepted, never forwarded, as a SYN that is never answered
// looks to a client with a connect timeout) until Heal. Its methods are
// safe for concurrent use; Close stops its goroutines and waits for them.
type Gate struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	cut    bool
	closed bool
	conns  map[net.Conn]struct{} // both ends of every forwarded connection
	held   []net.Conn            // accepted while cut
	wg     sync.WaitGroup
}

// StartGate listens on a free loopback port and forwards to upstream.
func StartGate(upstream string) (*Gate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &Gate{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	g.wg.Go(g.accept)
	return g, nil
}

// Addr is the gate's host:port.
func (g *Gate) Addr() string { return g.ln.Addr().String() }

func (g *Gate) accept() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return // closed
		}
		g.mu.Lock()
		switch {
		case g.closed:
			c.Close()
		case g.cut:
			g.held = append(g.held, c)
		default:
			g.conns[c] = struct{}{}
			g.wg.Go(func() { g.forward(c) })
		}
		g.mu.Unlock()
	}
}

// forward pipes c to a new upstream connection until either side ends.
func (g *Gate) forward(c net.Conn) {
	defer g.drop(c)
	up, err := net.Dial("tcp", g.upstream)
	if err != nil {
		return
	}
	g.mu.Lock()
	if g.cut || g.closed {
		g.mu.Unlock()
		up.Close()
		return
	}
	g.conns[up] = struct{}{}
	g.mu.Unlock()
	defer g.drop(up)
	done := make(chan struct{})
	go func() { // ends when either connection closes, which drop ensures
		io.Copy(up, c)
		up.Close()
		close(done)
	}()
	io.Copy(c, up)
	c.Close()
	<-done
}

func (g *Gate) drop(c net.Conn) {
	c.Close()
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
}

// Cut drops every connection and holds new ones until Heal.
func (g *Gate) Cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cut = true
	for c := range g.conns {
		c.Close()
	}
}

// Heal closes the connections held while cut (their clients see a reset
// and reconnect) and forwards new ones again.
func (g *Gate) Heal() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cut = false
	for _, c := range g.held {
		c.Close()
	}
	g.held = nil
}

// Close stops the gate and waits for its goroutines.
func (g *Gate) Close() error {
	g.mu.Lock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
	for _, c := range g.held {
		c.Close()
	}
	g.held = nil
	g.mu.Unlock()
	err := g.ln.Close()
	g.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
