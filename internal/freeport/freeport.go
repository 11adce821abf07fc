// Package freeport picks TCP ports on 127.0.0.1 for servers that tests and
// `eddy dev` start a little later, in other processes.
//
// The ports come from 20000-32000, below Linux's ephemeral range (32768 and
// up by default). A port the kernel hands out for ":0" is ephemeral: once
// the probe closes it, any outgoing connection on the machine may take it
// as its local port before the server binds it, and on a busy test machine
// that happens. A port below the range is only taken by someone who asks
// for it by number. Each pick is random and checked by listening on it, so
// concurrent test processes rarely collide.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
)

const (
	low  = 20000
	high = 32000
)

// ErrNone is returned when no free port (or block) was found.
var ErrNone = errors.New("freeport: no free port found")

// One returns a free port.
func One() (int, error) { return Base(0) }

// Base returns a port b such that b+off is free for every off in offsets
// (for example 0, 1, 2 for three consecutive ports). Offsets must be
// non-negative and below 2000.
func Base(offsets ...int) (int, error) {
	if len(offsets) == 0 {
		offsets = []int{0}
	}
	span := 0
	for _, off := range offsets {
		if off < 0 || off >= 2000 {
			return 0, errors.New("freeport: offset out of range: " + strconv.Itoa(off))
		}
		span = max(span, off)
	}
	for range 200 {
		b := low + rand.IntN(high-low-span)
		if allFree(b, offsets) {
			return b, nil
		}
	}
	return 0, ErrNone
}

func allFree(base int, offsets []int) bool {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for _, off := range offsets {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+off)))
		if err != nil {
			return false
		}
		held = append(held, l)
	}
	return true
}
