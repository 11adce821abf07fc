package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Txn is the transactions scenario: Producers transactional clients (each
// its own transactional.id) loop over begin, RecordsPerTxn records spread
// round-robin over the topic's partitions, flush, commit, for Duration.
// It runs on Eddy and then on kfake, and measures committed throughput and
// the commit: the EndTransaction call after the flush (the client's part
// included) and the EndTxn request alone (written to answered, from kgo's
// hooks). Every transaction touches every partition, so each commit writes
// Partitions markers.
type Txn struct {
	Name          string        `json:"name"`
	RecordSize    int           `json:"record_size"`
	Partitions    int           `json:"partitions"`
	Producers     int           `json:"producers"`       // transactional clients
	RecordsPerTxn int           `json:"records_per_txn"` // committed together
	Duration      time.Duration `json:"duration"`        // of each target's run
}

// TxnName names the scenario in the standard set (for --only).
const TxnName = "transactions"

// StandardTxn is the scenario `make bench` runs, about 25 s per target at
// scale 1: 1 MiB transactions of 1 KiB records.
func StandardTxn(scale float64) Txn {
	return Txn{Name: TxnName, RecordSize: 1024, Partitions: 8, Producers: 3, RecordsPerTxn: 1000,
		Duration: time.Duration(20 * scale * float64(time.Second))}
}

// Validate reports the first invalid setting.
func (x Txn) Validate() error {
	switch {
	case x.RecordSize < 1 || x.RecordSize > 1<<20:
		return fmt.Errorf("bench: %s: record size must be 1 B to 1 MiB", x.Name)
	case x.Partitions < 1 || x.Producers < 1 || x.RecordsPerTxn < 1:
		return fmt.Errorf("bench: %s: partitions, producers and records per transaction must be at least 1", x.Name)
	case x.Duration < 100*time.Millisecond:
		return fmt.Errorf("bench: %s: duration must be at least 100ms", x.Name)
	}
	return nil
}

// Describe is a one-line summary for the workloads table.
func (x Txn) Describe() string {
	return fmt.Sprintf("%d transactional producers, each looping begin / %d records of %s round-robin over %d partitions / flush / commit, for %s",
		x.Producers, x.RecordsPerTxn, fmtSize(x.RecordSize), x.Partitions, x.Duration)
}

// TxnResult is the scenario on one target.
type TxnResult struct {
	Target    string  `json:"target"`
	Committed int64   `json:"transactions_committed"`
	Aborted   int64   `json:"transactions_aborted"` // after a failed produce or commit
	Records   int64   `json:"records_committed"`
	Seconds   float64 `json:"seconds"` // first begin to last commit

	TxnPerSec     float64 `json:"transactions_per_sec"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"` // committed value bytes

	// Commit is EndTransaction(TryCommit) after the flush; EndTxn is the
	// EndTxn request from written to answered; Transaction is begin to
	// commit returned.
	Commit      Percentiles `json:"commit_ms"`
	EndTxn      Percentiles `json:"end_txn_request_ms"`
	Transaction Percentiles `json:"transaction_ms"`
}

// TxnComparison is the scenario on Eddy and on the peer.
type TxnComparison struct {
	Scenario Txn        `json:"scenario"`
	Eddy     *TxnResult `json:"eddy"`
	Peer     *TxnResult `json:"kfake,omitempty"`
	// Eddy over kfake: above 1 is faster (throughput), slower (latency).
	Throughput float64 `json:"ratio_throughput,omitempty"`
	CommitP50  float64 `json:"ratio_commit_p50,omitempty"`
	CommitP99  float64 `json:"ratio_commit_p99,omitempty"`
}

// txnAttempts is how many transactions in a row may fail before a client
// gives up: one failure is the broker's weather, a run of them is a bug.
const txnAttempts = 3

// runTxn runs the scenario against tg.
func runTxn(ctx context.Context, tg target, x Txn, progress func(string)) (*TxnResult, error) {
	suffix := strings.ToLower(rand.Text()[:6])
	topic := fmt.Sprintf("bench-%s-%s", x.Name, suffix)
	_, drop, err := tempTopic(ctx, tg, topic, x.Partitions)
	if err != nil {
		return nil, err
	}
	defer drop()

	values := randomValues(x.RecordSize)
	endTxn := &requestHook{key: int16(kmsg.EndTxn)}
	var (
		committed, aborted, records atomic.Int64
		commitLat, txnLat           latencies
		lastCommit                  atomic.Int64 // unix nanos
	)
	clients := make([]*kgo.Client, x.Producers)
	for i := range clients {
		cl, err := tg.client(kgo.TransactionalID(fmt.Sprintf("bench-%s-%s-%d", x.Name, suffix, i)),
			kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
			kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.WithHooks(endTxn))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		clients[i] = cl
	}

	// one runs a transaction: an error from Begin or the commit after an
	// abort that worked is reported, the caller decides whether to go on.
	one := func(cl *kgo.Client, n *int64) error {
		t0 := time.Now()
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		var prodErr atomic.Pointer[error]
		for range x.RecordsPerTxn {
			cl.Produce(ctx, &kgo.Record{Value: values[*n%int64(len(values))]}, func(_ *kgo.Record, err error) {
				if err != nil {
					prodErr.CompareAndSwap(nil, &err)
				}
			})
			*n++
		}
		// Flush's error is the context's; a record's own error arrives in
		// its promise, which has run once Flush returns.
		if err := cl.Flush(ctx); err != nil {
			return err
		}
		if perr := prodErr.Load(); perr != nil {
			aborted.Add(1)
			if err := cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort); err != nil {
				return fmt.Errorf("abort after %w: %w", *perr, err)
			}
			return *perr
		}
		t1 := time.Now()
		// A commit is not cancelled: its outcome would be unknowable.
		if err := cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryCommit); err != nil {
			aborted.Add(1)
			if aerr := cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort); aerr != nil {
				return fmt.Errorf("abort after a failed commit (%w): %w", err, aerr)
			}
			return err
		}
		now := time.Now()
		commitLat.add(now.Sub(t1))
		txnLat.add(now.Sub(t0))
		committed.Add(1)
		records.Add(int64(x.RecordsPerTxn))
		lastCommit.Store(now.UnixNano())
		return nil
	}

	start := time.Now()
	deadline := start.Add(x.Duration)
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int64
			failures := 0
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if err := one(cl, &n); err != nil {
					if failures++; failures == txnAttempts || ctx.Err() != nil {
						errs[i] = err
						return
					}
					continue
				}
				failures = 0
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			el := time.Since(start).Seconds()
			progress(fmt.Sprintf("%s %-26s %5.1fs  committed %6d transactions (%7.1f MB/s)  aborted %d  commit p99 %.1f ms",
				tg.name, x.Name, el, committed.Load(), float64(records.Load())*float64(x.RecordSize)/MB/el, aborted.Load(), commitLat.percentiles().P99))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", tg.name, err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res := &TxnResult{Target: tg.name, Committed: committed.Load(), Aborted: aborted.Load(), Records: records.Load(),
		Commit: commitLat.percentiles(), EndTxn: endTxn.lat.percentiles(), Transaction: txnLat.percentiles()}
	if res.Committed == 0 {
		return nil, fmt.Errorf("%s: no transaction committed", tg.name)
	}
	res.Seconds = time.Unix(0, lastCommit.Load()).Sub(start).Seconds()
	res.TxnPerSec = float64(res.Committed) / res.Seconds
	res.RecordsPerSec = float64(res.Records) / res.Seconds
	res.MBPerSec = res.RecordsPerSec * float64(x.RecordSize) / MB
	return res, nil
}

