package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-streams/eddy/data-plane/quota"
	"github.com/eddy-streams/eddy/data-plane/sasl"
	"github.com/eddy-streams/eddy/data-plane/share"
	"github.com/eddy-streams/eddy/internal/kbound"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. Requests are read, handled and answered
// one at a time, in order (Kafka mutes a connection while a request is in
// progress, and clients rely on in-order responses).
type conn struct {
	s        *Server
	nc       net.Conn
	br       *bufio.Reader
	stopping atomic.Bool
	ctx      context.Context
	cancel   context.CancelFunc

	// cluster is the virtual cluster this connection acts in: fixed by
	// authentication, or the anonymous cluster when that is enabled.
	cluster  string
	clientID string
	// The client's zone (zone.go): hinted in client.id, and the
	// client.rack of its last Fetch. Reader goroutine only.
	idZone, rackZone string
	idZoneParsed     bool
	host             string // the client's IP address, as ACLs name hosts
	reqKey           int16  // API key of the request being handled (audit logs)

	// shareSessions are the share sessions opened on this connection
	// (78_share_fetch.go), closed with it.
	shareSessions map[share.SessionKey]uint64

	// The principal's grants (authz.go), kept while valid.
	grantsRef *grantsEntry
	grantsFor string
	// Authorization audit state (authz.go).
	denialWindow    time.Time
	denialsLogged   int
	denialsUnlogged int

	// SASL state (sasl.go). Handlers run one at a time per connection, so
	// these need no lock.
	authenticated bool
	mechanism     string
	rawSASL       bool           // SaslHandshake v0: the next frame is a raw SASL message
	exchange      *sasl.Exchange // SASL exchange under way (SCRAM takes two messages)
	principal     *sasl.Principal
	expires       time.Time // session end (KIP-368); zero: none
	closeAfter    bool      // close once the current response is written

	// cred is principal for other goroutines: revocation (revoke.go)
	// closes the connections whose credential was deleted.
	cred atomic.Pointer[sasl.Principal]

	usage connMeter // usage metering for billing (metering.go)

	// deferred, set by a handler, is work its response must wait for
	// (acks=all commits); it runs off the reader goroutine (see serve).
	deferred func()

	load quota.Conn // per-cluster load counters and quota state

	guard connGuard // limits and deadlines (guard.go)
}

func (s *Server) newConn(nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		s: s, nc: nc, // br: set by startGuard
		ctx: ctx, cancel: cancel, host: remoteHost(nc),
		cluster:       s.cfg.AnonymousCluster,
		authenticated: s.cfg.AnonymousCluster != "",
		shareSessions: map[share.SessionKey]uint64{},
	}
	c.startGuard()
	return c
}

// stopReading makes the connection finish its current request and close.
func (c *conn) stopReading() {
	c.stopping.Store(true)
	c.guard.stopWait()
	c.nc.SetReadDeadline(time.Now())
}

// closeDiscard bounds how long, and how much, a draining connection reads
// and discards after its last response (see close).
const (
	closeDiscardFor   = 100 * time.Millisecond
	closeDiscardBytes = 1 << 20
)

// close ends the connection once serve is done with it. A connection
// stopped by a drain (stopReading) closes gracefully: its responses are
// all written by now, so it sends FIN, then reads and discards what the
// client had already sent (pipelined requests it will resend) for a
// moment before it closes. Closing a socket with unread bytes in its
// receive buffer sends RST instead, and a client that gets RST may lose
// responses it had not read yet: kgo then resends requests the broker
// had answered and waits out a metadata retry backoff.
func (c *conn) close() {
	if c.stopping.Load() {
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			c.nc.SetReadDeadline(time.Now().Add(closeDiscardFor))
			io.Copy(io.Discard, io.LimitReader(c.nc, closeDiscardBytes))
		}
	}
	c.nc.Close()
}

// errBadRequest means the frame or header could not be parsed; Kafka closes
// the connection in that case.
var errBadRequest = errors.New("broker: malformed request")

