package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// Latency is a log-normal distribution of delays given by its median and
// 99th percentile.
type Latency struct {
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
}

// sample draws one delay: exp(N(ln P50, sigma)) with sigma such that the
// 99th percentile is P99 (z(0.99) = 2.326).
func (l Latency) sample(r *rand.Rand) time.Duration {
	if l.P50 <= 0 {
		return 0
	}
	sigma := 0.0
	if l.P99 > l.P50 {
		sigma = math.Log(float64(l.P99)/float64(l.P50)) / 2.326
	}
	return time.Duration(float64(l.P50) * math.Exp(sigma*r.NormFloat64()))
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
// of a real object store. Start it with StartLatencyProxy; Close stops it.
// Its methods are safe for concurrent use.
type LatencyProxy struct {
	// URL is the proxy's endpoint, to give to the S3 client instead of
	// the server's.
	URL   string
	model LatencyModel

	srv  *http.Server
	done chan struct{} // closed when Serve returned

	mu            sync.Mutex // guards rng
	rng           *rand.Rand
	writes, reads latencies // injected delays
}

// StartLatencyProxy listens on a free loopback port and forwards to
// target (http://host:port) with the delays of model.
func StartLatencyProxy(target string, model LatencyModel) (*LatencyProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("bench: latency proxy target: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: latency proxy: %w", err)
	}
	p := &LatencyProxy{URL: "http://" + ln.Addr().String(), model: model,
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), done: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	// Many brokers' connections at once: keep them open to the server.
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.delay(r.Context(), r.Method); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() {
		defer close(p.done)
		p.srv.Serve(ln)
	}()
	return p, nil
}

// delay sleeps for a delay drawn for a request of method, or until ctx
// ends.
func (p *LatencyProxy) delay(ctx context.Context, method string) error {
	p.mu.Lock()
	var d time.Duration
	switch method {
	case http.MethodGet, http.MethodHead:
		d = p.model.Read.sample(p.rng)
		p.reads.add(d)
	default:
		d = p.model.Write.sample(p.rng)
		p.writes.add(d)
	}
	p.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ProxyStats are the delays a LatencyProxy injected, in milliseconds.
type ProxyStats struct {
	Model  LatencyModel `json:"model"`
	Writes Percentiles  `json:"injected_write_ms"`
	Reads  Percentiles  `json:"injected_read_ms"`
}

// Stats returns the delays injected so far.
func (p *LatencyProxy) Stats() ProxyStats {
	return ProxyStats{Model: p.model, Writes: p.writes.percentiles(), Reads: p.reads.percentiles()}
}

// Close stops accepting, waits up to 10 s for requests in flight and
// returns once the server has stopped.
func (p *LatencyProxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = p.srv.Close()
	}
	<-p.done
	return err
}
