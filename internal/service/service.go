// Package service gives a process's background components one lifecycle:
// a List of named services, started in the order they were added and
// stopped in reverse (or in the order StopOrder declares), each stop
// waiting for that service to return before the next one is stopped.
//
// A Service runs until its ctx ends and then returns nil (or ctx's error).
// A Basic service adds two steps that a List runs in the goroutine that
// called Run: Starting, which must return before the next service starts
// (register, bind, load: a later service may rely on it), and Stopping,
// which runs after Running returned, with a context that ends at the
// List's shutdown deadline (drain, flush, deregister, close).
//
// Contract of List.Run:
//
//   - Services run with contexts the List cancels one at a time, in the
//     shutdown order; the caller's ctx ending starts the shutdown but does
//     not stop them all at once. Starting steps get the caller's ctx, which
//     also ends when a running service fails.
//   - A service that returns before the List stops it ends the List: every
//     started service is stopped in order and Run returns that service's
//     error, or nil if it returned nil. A Starting step that fails does the
//     same, without starting the services after it and without running its
//     own Stopping step. If several fail, the first is returned (the cause);
//     errors during the shutdown are logged, not returned.
//   - The shutdown deadline (ShutdownTimeout after the shutdown began) is
//     shared by every Stopping step. Steps reached after it still run, to
//     release what they hold, with a context that has already ended.
//     Running functions are not bounded by it: once their ctx ended they
//     must return promptly.
//   - Run returns only after every service it started has returned and
//     every Stopping step has run: it leaves no goroutine behind.
//
// Starts and stops are logged at debug level and failures at error level,
// with the service's name. A List is built and run by one goroutine; Run
// may be called once.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Service is a background component: Run works until ctx ends, then
// returns nil or ctx's error; any other return is a failure.
type Service interface {
	Run(ctx context.Context) error
}

// Func adapts a function to Service.
type Func func(ctx context.Context) error

// Run calls f.
func (f Func) Run(ctx context.Context) error { return f(ctx) }

// Loop adapts a loop that works until ctx ends and reports its own
// trouble (it returns nothing) to Service.
func Loop(loop func(ctx context.Context)) Service {
	return Func(func(ctx context.Context) error {
		loop(ctx)
		return nil
	})
}

// Basic is a service built from up to three functions; nil ones are
// skipped (a nil Running waits for ctx). In a List, Starting runs before
// the next service starts and Stopping gets the shutdown deadline (see the
// package doc). Run on its own, outside a List, runs the three in turn and
// gives Stopping a context without a deadline.
type Basic struct {
	Starting func(ctx context.Context) error
	Running  func(ctx context.Context) error
	Stopping func(ctx context.Context) error
}

// Run implements Service.
func (b Basic) Run(ctx context.Context) error {
	if b.Starting != nil {
		if err := b.Starting(ctx); err != nil {
			return err
		}
	}
	err := b.running()(ctx)
	if b.Stopping != nil {
		if serr := b.Stopping(context.WithoutCancel(ctx)); err == nil {
			err = serr
		}
	}
	return err
}

func (b Basic) running() func(context.Context) error {
	if b.Running != nil {
		return b.Running
	}
	return func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	}
}

// List is an ordered list of named services; see the package doc.
type List struct {
	// Log gets the starts and stops (debug) and the failures (error).
	// Nil discards them.
	Log *slog.Logger
	// ShutdownTimeout is how long after the shutdown began the context
	// of the Stopping steps ends; zero means it does not end.
	ShutdownTimeout time.Duration

	entries []entry
	order   []string // StopOrder; nil: reverse start order
}

type entry struct {
	name                        string
	starting, running, stopping func(context.Context) error
}

// Add appends a service; names must be unique in the list.
func (l *List) Add(name string, s Service) {
	if slices.ContainsFunc(l.entries, func(e entry) bool { return e.name == name }) {
		panic(fmt.Sprintf("service: %q added twice", name))
	}
	e := entry{name: name, running: s.Run}
	switch b := s.(type) {
	case Basic:
		e.starting, e.running, e.stopping = b.Starting, b.running(), b.Stopping
	case *Basic:
		e.starting, e.running, e.stopping = b.Starting, b.running(), b.Stopping
	}
	l.entries = append(l.entries, e)
}

