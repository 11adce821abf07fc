package broker

// Metering for billing: every request and response frame is counted as
// on the wire (size prefix included) for the connection's virtual cluster,
// through billing/meter (load.go counts the
// same frames for rates and quotas; this file counts them for invoices). Frames a connection exchanges before it
// authenticates (ApiVersions, SASL) are held on the connection and
// charged to the cluster it authenticates into; a connection that never
// authenticates is charged to nobody.

import (
	"context"
	"encoding/binary"
	"sync/atomic"

	billmeter "github.com/eddy-streams/eddy/billing/meter"
	"github.com/eddy-streams/eddy/internal/store"
)

// connMeter is a connection's link to its cluster's counter. The reader
// goroutine counts requests and attaches; the writer goroutine counts
// responses.
type connMeter struct {
	counter atomic.Pointer[billmeter.Counter]
	cluster string // the cluster attached to (reader goroutine only)
	// Counts from before authentication. Whoever sees both a counter and
	// a non-zero count here moves it, with Swap, so nothing is counted
	// twice or stranded.
	preIn, preOut, preReq atomic.Int64
}

// meterIn counts a request frame of n bytes.
func (c *conn) meterIn(n int64) {
	if ctr := c.usage.counter.Load(); ctr != nil {
		ctr.Add(n, 0)
		ctr.Request(1)
		return
	}
	c.usage.preIn.Add(n)
	c.usage.preReq.Add(1)
}

// meterOut counts a response frame of n bytes.
func (c *conn) meterOut(n int64) {
	if ctr := c.usage.counter.Load(); ctr != nil {
		ctr.Add(0, n)
		return
	}
	c.usage.preOut.Add(n)
	if ctr := c.usage.counter.Load(); ctr != nil { // attached meanwhile
		ctr.Add(0, c.usage.preOut.Swap(0))
	}
}

// meterAttach links the connection to its cluster's counter once the
// cluster is settled: after SASL, or — for a connection that may still
// authenticate into another cluster than the anonymous one — at its
// first request that is not ApiVersions or SASL. frame is the request
// just handled (its first two bytes are the API key).
func (c *conn) meterAttach(frame []byte) {
	if c.s.usage == nil || c.cluster == "" || c.cluster == c.usage.cluster {
		return
	}
	if c.principal == nil && len(frame) >= 2 && saslKeys[int16(binary.BigEndian.Uint16(frame))] {
		return
	}
	c.usage.cluster = c.cluster
	ctr := c.s.usage.Cluster(c.cluster)
	c.usage.counter.Store(ctr)
	ctr.Connection()
	ctr.Add(c.usage.preIn.Swap(0), c.usage.preOut.Swap(0))
	ctr.Request(c.usage.preReq.Swap(0))
}

// reportUsage stores the meter's reports (idempotently) in Postgres.
func reportUsage(st *store.Store) billmeter.ReportFunc {
	return func(ctx context.Context, rs []billmeter.Report) error {
		out := make([]store.UsageReport, len(rs))
		for i, r := range rs {
			out[i] = store.UsageReport{BrokerID: r.BrokerID, BootID: r.BootID, WindowStart: r.Start, WindowEnd: r.End,
				Cluster: r.Cluster, BytesIn: r.BytesIn, BytesOut: r.BytesOut, Requests: r.Requests, Connections: r.Connections}
		}
		return st.InsertUsage(ctx, out)
	}
}
