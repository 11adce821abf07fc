package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder collects lifecycle events from the services of a test.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// ordered returns the events whose order the list promises: all but the
// "run" ones (Running goroutines start concurrently).
func (r *recorder) ordered() []string {
	return slices.DeleteFunc(r.get(), func(e string) bool { return strings.HasPrefix(e, "run ") })
}

// loop is a service that records its start and its return.
func (r *recorder) loop(name string) Service {
	return Func(func(ctx context.Context) error {
		r.add("run %s", name)
		<-ctx.Done()
		r.add("return %s", name)
		return ctx.Err()
	})
}

// hooks is a Basic service that records each of its steps.
func (r *recorder) hooks(name string) Basic {
	return Basic{
		Starting: func(context.Context) error { r.add("start %s", name); return nil },
		Running:  r.loop(name).Run,
		Stopping: func(context.Context) error { r.add("stop %s", name); return nil },
	}
}

func check(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// runUntilCancel runs l, cancels its ctx an hour (of the bubble's fake
// time) later, when every service has started, and returns Run's result.
func runUntilCancel(t *testing.T, l *List) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	time.Sleep(time.Hour)
	cancel()
	return <-errc
}

func TestStartsInOrderStopsInReverse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		var l List
		l.Add("a", r.hooks("a"))
		l.Add("b", r.loop("b"))
		l.Add("c", r.hooks("c"))
		if err := runUntilCancel(t, &l); err != nil {
			t.Fatalf("Run after a clean stop: %v", err)
		}
		// The Running goroutines start concurrently; what is ordered is
		// each Starting step, and each stop.
		check(t, r.ordered(), "start a", "start c", "return c", "stop c", "return b", "return a", "stop a")
		if ev := r.get(); slices.Index(ev, "run a") < slices.Index(ev, "start a") {
			t.Fatalf("a ran before it started: %v", ev)
		}
	})
}

func TestStopOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		var l List
		for _, n := range []string{"a", "b", "c", "d"} {
			l.Add(n, r.hooks(n))
		}
		l.StopOrder("b", "d", "a", "c")
		if err := runUntilCancel(t, &l); err != nil {
			t.Fatal(err)
		}
		check(t, r.ordered(), "start a", "start b", "start c", "start d",
			"return b", "stop b", "return d", "stop d", "return a", "stop a", "return c", "stop c")
	})
}

// Each stop waits for the service before: a slow Running function holds up
// the next stop, and a Starting step holds up the next start.
func TestEachStepWaitsForThePrevious(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		var l List
		l.Add("a", r.loop("a"))
		l.Add("slow", Basic{
			Starting: func(context.Context) error {
				time.Sleep(time.Second)
				r.add("registered")
				return nil
			},
			Running: func(ctx context.Context) error {
				<-ctx.Done()
				time.Sleep(time.Second) // a drain
				r.add("drained")
				return nil
			},
		})
		l.Add("c", Basic{Starting: func(context.Context) error { r.add("start c"); return nil }})
		if err := runUntilCancel(t, &l); err != nil {
			t.Fatal(err)
		}
		ev := r.get()
		if slices.Index(ev, "registered") > slices.Index(ev, "start c") {
			t.Fatalf("c started before slow's Starting returned: %v", ev)
		}
		if slices.Index(ev, "drained") > slices.Index(ev, "return a") {
			t.Fatalf("a stopped before slow returned: %v", ev)
		}
	})
}

// A service that fails, or a Starting step that fails, stops the whole
// list in order (the services after a failed start never start, and the
// failed one gets no Stopping step); the failure is what Run returns even
// when others fail too while stopping.
func TestFailureStopsTheList(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		failing Basic
		want    []string
	}{
		{"running fails", Basic{Running: func(context.Context) error {
			time.Sleep(time.Minute)
			return boom
		}}, []string{"start a", "start c", "return c", "stop c", "return a", "stop a"}},
		{"starting fails", Basic{
			Starting: func(context.Context) error { return boom },
			Stopping: func(context.Context) error { t.Error("Stopping ran after Starting failed"); return nil },
		}, []string{"start a", "return a", "stop a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var r recorder
				var l List
				l.Add("a", r.hooks("a"))
				l.Add("b", Basic{Running: func(ctx context.Context) error {
					<-ctx.Done()
					return errors.New("b: failed while stopping") // logged, not returned
				}})
				l.Add("failing", tc.failing)
				l.Add("c", r.hooks("c"))
				if err := l.Run(t.Context()); !errors.Is(err, boom) {
					t.Fatalf("Run = %v, want %v", err, boom)
				}
				check(t, r.ordered(), tc.want...)
			})
		})
	}
}

// A service that returns nil before it was stopped ends the list cleanly.
func TestEarlyReturnStopsTheList(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		var l List
		l.Add("a", r.hooks("a"))
		l.Add("done", Func(func(context.Context) error { return nil }))
		if err := l.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		check(t, r.ordered(), "start a", "return a", "stop a")
	})
}

