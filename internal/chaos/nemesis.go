package chaos

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// FaultKind names a fault the nemesis injects.
type FaultKind string

// The faults. Process faults run one at a time on one lane, object-store
// faults on another, so the two combine (a SlowDown during a broker's
// recovery, a Postgres restart while PUTs are slow).
const (
	FaultKillBroker       FaultKind = "kill-broker"        // SIGKILL, then restart
	FaultPauseBroker      FaultKind = "pause-broker"       // SIGSTOP, then SIGCONT (past the session TTL or not)
	FaultKillControlPlane FaultKind = "kill-control-plane" // SIGKILL, then restart
	FaultRestartPostgres  FaultKind = "restart-postgres"   // fast shutdown, then start
	FaultPausePostgres    FaultKind = "pause-postgres"     // SIGSTOP of every postgres process, then SIGCONT
	FaultDropConnections  FaultKind = "drop-pg-conns"      // every client connection to Postgres ended, again each second
	FaultStopBroker       FaultKind = "stop-broker"        // SIGTERM (a drain moves its partitions and coordinator slots), then restart
	FaultCrashAfterPut    FaultKind = "crash-after-put"    // the broker kills itself between a PUT and its commit, then restart
	FaultDiskFull         FaultKind = "disk-full"          // the broker's data directory filled (ENOSPC), then freed
	FaultPartitionBroker  FaultKind = "partition-pg"       // one broker cut from Postgres (clients still reach it), then joined
	FaultS3Latency        FaultKind = "s3-latency"         // added latency on one Op
	FaultS3SlowDown       FaultKind = "s3-slowdown"        // 503 SlowDown on a share of one Op
	FaultS3Error          FaultKind = "s3-500"             // 500 InternalError on a share of one Op
	FaultS3Reset          FaultKind = "s3-reset"           // done, then the connection cut, on a share of one Op
	FaultS3Down           FaultKind = "s3-down"            // every Op cut without an answer
)

// ProcessFaults and StorageFaults are every fault of each lane.
var (
	ProcessFaults = []FaultKind{FaultKillBroker, FaultPauseBroker, FaultKillControlPlane, FaultRestartPostgres,
		FaultPausePostgres, FaultDropConnections, FaultStopBroker, FaultCrashAfterPut, FaultDiskFull, FaultPartitionBroker}
	StorageFaults = []FaultKind{FaultS3Latency, FaultS3SlowDown, FaultS3Error, FaultS3Reset, FaultS3Down}
)

func isStorage(k FaultKind) bool { return slices.Contains(StorageFaults, k) }

// Step is one planned fault.
type Step struct {
	At     time.Duration // after the faults phase began
	For    time.Duration // how long the fault lasts
	Kind   FaultKind
	Target int // broker id (from 1) or control plane index
	Op     Op  // the object-store faults but s3-down
	Fault  Fault
}

