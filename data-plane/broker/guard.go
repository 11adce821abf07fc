package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/semaphore"
)

// The connection guard keeps a broker serving while clients misbehave
// (ConnLimits; docs/security.md has the threat model):
//
//   - at accept, a connection over the broker's, its address's or the
//     creation-rate limit is closed at once and counted;
//   - before authentication a frame may be at most MaxPreAuthRequestBytes
//     and its buffer grows only as its bytes arrive, so announcing a size
//     costs nothing; the connection must authenticate by AuthTimeout;
//   - after authentication a frame's announced size is taken from the
//     broker's request-memory budget (QueuedMaxRequestBytes) before it is
//     allocated, and given back when its handler returned; a connection
//     that waits for budget does not read, so its client is slowed, and
//     stops waiting, holding nothing, if its client hangs up meanwhile;
//   - a connection that sent no request for MaxIdle is closed;
//   - a panic in a request's handler, its deferred wait or the writer
//     closes that connection only;
//   - accept errors that mean "out of file descriptors" are waited out.
type guard struct {
	lim ConnLimits
	log *slog.Logger
	mem *semaphore.Weighted

	mu     sync.Mutex
	open   int
	perIP  map[string]int
	tokens float64 // creation-rate bucket, refilled at lim.MaxConnectionCreationRate/s
	filled time.Time

	// Accept errors are logged at most once per acceptLogEvery; only the
	// accept goroutine touches these.
	acceptLogged     time.Time
	acceptSuppressed int

	// hook, set only by in-package tests before Serve, runs at each
	// stage of a request ("handle", "deferred", "write") to inject faults.
	hook func(stage string, c *conn)

	refused, closed, panics, acceptErrs *prometheus.CounterVec
	held                                prometheus.Gauge
}

const acceptLogEvery = 10 * time.Second

func newGuard(lim ConnLimits, log *slog.Logger, reg prometheus.Registerer, loginBackoffs func() float64) *guard {
	g := &guard{
		lim: lim, log: log, perIP: map[string]int{},
		mem:    semaphore.NewWeighted(lim.QueuedMaxRequestBytes),
		tokens: float64(lim.MaxConnectionCreationRate),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_broker_connections_refused_total", Help: "New connections closed at accept, by limit (max_connections, per_ip, creation_rate)."},
			[]string{"reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_broker_connections_closed_total", Help: "Connections closed by a limit, by reason (auth_timeout, idle, preauth_frame_size, panic)."},
			[]string{"reason"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_broker_request_panics_total", Help: "Panics while serving a request (its connection was closed), by API."},
			[]string{"api"}),
		acceptErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_broker_accept_errors_total", Help: "Accept errors waited out (out of file descriptors or memory), by errno."},
			[]string{"errno"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_broker_queued_request_bytes", Help: "Request bytes held in memory by authenticated connections (bounded by --queued-max-request-bytes)."}),
	}
	if reg != nil {
		reg.MustRegister(g.refused, g.closed, g.panics, g.acceptErrs, g.held,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "eddy_broker_auth_backoff_addresses",
				Help: "Source addresses whose logins are answered after a delay because they recently failed to authenticate."},
				loginBackoffs))
	}
	return g
}

// ipKey is the form connections are counted under per address: an IPv4
// address itself, an IPv6 address's /64. A host is given a /64 (RFC 6177,
// and every cloud hands out at least one), so one client may draw on 2^64
// addresses; counting them apart would make --max-connections-per-ip no
// limit at all against IPv6 clients.
func ipKey(host string) string {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}

// admit decides at accept whether a connection from host may stay. A
// refused one is counted; the caller closes it. An admitted one must be
// given back with leave when it closes.
func (g *guard) admit(host string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	perIP, ok := g.lim.PerIPOverrides[host]
	if !ok {
		perIP = g.lim.MaxConnectionsPerIP
	}
	reason := ""
	switch {
	case g.open >= g.lim.MaxConnections:
		reason = "max_connections"
	case g.perIP[host] >= perIP:
		reason = "per_ip"
	default:
		// Refused connections do not draw on the bucket: only the
		// connections the broker takes on count towards the rate.
		rate := float64(g.lim.MaxConnectionCreationRate)
		g.tokens = min(rate, g.tokens+now.Sub(g.filled).Seconds()*rate)
		g.filled = now
		if g.tokens < 1 {
			reason = "creation_rate"
		}
	}
	if reason != "" {
		g.refused.WithLabelValues(reason).Inc()
		return false
	}
	g.tokens--
	g.open++
	g.perIP[host]++
	return true
}

