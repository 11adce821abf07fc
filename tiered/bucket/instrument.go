package bucket

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Op and outcome label values of the metrics recorded by Instrument.
const (
	opPut      = "put"
	opGet      = "get"
	opGetRange = "get_range"
	opDelete   = "delete"
	opList     = "list"

	outcomeSuccess    = "success"
	outcomeNotFound   = "not_found"
	outcomeRange      = "range"
	outcomeInvalidKey = "invalid_key"
	outcomeCanceled   = "canceled"
	outcomeTimeout    = "timeout"
	outcomeError      = "error"
)

// Instrument returns a Bucket that forwards every call to b and records
//
//	eddy_objstore_requests_total{bucket,op,outcome}  counter
//	eddy_objstore_bytes_total{bucket,op}             counter, payload bytes of put, get and get_range
//	eddy_objstore_request_seconds{bucket,op}         histogram
//
// op is put, get, get_range, delete or list; outcome is success, not_found,
// range, invalid_key, canceled, timeout or error. A List whose fn returns an
// error counts as a success (the store did not fail), and its latency
// excludes the time spent in fn. name is the bucket label, so several
// instrumented buckets can share one registry; instrumenting the same name
// twice on one registry shares the series. A nil reg registers nothing.
func Instrument(b Bucket, reg prometheus.Registerer, name string) Bucket {
	m := &instrumented{
		b: b,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_objstore_requests_total",
			Help: "Object store requests by operation and outcome.",
		}, []string{"op", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_objstore_bytes_total",
			Help: "Object payload bytes written (put) or read (get, get_range).",
		}, []string{"op"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "eddy_objstore_request_seconds",
			Help: "Object store request latency by operation.",
			// Object stores answer in milliseconds to seconds; S3's first-byte
			// latency alone is typically 10-100ms.
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
	}
	if reg != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"bucket": name}, reg)
		m.requests = register(reg, m.requests)
		m.bytes = register(reg, m.bytes)
		m.seconds = register(reg, m.seconds)
	}
	// Create the success series up front so rates start from zero.
	for _, op := range []string{opPut, opGet, opGetRange, opDelete, opList} {
		m.requests.WithLabelValues(op, outcomeSuccess)
		m.seconds.WithLabelValues(op)
	}
	for _, op := range []string{opPut, opGet, opGetRange} {
		m.bytes.WithLabelValues(op)
	}
	return m
}

// register registers c, or returns the identical collector registered
// before. Any other failure is a programming error, as with MustRegister.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

type instrumented struct {
	b        Bucket
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

func (m *instrumented) observe(op string, start time.Time, idle time.Duration, n int, err error) {
	m.requests.WithLabelValues(op, outcome(err)).Inc()
	m.seconds.WithLabelValues(op).Observe((time.Since(start) - idle).Seconds())
	if n > 0 {
		m.bytes.WithLabelValues(op).Add(float64(n))
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return outcomeSuccess
	case errors.Is(err, ErrNotFound):
		return outcomeNotFound
	case errors.Is(err, ErrRange):
		return outcomeRange
	case errors.Is(err, ErrInvalidKey):
		return outcomeInvalidKey
	case errors.Is(err, context.Canceled):
		return outcomeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return outcomeTimeout
	default:
		return outcomeError
	}
}

func (m *instrumented) Put(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	err := m.b.Put(ctx, key, data)
	n := 0
	if err == nil {
		n = len(data)
	}
	m.observe(opPut, start, 0, n, err)
	return err
}

func (m *instrumented) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	data, err := m.b.Get(ctx, key)
	m.observe(opGet, start, 0, len(data), err)
	return data, err
}

func (m *instrumented) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	start := time.Now()
	data, err := m.b.GetRange(ctx, key, off, n)
	m.observe(opGetRange, start, 0, len(data), err)
	return data, err
}

func (m *instrumented) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := m.b.Delete(ctx, key)
	m.observe(opDelete, start, 0, 0, err)
	return err
}

func (m *instrumented) List(ctx context.Context, prefix string, fn func(Object) error) error {
	start := time.Now()
	var (
		inFn  time.Duration
		fnErr error
	)
	err := m.b.List(ctx, prefix, func(o Object) error {
		t := time.Now()
		fnErr = fn(o)
		inFn += time.Since(t)
		return fnErr
	})
	// fn's own error is the caller's business, not a store failure.
	outcomeErr := err
	if fnErr != nil && err == fnErr {
		outcomeErr = nil
	}
	m.observe(opList, start, inFn, 0, outcomeErr)
	return err
}
