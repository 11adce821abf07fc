package chaos

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Op is the kind of an object-store request, as the proxy classifies it.
type Op string

// The operations a fault can target.
const (
	OpPut    Op = "PUT"
	OpGet    Op = "GET"
	OpList   Op = "LIST"
	OpDelete Op = "DELETE"
)

// Ops lists every Op.
var Ops = []Op{OpPut, OpGet, OpList, OpDelete}

// Fault is what the proxy does to the requests of one Op. The zero Fault
// passes them through untouched.
type Fault struct {
	// Latency is added before the request is forwarded.
	Latency time.Duration
	// LatencyP99, above Latency, makes the added latency log-normal with
	// median Latency and this 99th percentile, drawn per request, as a
	// real object store's (the bench's S3 run models S3 Standard so).
	LatencyP99 time.Duration
	// Status answers the request with this HTTP status (503 as S3's
	// SlowDown, 500 as InternalError) instead of forwarding it.
	Status int
	// Reset forwards the request, then cuts the connection instead of
	// answering: the object store did the work, the caller never hears.
	Reset bool
	// Down cuts the connection without forwarding, as a store that is
	// unreachable.
	Down bool
	// Rate is the share of requests the fault hits (0 means all of them);
	// Latency applies to every request.
	Rate float64
}

// Proxy is an HTTP proxy in front of an S3-compatible server that injects
// Faults per Op. Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	srv    *http.Server
	rp     *httputil.ReverseProxy
	served chan struct{}

	mu     sync.Mutex
	faults map[Op]Fault
	rng    *rand.Rand
	hits   map[string]int         // "PUT 503" → requests faulted so far
	drawn  map[Op][]time.Duration // latencies drawn for LatencyP99 faults
}

// StartProxy listens on a free loopback port and forwards to target (an
// S3 endpoint URL); Close stops it.
func StartProxy(target string, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("chaos: proxy target: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, served: make(chan struct{}), faults: map[Op]Fault{},
		rng: rand.New(rand.NewPCG(seed, 0x5eed)), hits: map[string]int{}, drawn: map[Op][]time.Duration{}}
	// The Host header is kept: the client signed it (SigV4).
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = r.In.Host },
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(p.served)
		p.srv.Serve(ln)
	}()
	return p, nil
}

// URL is the endpoint clients use instead of the target.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Set makes op's requests suffer f from now on.
func (p *Proxy) Set(op Op, f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[op] = f
}

// Clear heals every Op.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.faults)
}

// Hits returns how many requests each fault hit so far, keyed "OP what".
func (p *Proxy) Hits() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.hits)
}

// Drawn returns the latencies drawn so far for faults with a LatencyP99,
// per Op.
func (p *Proxy) Drawn() map[Op][]time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Op][]time.Duration, len(p.drawn))
	for op, d := range p.drawn {
		out[op] = slices.Clone(d)
	}
	return out
}

// Close stops the proxy, cutting requests in progress, and waits for it.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	<-p.served
	return err
}

// classify names the Op of an S3 request in path style (/bucket/key).
func classify(r *http.Request) Op {
	switch r.Method {
	case http.MethodPut:
		return OpPut
	case http.MethodDelete:
		return OpDelete
	case http.MethodPost:
		if r.URL.Query().Has("delete") {
			return OpDelete
		}
		return OpPut // multipart uploads
	}
	if key := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"), bucketOf(r.URL.Path)); strings.Trim(key, "/") == "" {
		return OpList
	}
	return OpGet
}

func bucketOf(path string) string {
	b, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return b
}

// decide returns the fault for r's Op, with the latency to add, and
// whether it hits r.
func (p *Proxy) decide(op Op) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults[op]
	if f.Latency > 0 && f.LatencyP99 > f.Latency {
		// exp(N(ln median, sigma)), sigma putting the 99th percentile
		// (z = 2.326) at LatencyP99.
		sigma := math.Log(float64(f.LatencyP99)/float64(f.Latency)) / 2.326
		f.Latency = time.Duration(float64(f.Latency) * math.Exp(sigma*p.rng.NormFloat64()))
		p.drawn[op] = append(p.drawn[op], f.Latency)
	}
	hit := f.Rate <= 0 || p.rng.Float64() < f.Rate
	if f.Latency > 0 {
		p.hits[string(op)+" latency"]++
	}
	if hit {
		switch {
		case f.Down:
			p.hits[string(op)+" down"]++
		case f.Status != 0:
			p.hits[fmt.Sprintf("%s %d", op, f.Status)]++
		case f.Reset:
			p.hits[string(op)+" reset"]++
		}
	}
	return f, hit
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, hit := p.decide(classify(r))
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case hit && f.Down:
		cut(w)
	case hit && f.Status != 0:
		code := "InternalError"
		if f.Status == http.StatusServiceUnavailable {
			code = "SlowDown"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the chaos proxy</Message><RequestId>chaos</RequestId></Error>`, code)
	case hit && f.Reset:
		p.rp.ServeHTTP(discard{w.Header()}, r)
		cut(w)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// cut closes the client's connection without an answer (a reset when the
// kernel still holds unread bytes).
func cut(w http.ResponseWriter) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// discard is a ResponseWriter that drops the answer (Reset's forwarded
// request).
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