func (g *guard) leave(host string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open--
	if g.perIP[host]--; g.perIP[host] <= 0 {
		delete(g.perIP, host)
	}
}

// acceptFailed decides whether an accept error is waited out: timeouts and
// running out of file descriptors or kernel memory are (connections that
// close free them), anything else ends the broker. It returns the next
// back-off: 5 ms doubling up to a second.
func (g *guard) acceptFailed(err error, delay time.Duration) (time.Duration, bool) {
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	var errno syscall.Errno
	exhausted := errors.As(err, &errno) && slices.Contains([]syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM}, errno)
	if !timeout && !exhausted {
		return 0, false
	}
	delay = min(max(2*delay, 5*time.Millisecond), time.Second)
	if exhausted {
		g.acceptErrs.WithLabelValues(errnoName(errno)).Inc()
		if since := time.Since(g.acceptLogged); since >= acceptLogEvery {
			g.log.Error("accept failing; retrying", "err", err, "retry_in", delay, "suppressed", g.acceptSuppressed)
			g.acceptLogged, g.acceptSuppressed = time.Now(), 0
		} else {
			g.acceptSuppressed++
		}
	}
	return delay, true
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EMFILE:
		return "EMFILE"
	case syscall.ENFILE:
		return "ENFILE"
	case syscall.ENOBUFS:
		return "ENOBUFS"
	case syscall.ENOMEM:
		return "ENOMEM"
	}
	return e.Error()
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// connGuard is a connection's share of the guard.
type connGuard struct {
	ipKey    string
	authBy   time.Time          // deadline for authenticating
	waitCtx  context.Context    // ends a wait for request memory
	stopWait context.CancelFunc // on stopReading or when the connection ends
	held     int64              // request memory held for the frame being handled
}

// A connection reads through a small buffer until it authenticated, so
// that one that never does costs little; then through a large one.
const preAuthReadBuffer, readBuffer = 4 << 10, 64 << 10

func (c *conn) startGuard() {
	size := readBuffer
	if !c.authenticated {
		size = preAuthReadBuffer
	}
	c.br = bufio.NewReaderSize(c.nc, size)
	c.guard.authBy = time.Now().Add(c.s.cfg.Conn.AuthTimeout)
	c.guard.waitCtx, c.guard.stopWait = context.WithCancel(c.ctx)
}

// armRead sets the read deadline for the next frame: the authentication
// deadline until the connection authenticated, then the idle timeout.
func (c *conn) armRead() {
	if !c.authenticated {
		c.nc.SetReadDeadline(c.guard.authBy)
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.Conn.MaxIdle))
}

// errStopped ends a connection quietly: the broker is draining, or the
// connection's deadline passed (already counted).
var errStopped = errors.New("broker: connection stopped")