// StopOrder declares the shutdown order, naming every service of the list
// exactly once. Without it the list stops in reverse start order.
func (l *List) StopOrder(names ...string) {
	l.order = names
}

// shutdownOrder returns the entries in the order they stop. A StopOrder
// that does not name every service exactly once is a programming error.
func (l *List) shutdownOrder() []int {
	idx := make([]int, 0, len(l.entries))
	if l.order == nil {
		for i := len(l.entries) - 1; i >= 0; i-- {
			idx = append(idx, i)
		}
		return idx
	}
	for _, name := range l.order {
		i := slices.IndexFunc(l.entries, func(e entry) bool { return e.name == name })
		if i < 0 || slices.Contains(idx, i) {
			panic(fmt.Sprintf("service: stop order names %q, which is not in the list or named twice", name))
		}
		idx = append(idx, i)
	}
	if len(idx) != len(l.entries) {
		panic(fmt.Sprintf("service: stop order names %d of the %d services", len(idx), len(l.entries)))
	}
	return idx
}

// started is a service the list started; done closes when Running returned.
type started struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Running's error if it returned after being stopped
}

// Run starts the services in order, runs until ctx ends or a service
// ends, then stops them in the shutdown order. It returns the first
// failure (nil after a clean stop); see the package doc.
func (l *List) Run(ctx context.Context) error {
	order := l.shutdownOrder()
	log := l.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	// starting ends when the caller's ctx does or a service ended; the
	// services' own contexts do not inherit the caller's cancellation, so
	// that the shutdown stops them one by one.
	starting, stopStarting := context.WithCancel(ctx)
	defer stopStarting()
	var (
		mu    sync.Mutex
		ended bool
		cause error
	)
	end := func(err error) {
		mu.Lock()
		if !ended {
			ended, cause = true, err
		}
		mu.Unlock()
		stopStarting()
	}

	runs := make([]*started, len(l.entries))
	for i, e := range l.entries {
		if starting.Err() != nil {
			break
		}
		log.Debug("service starting", "service", e.name)
		if e.starting != nil {
			if err := e.starting(starting); err != nil {
				if starting.Err() == nil {
					log.Error("service failed to start", "service", e.name, "err", err)
				} else {
					log.Debug("service start interrupted", "service", e.name, "err", err)
				}
				end(err)
				break
			}
		}
		runs[i] = launch(context.WithoutCancel(ctx), e, log, end)
		log.Debug("service started", "service", e.name)
	}
	<-starting.Done()

	stopCtx := context.WithoutCancel(ctx)
	if l.ShutdownTimeout > 0 {
		var cancel context.CancelFunc
		stopCtx, cancel = context.WithTimeout(stopCtx, l.ShutdownTimeout)
		defer cancel()
	}
	for _, i := range order {
		e, r := l.entries[i], runs[i]
		if r == nil {
			continue // never started
		}
		log.Debug("service stopping", "service", e.name)
		r.cancel()
		<-r.done
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			log.Error("service failed while stopping", "service", e.name, "err", r.err)
		}
		if e.stopping != nil {
			if err := e.stopping(stopCtx); err != nil {
				log.Error("service shutdown step failed", "service", e.name, "err", err)
			}
		}
		log.Debug("service stopped", "service", e.name)
	}
	mu.Lock()
	defer mu.Unlock()
	return cause
}

// launch runs e's Running function in a goroutine the list owns. A
// return before the list cancelled ctx ends the list.
func launch(ctx context.Context, e entry, log *slog.Logger, end func(error)) *started {
	ctx, cancel := context.WithCancel(ctx)
	r := &started{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		err := e.running(ctx)
		if ctx.Err() != nil {
			r.err = err
			return
		}
		if err != nil {
			log.Error("service failed", "service", e.name, "err", err)
		} else {
			log.Warn("service returned before it was stopped; stopping the others", "service", e.name)
		}
		end(err)
	}()
	return r
}