func (c *conn) serve() {
	defer c.close()
	defer c.cancel()
	c.s.met.connections.Inc()
	defer c.s.met.connections.Dec()
	defer c.load.Close()
	defer func() {
		for k, id := range c.shareSessions {
			c.s.shares.CloseIf(k, id)
		}
	}()
	log := c.s.log.With("remote", c.nc.RemoteAddr().String())

	// Requests are decoded and handled one at a time, in order, here; but
	// an acks=all produce, once its batches are appended, waits for its
	// commit on a goroutine of its own, so the client's next pipelined
	// requests (kgo keeps up to five produce requests in flight) are
	// appended meanwhile instead of each waiting for a flush of its own.
	// Replies are futures queued in request order; the writer sends each
	// when it is ready, so responses keep Kafka's ordering.
	replies := make(chan chan []byte, maxPipelined)
	writerDone := make(chan struct{})
	go c.writeLoop(replies, writerDone)
	var waits sync.WaitGroup
	defer func() {
		close(replies)
		<-writerDone
		waits.Wait()
	}()
	defer c.releaseFrame()
	// A panic in a handler closes this connection only (guard.go).
	defer func() {
		if r := recover(); r != nil {
			c.recovered(r, c.apiName(), c.clientID)
		}
	}()

	for !c.stopping.Load() && c.ctx.Err() == nil {
		c.load.WaitMuted(c.ctx, &c.stopping) // throttled by a quota
		buf, err := c.nextFrame(log)         // within the connection's limits (guard.go)
		if err != nil {
			return
		}
		size := len(buf)
		c.s.met.bytesIn.Add(float64(size + 4))
		c.load.Request(c.s.meter, c.cluster, size+4)
		c.meterIn(int64(size) + 4)
		var (
			out   []byte
			later func() []byte
		)
		if c.rawSASL {
			out, err = c.handleRawSASL(buf)
		} else {
			out, later, err = c.handle(buf)
		}
		c.releaseFrame()
		c.meterAttach(buf)
		if err != nil {
			log.Info("closing connection", "err", err, "client_id", c.clientID)
			return
		}
		if out == nil && later == nil {
			continue // acks=0: no response
		}
		fut := make(chan []byte, 1)
		select {
		case replies <- fut:
		case <-c.ctx.Done():
			return
		}
		if later != nil {
			waits.Add(1)
			api, clientID := c.apiName(), c.clientID
			go func() {
				defer waits.Done()
				defer func() {
					if r := recover(); r != nil {
						c.recovered(r, api, clientID)
						fut <- nil // the writer stops at it
					}
				}()
				c.hookAt("deferred")
				fut <- later()
			}()
		} else {
			fut <- out
		}
		if c.closeAfter {
			return
		}
	}
}

// maxPipelined bounds the responses a connection may owe at once; the
// reader stops reading further requests until the oldest is sent.
const maxPipelined = 16

// writeLoop sends replies in order until the queue is closed. After a
// write error it cancels the connection (ending waits) and keeps draining,
// so no reply goroutine is left blocked.
func (c *conn) writeLoop(replies <-chan chan []byte, done chan<- struct{}) {
	defer close(done)
	// After a panic the reader stops (the connection is cancelled) and
	// the waiters' futures are buffered: nobody blocks on this loop.
	defer func() {
		if r := recover(); r != nil {
			c.recovered(r, "", "")
		}
	}()
	failed := false
	for fut := range replies {
		out := <-fut
		if failed || out == nil { // nil: its waiter panicked
			failed = true
			continue
		}
		c.hookAt("write")
		c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.nc.Write(out); err != nil {
			failed = true
			c.cancel()
			c.nc.Close()
			continue
		}
		c.s.met.bytesOut.Add(float64(len(out)))
		c.load.Response(len(out))
		c.meterOut(int64(len(out)))
	}
}

// request is a decoded request frame.
type request struct {
	key, version int16
	corr         int32
	clientID     *string
	req          kmsg.Request // nil when the version is unsupported (ApiVersions only)
	body         []byte       // what decodeBody decodes into req
}

// decodeRequest parses a request frame (without its size prefix). An
// error means the frame is malformed or names an API or version this
// broker does not serve; Kafka closes the connection then. The one
// exception is ApiVersions at an unsupported version: it decodes with a
// nil req so the caller can answer UNSUPPORTED_VERSION (KIP-511).
func decodeRequest(buf []byte) (request, error) {
	rq, err := decodeHeader(buf)
	if err != nil || rq.req == nil {
		return rq, err
	}
	return rq, rq.decodeBody()
}

// decodeHeader parses a frame's request header and checks that the API
// and version are served; the body is left for decodeBody, so that a
// request the connection may not send is refused before it is decoded.
func decodeHeader(buf []byte) (request, error) {
	r := kbin.Reader{Src: buf}
	rq := request{key: r.Int16(), version: r.Int16(), corr: r.Int32()}
	rq.clientID = r.NullableString()
	if err := r.Complete(); err != nil {
		return rq, fmt.Errorf("%w: header: %v", errBadRequest, err)
	}
	a, known := apis[rq.key]
	req := kmsg.RequestForKey(rq.key)
	if !known || req == nil {
		return rq, fmt.Errorf("%w: unsupported api key %d", errBadRequest, rq.key)
	}
	if rq.version < a.min || rq.version > a.max {
		if rq.key == apiVersionsKey {
			return rq, nil
		}
		return rq, fmt.Errorf("%w: %s v%d is not supported (v%d-v%d)", errBadRequest, kmsg.NameForKey(rq.key), rq.version, a.min, a.max)
	}
	req.SetVersion(rq.version)
	if req.IsFlexible() {
		if err := kbound.SkipTags(&r); err != nil {
			return rq, fmt.Errorf("%w: header tags: %v", errBadRequest, err)
		}
	}
	rq.req, rq.body = req, r.Src
	return rq, nil
}