// compareTxn sets Eddy's transactions beside the peer's (nil: none).
func compareTxn(x Txn, eddy, peer *TxnResult) *TxnComparison {
	c := &TxnComparison{Scenario: x, Eddy: eddy, Peer: peer}
	if peer != nil {
		c.Throughput = div(eddy.MBPerSec, peer.MBPerSec)
		c.CommitP50 = div(eddy.Commit.P50, peer.Commit.P50)
		c.CommitP99 = div(eddy.Commit.P99, peer.Commit.P99)
	}
	return c
}

const txnTitle = "Transactions"

// table lays the scenario out, a row per target and the ratios.
func (c *TxnComparison) table() *table {
	t := &table{title: txnTitle + " (committed records; commit = EndTransaction after the flush, EndTxn = the request alone; ms)",
		header: []string{"target", "MB/s", "records/s", "txn/s", "aborted", "commit p50", "commit p99", "EndTxn p50", "EndTxn p99", "txn p50", "txn p99"}}
	for _, r := range []*TxnResult{c.Eddy, c.Peer} {
		if r == nil {
			continue
		}
		t.add(r.Target, f1(r.MBPerSec), fmt.Sprintf("%.0f", r.RecordsPerSec), f1(r.TxnPerSec), fmt.Sprintf("%d of %d", r.Aborted, r.Aborted+r.Committed),
			f1(r.Commit.P50), f1(r.Commit.P99), f1(r.EndTxn.P50), f1(r.EndTxn.P99), f1(r.Transaction.P50), f1(r.Transaction.P99))
	}
	if c.Peer != nil {
		t.add("eddy / kfake", ratio(c.Throughput), ratio(div(c.Eddy.RecordsPerSec, c.Peer.RecordsPerSec)), ratio(div(c.Eddy.TxnPerSec, c.Peer.TxnPerSec)), "–",
			ratio(c.CommitP50), ratio(c.CommitP99), ratio(div(c.Eddy.EndTxn.P50, c.Peer.EndTxn.P50)), ratio(div(c.Eddy.EndTxn.P99, c.Peer.EndTxn.P99)),
			ratio(div(c.Eddy.Transaction.P50, c.Peer.Transaction.P50)), ratio(div(c.Eddy.Transaction.P99, c.Peer.Transaction.P99)))
	}
	return t
}

// Sentence is the scenario's result in one sentence.
func (c *TxnComparison) Sentence() string {
	e, x := c.Eddy, c.Scenario
	s := fmt.Sprintf("With %d transactional producers committing %d records of %s at a time, Eddy committed %s MB/s (%.0f records/s, %s transactions/s) with a commit latency of %s ms p50 and %s ms p99",
		x.Producers, x.RecordsPerTxn, fmtSize(x.RecordSize), f1(e.MBPerSec), e.RecordsPerSec, f1(e.TxnPerSec), f1(e.Commit.P50), f1(e.Commit.P99))
	if p := c.Peer; p != nil {
		s += fmt.Sprintf("; kfake, in memory, %s MB/s and %s / %s ms: %s its throughput, %s its commit p99",
			f1(p.MBPerSec), f1(p.Commit.P50), f1(p.Commit.P99), ratio(c.Throughput), ratio(c.CommitP99))
	}
	return s + "."
}
