package bench

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/eddy-streams/eddy/internal/chaos"
)

// Latency is a log-normal distribution of delays given by its median and
// 99th percentile (chaos.Fault's Latency and LatencyP99).
type Latency struct {
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
}

// LatencyModel is the delay the injector adds per kind of request: writes
// (PUT, POST, DELETE) and reads (GET, HEAD: the time to the first byte).
type LatencyModel struct {
	Name  string  `json:"name"`
	Write Latency `json:"write"`
	Read  Latency `json:"read"`
}

// S3Standard models S3 Standard in one region as published and measured
// (PUT p50 about 30 ms, p99 about 100 ms; GET first byte about 20 ms, with
// a tail to about 60 ms).
func S3Standard() LatencyModel {
	return LatencyModel{Name: "S3 Standard",
		Write: Latency{P50: 30 * time.Millisecond, P99: 100 * time.Millisecond},
		Read:  Latency{P50: 20 * time.Millisecond, P99: 60 * time.Millisecond}}
}

func (m LatencyModel) String() string {
	return fmt.Sprintf("%s: writes p50 %v / p99 %v, reads to first byte p50 %v / p99 %v",
		m.Name, m.Write.P50, m.Write.P99, m.Read.P50, m.Read.P99)
}

// LatencyProxy is an HTTP reverse proxy in front of an S3-compatible
// server that delays every request by a delay drawn from its model before
// forwarding it, so a local server (moto_server) answers with the latency
// of a real object store: internal/chaos's fault proxy with log-normal
// latency on every operation. Start it with StartLatencyProxy; Close
// stops it. Its methods are safe for concurrent use.
type LatencyProxy struct {
	// URL is the proxy's endpoint, to give to the S3 client instead of
	// the server's.
	URL   string
	model LatencyModel
	p     *chaos.Proxy
}

// StartLatencyProxy listens on a free loopback port and forwards to
// target (http://host:port) with the delays of model.
func StartLatencyProxy(target string, model LatencyModel) (*LatencyProxy, error) {
	p, err := chaos.StartProxy(target, rand.Uint64())
	if err != nil {
		return nil, fmt.Errorf("bench: latency proxy: %w", err)
	}
	write := chaos.Fault{Latency: model.Write.P50, LatencyP99: model.Write.P99}
	read := chaos.Fault{Latency: model.Read.P50, LatencyP99: model.Read.P99}
	p.Set(chaos.OpPut, write)
	p.Set(chaos.OpDelete, write)
	p.Set(chaos.OpGet, read)
	p.Set(chaos.OpList, read)
	return &LatencyProxy{URL: p.URL(), model: model, p: p}, nil
}

// ProxyStats are the delays a LatencyProxy injected, in milliseconds.
type ProxyStats struct {
	Model  LatencyModel `json:"model"`
	Writes Percentiles  `json:"injected_write_ms"`
	Reads  Percentiles  `json:"injected_read_ms"`
}

// Stats returns the delays injected so far.
func (p *LatencyProxy) Stats() ProxyStats {
	var writes, reads latencies
	for op, ds := range p.p.Drawn() {
		l := &reads
		if op == chaos.OpPut || op == chaos.OpDelete {
			l = &writes
		}
		for _, d := range ds {
			l.add(d)
		}
	}
	return ProxyStats{Model: p.model, Writes: writes.percentiles(), Reads: reads.percentiles()}
}

// Close stops the proxy and waits for it.
func (p *LatencyProxy) Close() error { return p.p.Close() }