// decodeBody decodes the request's body into rq.req, once its lengths
// passed kbound's limits.
func (rq *request) decodeBody() error {
	if err := kbound.Check(rq.key, rq.version, rq.body); err != nil {
		return fmt.Errorf("%w: %s v%d: %v", errBadRequest, kmsg.NameForKey(rq.key), rq.version, err)
	}
	if err := rq.req.ReadFrom(rq.body); err != nil {
		return fmt.Errorf("%w: %s v%d: %v", errBadRequest, kmsg.NameForKey(rq.key), rq.version, err)
	}
	return nil
}

// handle decodes one request and runs its handler. It returns the encoded
// response frame, or — for a handler that left work to wait for (an
// acks=all produce sets c.deferred) — a func that waits and then encodes
// it; both are nil when no response is due (acks=0).
func (c *conn) handle(buf []byte) (out []byte, later func() []byte, err error) {
	rq, err := decodeHeader(buf)
	if err != nil {
		return nil, nil, err
	}
	if rq.clientID != nil {
		c.setClientID(*rq.clientID)
	}
	if rq.req == nil {
		return c.frame(rq.corr, apiVersionsKey, unsupportedAPIVersions()), nil, nil
	}
	// Before decoding: an unauthenticated client gets no decoder to work
	// on but those of the SASL exchange.
	if err := c.admit(rq.key); err != nil {
		return nil, nil, err
	}
	if err := rq.decodeBody(); err != nil {
		return nil, nil, err
	}
	start := time.Now()
	c.reqKey = rq.key
	c.hookAt("handle")
	resp, err := apis[rq.key].handle(c.s, c, rq.req)
	if err != nil {
		c.s.met.observe(rq.key, start, err)
		return nil, nil, err
	}
	c.auditRequest(rq.req, resp)
	wait := c.deferred
	c.deferred = nil
	delay, err := c.s.quotas.Charge(&c.load, rq.key, len(buf)+4, resp)
	if err != nil {
		return nil, nil, err
	}
	if delay > 0 {
		wait = quota.Delayed(c.ctx, wait, delay)
	}
	if resp == nil {
		c.s.met.observe(rq.key, start, nil)
		return nil, nil, nil
	}
	resp.SetVersion(rq.version)
	if wait != nil {
		return nil, func() []byte {
			wait()
			c.s.met.observe(rq.key, start, nil)
			return c.frame(rq.corr, rq.key, resp)
		}, nil
	}
	c.s.met.observe(rq.key, start, nil)
	return c.frame(rq.corr, rq.key, resp), nil, nil
}

// saslKeys are what an unauthenticated connection may send.
var saslKeys = map[int16]bool{apiVersionsKey: true, 17: true, 36: true}

// admit refuses requests before authentication and after the session
// lifetime ran out (KIP-368); Kafka closes the connection in both cases.
func (c *conn) admit(key int16) error {
	if saslKeys[key] {
		return nil
	}
	if !c.authenticated {
		return fmt.Errorf("%w: %s before authentication", errBadRequest, kmsg.NameForKey(key))
	}
	if !c.expires.IsZero() && time.Now().After(c.expires) {
		return fmt.Errorf("%w: the session expired without re-authentication", errBadRequest)
	}
	return nil
}

// frame encodes a response with its size and header. ApiVersions always
// uses response header v0 (no tagged fields), whatever its version.
func (c *conn) frame(corr int32, key int16, resp kmsg.Response) []byte {
	out := make([]byte, 4, frameSizeHint(resp))
	out = kbin.AppendInt32(out, corr)
	if resp.IsFlexible() && key != apiVersionsKey {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// frameSizeHint is a capacity for resp's frame: for a fetch, its record
// bytes plus room for the rest, so that encoding it copies the records
// once instead of regrowing the frame partition after partition.
func frameSizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 256
	}
	n := 256
	for _, t := range f.Topics {
		n += 64 + len(t.Topic)
		for _, p := range t.Partitions {
			n += 96 + len(p.RecordBatches) + 24*len(p.AbortedTransactions)
		}
	}
	return n
}