// nextFrame reads the next request frame (without its size) within the
// connection's limits. After authentication the frame's size is held from
// the request-memory budget until releaseFrame.
func (c *conn) nextFrame(log *slog.Logger) ([]byte, error) {
	c.reqKey = -1
	if c.authenticated && c.br.Size() < readBuffer && c.br.Buffered() == 0 {
		c.br = bufio.NewReaderSize(c.nc, readBuffer) // nothing buffered is lost
	}
	c.armRead()
	// stopReading sets the stopping flag and then a past deadline: seen
	// here after arming, or its deadline comes after ours.
	if c.stopping.Load() {
		return nil, errStopped
	}
	var sizeBuf [4]byte
	if _, err := io.ReadFull(c.br, sizeBuf[:]); err != nil {
		return nil, c.readFailed(err)
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	if !c.authenticated {
		if size < 8 || int(size) > c.s.cfg.Conn.MaxPreAuthRequestBytes {
			c.s.guard.closed.WithLabelValues("preauth_frame_size").Inc()
			log.Debug("closing connection: frame too large before authentication", "size", size)
			return nil, errStopped
		}
		buf, err := readGrowing(c.br, int(size))
		if err != nil {
			return nil, c.readFailed(err)
		}
		return buf, nil
	}
	if size < 8 || int(size) > c.s.cfg.MaxRequestBytes {
		log.Info("closing connection: bad request size", "size", size)
		return nil, errStopped
	}
	// A frame larger than the whole budget waits until it is alone.
	n := min(int64(size), c.s.cfg.Conn.QueuedMaxRequestBytes)
	if err := c.acquireFrame(n); err != nil {
		log.Debug("closing connection: it stopped while waiting for request memory", "size", size, "err", err)
		return nil, errStopped
	}
	c.guard.held = n
	c.s.guard.held.Add(float64(n))
	// A fresh buffer per request: produced batches are retained
	// (pending flush, cache) without copying.
	buf := make([]byte, size)
	if _, err := io.ReadFull(c.br, buf); err != nil {
		return nil, c.readFailed(err)
	}
	return buf, nil
}

// hangupPoll is how often a connection waiting for request memory looks
// whether its client hung up.
const hangupPoll = 100 * time.Millisecond

// errHungUp ends a wait for request memory whose client went away.
var errHungUp = errors.New("broker: client hung up while waiting for request memory")

// acquireFrame takes n bytes of the request-memory budget, waiting until
// they fit (the semaphore is FIFO: a large frame is not overtaken by later
// small ones). The wait ends, holding nothing, when the connection is
// stopped or ends, or when its client hangs up: the connection does not
// read while it waits, so without looking it would keep its place in the
// queue ahead of live clients and then take budget it holds until reading
// its frame fails. A client that half-closes after sending is taken as
// gone, as Kafka's broker does on end of stream. A hang-up queued behind
// more of the frame than the socket's receive buffer holds cannot be seen
// until those bytes are read: such a client is noticed once it has the
// memory.
func (c *conn) acquireFrame(n int64) error {
	mem := c.s.guard.mem
	if mem.TryAcquire(n) {
		return nil
	}
	ctx, cancel := context.WithCancelCause(c.guard.waitCtx)
	defer cancel(nil)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			sleepCtx(ctx, hangupPoll)
			if ctx.Err() == nil && hungUp(c.nc) {
				cancel(errHungUp)
			}
		}
	}()
	err := mem.Acquire(ctx, n)
	cancel(nil)
	<-watched
	if err != nil {
		return context.Cause(ctx)
	}
	return nil
}

// releaseFrame gives back the request memory of the frame just handled.
func (c *conn) releaseFrame() {
	if n := c.guard.held; n > 0 {
		c.guard.held = 0
		c.s.guard.held.Sub(float64(n))
		c.s.guard.mem.Release(n)
	}
}

// readFailed classifies a failed read: a passed deadline is counted as an
// authentication timeout or idleness, unless the broker is draining.
func (c *conn) readFailed(err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.stopping.Load() {
		return err
	}
	reason := "idle"
	if !c.authenticated {
		reason = "auth_timeout"
	}
	c.s.guard.closed.WithLabelValues(reason).Inc()
	return errStopped
}

// readGrowing reads exactly size bytes, growing the buffer (doubling from
// 4 KiB) as they arrive, so that a client announcing a large frame holds
// only as much memory as it actually sent.
func readGrowing(r io.Reader, size int) ([]byte, error) {
	buf := make([]byte, 0, min(size, 4<<10))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(size, 2*cap(buf))-len(buf))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), size)])
		buf = buf[:len(buf)+n]
		if err != nil && len(buf) < size {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// hookAt runs the test hook, if any, at a stage of a request.
func (c *conn) hookAt(stage string) {
	if h := c.s.guard.hook; h != nil {
		h(stage, c)
	}
}

// recovered handles a panic recovered while serving a request of api (a
// kmsg API name, or "" when none is known) for clientID: it is logged with
// its stack and counted, and the connection is cut, so that the broker
// serves on. It may run on any of the connection's goroutines.
func (c *conn) recovered(r any, api, clientID string) {
	if api == "" || api == "Unknown" {
		api = "unknown"
	}
	c.s.guard.panics.WithLabelValues(api).Inc()
	c.s.guard.closed.WithLabelValues("panic").Inc()
	c.s.log.Error("panic while serving a request; closing its connection", "remote", c.nc.RemoteAddr().String(),
		"client_id", clientID, "api", api, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	c.cancel()
	c.nc.Close()
}

// apiName names the request the reader is handling, for panic reports.
func (c *conn) apiName() string { return kmsg.NameForKey(c.reqKey) }

// loginBackoffs counts the addresses whose next login is delayed
// (failedLogins, sasl.go): failures are counted per source address there,
// and exported as this one number because a label per address would let
// an attacker grow the metric without bound.
func (s *Server) loginBackoffs() float64 {
	s.failed.mu.Lock()
	hosts := make([]string, 0, len(s.failed.by))
	for h := range s.failed.by {
		hosts = append(hosts, h)
	}
	s.failed.mu.Unlock()
	n := 0
	for _, h := range hosts {
		if s.loginBackoff(h) > 0 {
			n++
		}
	}
	return float64(n)
}
