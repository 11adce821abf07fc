package broker

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// hungUp reports whether nc's client has closed or reset the connection,
// without reading from it: poll(2) with POLLRDHUP sees the client's FIN
// even while request bytes are still unread ahead of it, which a read would
// have to consume (and buffer) first. A connection whose descriptor is
// already closed counts as hung up.
func hungUp(nc net.Conn) bool {
	if w, ok := nc.(interface{ NetConn() net.Conn }); ok { // TLS
		nc = w.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	err = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		if n, err := unix.Poll(fds, 0); err == nil && n > 0 {
			gone = fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
		}
	})
	return gone || err != nil
}
