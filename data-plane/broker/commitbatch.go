package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Group commit of offset commits across requests.
//
// Every OffsetCommit the coordinator accepts becomes one commit queued
// here. One writer goroutine writes whatever is queued in ONE statement
// (store.CommitOffsetsBatch) and, while that statement is in flight, new
// commits queue up for the next one. There is no linger timer: a commit
// that arrives at an idle writer is written at once (one round trip), and
// under load a batch holds what arrived during the previous round trip, so
// the statement rate is bounded by the round-trip time, not by the number
// of committers.
//
// Fencing is per commit, exactly as with store.CommitOffsets: a commit
// whose coordinator slot moved fails with store.ErrFenced and the others
// of its batch are written. A failed statement fails every commit of its
// batch.
//
// A caller whose ctx ends stops waiting and gets ctx.Err(), but a commit
// already taken into a statement may still land: the caller must treat it
// as "maybe written", which is what a Kafka client assumes of any commit it
// got no answer for. Commits whose ctx ended while still queued are
// dropped.
//
// The Server owns the writer: start in Serve, shutdown after the
// connections drained. Shutdown refuses new commits, writes everything
// queued and waits for the writer; past its ctx the statement in flight is
// cancelled and the rest fail.

// maxCommitBatchRows caps the offset rows of one statement; a single commit
// larger than that is written alone.
const maxCommitBatchRows = 4096

// commitStatementTimeout bounds one batch statement, so a hung database
// fails the waiting commits (COORDINATOR_NOT_AVAILABLE, clients retry)
// rather than holding them forever.
const commitStatementTimeout = 30 * time.Second

// errCommitsClosed: the broker is not serving (not started yet, or shutting
// down); the coordinator answers COORDINATOR_NOT_AVAILABLE.
var errCommitsClosed = errors.New("broker: offset commits are not accepted: broker not serving")

// commitBatcher queues offset commits for its writer goroutine. Safe for
// concurrent use.
type commitBatcher struct {
	st      *store.Store
	maxRows int
	rows    prometheus.Histogram // offset rows per statement
	batches prometheus.Counter   // statements

	wake chan struct{} // 1-buffered: the queue grew or the batcher closes

	mu      sync.Mutex
	queue   []*queuedCommit
	running bool               // accepting commits
	done    chan struct{}      // closed when the writer returned; nil before start
	abort   context.CancelFunc // cancels the writer's statements
}

type queuedCommit struct {
	ctx    context.Context
	commit store.OffsetCommit
	result chan error // 1-buffered, written once
}

func newCommitBatcher(st *store.Store, reg prometheus.Registerer) *commitBatcher {
	b := &commitBatcher{
		st:      st,
		maxRows: maxCommitBatchRows,
		wake:    make(chan struct{}, 1),
		rows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eddy_offset_commit_batch_rows", Help: "Offset rows written per offset-commit statement (commits of many requests are batched).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13)}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_offset_commit_batches_total", Help: "Offset-commit statements sent to Postgres."}),
	}
	if reg != nil {
		reg.MustRegister(b.rows, b.batches)
	}
	return b
}

// start starts the writer. Commits are refused before start.
func (b *commitBatcher) start() {
	ctx, abort := context.WithCancel(context.Background())
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		abort()
		return // started before
	}
	b.running, b.abort, b.done = true, abort, make(chan struct{})
	go b.run(ctx, b.done)
}

// shutdown refuses new commits, lets the writer write every queued commit
// and waits for it. If ctx ends first, the statement in flight is cancelled,
// the commits still queued fail, and shutdown returns ctx.Err() once the
// writer has returned.
func (b *commitBatcher) shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.running = false
	done, abort := b.done, b.abort
	b.mu.Unlock()
	if done == nil {
		return nil // never started
	}
	b.poke()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	abort()
	<-done
	return ctx.Err()
}

// commit queues c and waits for its outcome: nil once written, an error
// wrapping store.ErrFenced if its slot moved, or the statement's error. See
// the file comment for what a ctx that ends means.
func (b *commitBatcher) commit(ctx context.Context, c store.OffsetCommit) error {
	q := &queuedCommit{ctx: ctx, commit: c, result: make(chan error, 1)}
	b.mu.Lock()
	if !b.running {
		b.mu.Unlock()
		return errCommitsClosed
	}
	b.queue = append(b.queue, q)
	b.mu.Unlock()
	b.poke()
	select {
	case err := <-q.result:
		return err
	case <-ctx.Done():
		select {
		case err := <-q.result: // answered meanwhile: report the truth
			return err
		default:
			return ctx.Err()
		}
	}
}

func (b *commitBatcher) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// run is the writer: it writes batches until the batcher is closed and its
// queue empty. ctx carries the statements; it ends only on an aborted
// shutdown.
func (b *commitBatcher) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		batch, closed := b.take()
		if len(batch) > 0 {
			b.write(ctx, batch)
			continue
		}
		if closed {
			return
		}
		<-b.wake
	}
}

// take dequeues the next batch: commits in arrival order up to maxRows
// offset rows (at least one commit), skipping those whose caller gave up.
// closed reports that no more commits will be queued.
func (b *commitBatcher) take() (batch []*queuedCommit, closed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rows, n := 0, 0
	for _, q := range b.queue {
		if len(batch) > 0 && rows+len(q.commit.Offsets) > b.maxRows {
			break
		}
		n++
		if err := q.ctx.Err(); err != nil {
			q.result <- err
			continue
		}
		batch = append(batch, q)
		rows += len(q.commit.Offsets)
	}
	// Drop the taken commits without keeping their pointers alive in the
	// backing array.
	clear(b.queue[:n])
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	return batch, !b.running
}

// write sends one statement for batch and hands each caller its outcome.
func (b *commitBatcher) write(ctx context.Context, batch []*queuedCommit) {
	commits := make([]store.OffsetCommit, len(batch))
	rows := 0
	for i, q := range batch {
		commits[i] = q.commit
		rows += len(q.commit.Offsets)
	}
	ctx, cancel := context.WithTimeout(ctx, commitStatementTimeout)
	outcomes, err := b.st.CommitOffsetsBatch(ctx, commits)
	cancel()
	b.batches.Inc()
	b.rows.Observe(float64(rows))
	for i, q := range batch {
		if err != nil {
			q.result <- fmt.Errorf("broker: offset commit for group %s: %w", q.commit.Group, err)
			continue
		}
		q.result <- outcomes[i]
	}
}