func (s Step) String() string {
	switch s.Kind {
	case FaultKillBroker, FaultPauseBroker, FaultStopBroker, FaultCrashAfterPut, FaultDiskFull, FaultPartitionBroker:
		return fmt.Sprintf("%s broker-%d for %v", s.Kind, s.Target, s.For.Round(time.Millisecond))
	case FaultKillControlPlane:
		return fmt.Sprintf("%s %d for %v", s.Kind, s.Target, s.For.Round(time.Millisecond))
	case FaultRestartPostgres, FaultPausePostgres, FaultDropConnections, FaultS3Down:
		return fmt.Sprintf("%s for %v", s.Kind, s.For.Round(time.Millisecond))
	case FaultS3Latency:
		return fmt.Sprintf("%s +%v on %s for %v", s.Kind, s.Fault.Latency, s.Op, s.For.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s on %.0f%% of %s for %v", s.Kind, s.Fault.Rate*100, s.Op, s.For.Round(time.Millisecond))
}

// Plan draws a fault schedule from seed: over d, on average one fault
// every `every` across the two lanes, going through kinds (all of them
// when empty) in a shuffled order, each once before any twice. The same
// arguments give the same plan.
func Plan(seed uint64, d, every time.Duration, kinds []FaultKind, brokers, controlPlanes int) []Step {
	if len(kinds) == 0 {
		kinds = append(slices.Clone(ProcessFaults), StorageFaults...)
	}
	var lanes [2][]FaultKind
	for _, k := range kinds {
		if isStorage(k) {
			lanes[1] = append(lanes[1], k)
		} else {
			lanes[0] = append(lanes[0], k)
		}
	}
	busy := 0
	for _, l := range lanes {
		if len(l) > 0 {
			busy++
		}
	}
	var plan []Step
	for li, lane := range lanes {
		if len(lane) == 0 {
			continue
		}
		rng := rand.New(rand.NewPCG(seed, uint64(li)+1))
		mean := every * time.Duration(busy) // each lane's share of the rate
		var deck []FaultKind                // every kind once, shuffled, so a short run sees each
		var at, free time.Duration          // the last start; when the lane is free again
		for {
			gap := time.Duration(rng.ExpFloat64() * float64(mean))
			gap = min(max(gap, time.Second), 3*mean)
			if len(deck) == 0 {
				deck = slices.Clone(lane)
				rng.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
			}
			s := drawStep(rng, deck[0], brokers, controlPlanes)
			deck = deck[1:]
			s.At = max(at+gap, free) // the gaps are between starts, as the rate is
			if s.At+s.For > d {
				break
			}
			plan = append(plan, s)
			at, free = s.At, s.At+s.For+500*time.Millisecond
		}
	}
	slices.SortStableFunc(plan, func(a, b Step) int { return int(a.At - b.At) })
	return plan
}

func drawStep(rng *rand.Rand, k FaultKind, brokers, controlPlanes int) Step {
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	// PUTs carry every flush, so they are hit most; GETs serve reads
	// past the cache, LISTs and DELETEs garbage collection.
	ops := []Op{OpPut, OpPut, OpPut, OpPut, OpGet, OpGet, OpList, OpDelete}
	s := Step{Kind: k, Op: ops[rng.IntN(len(ops))]}
	switch k {
	case FaultKillBroker:
		s.Target, s.For = 1+rng.IntN(brokers), between(time.Second, 6*time.Second)
	case FaultPauseBroker:
		// The session TTL is 6s: about half the pauses outlast it.
		s.Target, s.For = 1+rng.IntN(brokers), between(2*time.Second, 11*time.Second)
	case FaultKillControlPlane:
		s.Target, s.For = rng.IntN(controlPlanes), between(time.Second, 5*time.Second)
	case FaultRestartPostgres:
		s.For = between(time.Second, 5*time.Second)
	case FaultPausePostgres:
		// Past the brokers' session TTL (6s) sometimes: sessions expire
		// in a database that was not running to expire them.
		s.For = between(time.Second, 8*time.Second)
	case FaultDropConnections:
		s.For = between(time.Second, 5*time.Second)
	case FaultStopBroker:
		s.Target, s.For = 1+rng.IntN(brokers), between(time.Second, 4*time.Second)
	case FaultCrashAfterPut:
		// For bounds the wait for the crash (a broker that PUTs nothing
		// meanwhile does not crash), then the down time.
		s.Target, s.For = 1+rng.IntN(brokers), between(2*time.Second, 6*time.Second)
	case FaultDiskFull:
		s.Target, s.For = 1+rng.IntN(brokers), between(3*time.Second, 12*time.Second)
	case FaultPartitionBroker:
		// About half outlast the session TTL (6s): the others take the
		// broker's partitions while it still talks to clients.
		s.Target, s.For = 1+rng.IntN(brokers), between(2*time.Second, 11*time.Second)
	case FaultS3Latency:
		s.For = between(5*time.Second, 15*time.Second)
		s.Fault = Fault{Latency: between(200*time.Millisecond, 3*time.Second).Round(time.Millisecond)}
	case FaultS3SlowDown:
		s.For, s.Fault = between(5*time.Second, 15*time.Second), Fault{Status: http.StatusServiceUnavailable, Rate: 0.5}
	case FaultS3Error:
		s.For, s.Fault = between(5*time.Second, 15*time.Second), Fault{Status: http.StatusInternalServerError, Rate: 0.3}
	case FaultS3Reset:
		s.For, s.Fault = between(5*time.Second, 15*time.Second), Fault{Reset: true, Rate: 0.3}
	case FaultS3Down:
		s.Op, s.For = "", between(3*time.Second, 10*time.Second)
	}
	return s
}

// Event is one entry of the fault timeline.
type Event struct {
	Start, End time.Time // End is zero while the fault lasts
	Step       Step
	Err        string // the fault could not be injected or healed
}

// Timeline is the faults injected so far. Its methods are safe for
// concurrent use.
type Timeline struct {
	mu     sync.Mutex
	events []Event
}

func (tl *Timeline) begin(s Step) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, Event{Start: time.Now(), Step: s})
	return len(tl.events) - 1
}

func (tl *Timeline) end(i int, err error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events[i].End = time.Now()
	if err != nil {
		tl.events[i].Err = err.Error()
	}
}

// Events returns the timeline in start order.
func (tl *Timeline) Events() []Event {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := slices.Clone(tl.events)
	slices.SortStableFunc(out, func(a, b Event) int { return a.Start.Compare(b.Start) })
	return out
}

// Around returns the faults that overlap [t-d, t+d].
func (tl *Timeline) Around(t time.Time, d time.Duration) []Event {
	var out []Event
	for _, e := range tl.Events() {
		end := e.End
		if end.IsZero() {
			end = time.Now()
		}
		if !e.Start.After(t.Add(d)) && !end.Before(t.Add(-d)) {
			out = append(out, e)
		}
	}
	return out
}

// inject runs the steps of plan on c from start, one lane per goroutine,
// until the plan ends; every fault it began is healed before
// it returns. Process faults go through c, which may fail the test, so
// their lane runs on the calling goroutine. A fault that could not be
// healed (a Postgres or a control plane that does not come back) ends
// its lane and is returned: the cluster is no longer the one the run
// means to test.
func inject(c *Cluster, plan []Step, start time.Time, tl *Timeline, logf func(string, ...any)) error {
	var storage, process []Step
	for _, s := range plan {
		if isStorage(s.Kind) {
			storage = append(storage, s)
		} else {
			process = append(process, s)
		}
	}
	var wg sync.WaitGroup
	var storageErr error
	wg.Go(func() { storageErr = runLane(c.inject, storage, start, tl, logf) })
	err := runLane(c.inject, process, start, tl, logf)
	wg.Wait()
	return errors.Join(err, storageErr)
}

// runLane injects steps one after another with do, which returns the
// step's heal.
func runLane(do func(Step) (heal func() error), steps []Step, start time.Time, tl *Timeline, logf func(string, ...any)) error {
	for _, s := range steps {
		time.Sleep(time.Until(start.Add(s.At)))
		logf("chaos: +%v %s", time.Since(start).Round(time.Second), s)
		i := tl.begin(s)
		heal := do(s)
		time.Sleep(s.For)
		if err := heal(); err != nil {
			logf("chaos: healing %s: %v", s, err)
			tl.end(i, err)
			return fmt.Errorf("chaos: healing %s: %w", s, err)
		}
		tl.end(i, nil)
	}
	return nil
}