// A service that fails while a later one is still starting interrupts the
// start (its ctx ends) and is the cause Run returns.
func TestFailureDuringStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		boom := errors.New("boom")
		var l List
		l.Add("fails", Func(func(context.Context) error {
			time.Sleep(time.Second)
			return boom
		}))
		l.Add("waits", Basic{Starting: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}})
		l.Add("never", r.hooks("never"))
		if err := l.Run(t.Context()); !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want %v", err, boom)
		}
		check(t, r.get())
	})
}

// The caller's ctx ending during a Starting step: Run returns the step's
// error, as a caller that registers by hand would.
func TestCancelDuringStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var l List
		l.Add("waits", Basic{Starting: func(ctx context.Context) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}})
		if err := l.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	})
}

// The caller's ctx ending does not stop every service at once: while the
// last one stops, the first still runs.
func TestServicesOutliveTheCallersCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var firstStopped bool
		var l List
		l.Add("first", Func(func(ctx context.Context) error {
			<-ctx.Done()
			firstStopped = true
			return nil
		}))
		l.Add("last", Func(func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(time.Second)
			if firstStopped {
				return errors.New("first stopped before last returned")
			}
			return nil
		}))
		var buf bytes.Buffer
		l.Log = slog.New(slog.NewTextHandler(&buf, nil))
		if err := runUntilCancel(t, &l); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "first stopped") {
			t.Fatal(buf.String())
		}
	})
}

// Every Stopping step shares one deadline, ShutdownTimeout after the
// shutdown began; steps after it still run, with an ended ctx.
func TestShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		var began time.Time
		l := List{ShutdownTimeout: 10 * time.Second}
		l.Add("wal", Basic{Stopping: func(ctx context.Context) error {
			r.add("wal closed after %s, ctx %v", time.Since(began), ctx.Err())
			return nil
		}})
		l.Add("flush", Basic{Stopping: func(ctx context.Context) error {
			time.Sleep(4 * time.Second)
			dl, _ := ctx.Deadline()
			r.add("flushed, deadline in %s", time.Until(dl))
			return nil
		}})
		l.Add("drain", Basic{Stopping: func(ctx context.Context) error {
			<-ctx.Done() // connections that never finish
			r.add("drained after %s: %v", time.Since(began), ctx.Err())
			return ctx.Err() // logged
		}})
		l.Add("accept", Basic{Running: func(ctx context.Context) error {
			<-ctx.Done()
			began = time.Now()
			return nil
		}})
		l.StopOrder("accept", "drain", "flush", "wal")
		if err := runUntilCancel(t, &l); err != nil {
			t.Fatal(err)
		}
		check(t, r.get(),
			"drained after 10s: context deadline exceeded",
			"flushed, deadline in -4s",
			"wal closed after 14s, ctx context deadline exceeded")
	})
}

// The log names each service: starts and stops at debug, failures at
// error.
func TestLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		l := List{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		l.Add("heartbeat", Func(func(ctx context.Context) error { <-ctx.Done(); return nil }))
		l.Add("accept", Func(func(context.Context) error { return errors.New("boom") }))
		l.Run(t.Context())
		for _, want := range []string{
			`level=DEBUG msg="service starting" service=heartbeat`,
			`level=DEBUG msg="service started" service=accept`,
			`level=ERROR msg="service failed" service=accept err=boom`,
			`level=DEBUG msg="service stopping" service=heartbeat`,
			`level=DEBUG msg="service stopped" service=heartbeat`,
		} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("log lacks %s:\n%s", want, buf.String())
			}
		}
	})
}

func TestBasicOnItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- r.hooks("x").Run(ctx) }()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want Running's context.Canceled", err)
		}
		check(t, r.get(), "start x", "run x", "return x", "stop x")

		refused := errors.New("refused")
		b := Basic{Starting: func(context.Context) error { return refused }, Stopping: func(context.Context) error {
			t.Error("Stopping ran after Starting failed")
			return nil
		}}
		if err := b.Run(t.Context()); !errors.Is(err, refused) {
			t.Fatalf("Run = %v, want %v", err, refused)
		}
	})
}

func TestDeclarationErrorsPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"duplicate name", func() {
			var l List
			l.Add("a", Basic{})
			l.Add("a", Basic{})
		}},
		{"stop order misses one", func() {
			var l List
			l.Add("a", Basic{})
			l.Add("b", Basic{})
			l.StopOrder("a")
			l.Run(context.Background())
		}},
		{"stop order names one twice", func() {
			var l List
			l.Add("a", Basic{})
			l.Add("b", Basic{})
			l.StopOrder("a", "a")
			l.Run(context.Background())
		}},
		{"stop order names a stranger", func() {
			var l List
			l.Add("a", Basic{})
			l.StopOrder("x")
			l.Run(context.Background())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tc.f()
		})
	}
}
