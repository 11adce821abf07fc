package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/eddy-streams/eddy/internal/freeport"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// freePorts finds a base port such that base..base+n-1 and
// base+100..base+100+n are free (eddy dev's brokers and their metrics).
func freePorts(t *testing.T, n int) int {
	t.Helper()
	base, err := freeport.Base(append(seq(0, n), seq(100, n+1)...)...)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.One()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func seq(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

// TestAutoscaleLoadStep is issue 9's acceptance test 1: `eddy dev
// --autoscale` (the local process scaler) with a small per-broker
// capacity (200 kB/s in) starts with one broker; a producer steps from a
// trickle (~10 kB/s) to about the pool's capacity (~500 kB/s, three
// brokers at most) and back. (Bytes in are request bytes: after a
// partition move the clients' retries add a short burst of small
// requests, some 100-250 kB/s for a second or two; the capacity and the
// 5 s smoothing keep that below the scale-out threshold.) The pool must scale out to three brokers
// that each lead partitions, then drain and stop two of them, back to
// one; producers and a consumer group see only retriable errors; every
// acknowledged record is read back exactly once at its acknowledged
// offset. The scale-out time (load step -> a new broker leads a
// partition) is logged.
func TestAutoscaleLoadStep(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute of load")
	}
	bin := stack.Binary(t)
	dir := t.TempDir()
	const maxBrokers, partitions, topic = 3, 6, "step"
	port := freePorts(t, maxBrokers)
	bootstrap := "127.0.0.1:" + strconv.Itoa(port)
	startDev(t, bin, dir, "--database-url", pgtest.URL(t),
		"--port", strconv.Itoa(port), "--api-port", strconv.Itoa(freePort(t)), "--anonymous",
		"--brokers", "1", "--autoscale", "--autoscale-min", "1", "--autoscale-max", strconv.Itoa(maxBrokers),
		"--autoscale-interval", "1s", "--autoscale-target", "0.6", "--autoscale-band", "0.1",
		"--autoscale-capacity-bytes-in", "200000", "--autoscale-capacity-bytes-out", "0", "--autoscale-capacity-cpu", "0",
		"--autoscale-smooth", "5s", "--autoscale-lead", "5s", "--autoscale-trend-window", "0", "--autoscale-season", "0",
		"--autoscale-scale-out-cooldown", "10s", "--autoscale-scale-in-cooldown", "6s", "--autoscale-drain-timeout", "45s")

	// The test's Kafka clients; the producer retries for as long as it
	// takes and is idempotent (kgo's default), so retries never duplicate.
	var clientWarnings atomic.Int64
	logger := &countingLogger{n: &clientWarnings}
	prod, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic), kgo.RecordRetries(1<<30),
		kgo.RecordDeliveryTimeout(90*time.Second), kgo.MetadataMinAge(200*time.Millisecond), kgo.WithLogger(logger),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // bytes in are what the autoscaler measures
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	// Bounds the whole test (the producer's records too), so it must hold
	// every wait below at its longest on a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}

	// pool: the brokers Metadata lists and which of them lead partitions.
	pool := func() (brokers []int32, leaders map[int32]int, err error) {
		mctx, mcancel := context.WithTimeout(ctx, 10*time.Second)
		defer mcancel()
		md, err := adm.Metadata(mctx, topic)
		if err != nil {
			return nil, nil, err
		}
		for _, b := range md.Brokers {
			brokers = append(brokers, b.NodeID)
		}
		slices.Sort(brokers)
		leaders = map[int32]int{}
		for _, p := range md.Topics[topic].Partitions {
			leaders[p.Leader]++
		}
		return brokers, leaders, nil
	}

	// The load: records of 1 kB at a rate the test sets (records/s).
	var rate atomic.Int64
	rate.Store(10)
	acks := &ackLog{acks: map[string]ackPos{}}
	var failed atomic.Int64
	var lastErr atomic.Value
	pctx, stopProducing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pad := strings.Repeat("x", 1000)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var i, due float64
		for pctx.Err() == nil {
			<-tick.C
			due += float64(rate.Load()) / 50
			for ; i < due; i++ {
				n := int64(i)
				prod.Produce(ctx, &kgo.Record{Key: []byte(strconv.FormatInt(n%31, 10)), Value: []byte(fmt.Sprintf("v%d-%s", n, pad))},
					func(r *kgo.Record, err error) {
						if err != nil {
							failed.Add(1)
							lastErr.Store(err)
							return
						}
						acks.add(r)
					})
			}
		}
	}()
	defer func() { stopProducing(); wg.Wait() }()

	// A consumer group follows the topic: its coordinator slot and the
	// partitions it fetches move with the pool.
	var groupRecords, groupFatal, groupRejoins atomic.Int64
	var groupErr atomic.Value
	group, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic), kgo.ConsumerGroup("step-readers"),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.MetadataMinAge(200*time.Millisecond), kgo.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pctx.Err() == nil {
			fs := group.PollFetches(pctx)
			fs.EachError(func(_ string, _ int32, err error) {
				var ke *kerr.Error
				switch {
				case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration):
					// Group membership lives in the coordinator's memory
					// (DESIGN.md): when a coordinator slot moves, the new
					// coordinator does not know the members, and kgo
					// rejoins by itself. Counted, not fatal.
					groupRejoins.Add(1)
				case errors.As(err, &ke) && !ke.Retriable:
					groupFatal.Add(1)
					groupErr.Store(err)
				}
			})
			groupRecords.Add(int64(fs.NumRecords()))
		}
	}()

	// A trickle: far below one broker's scale-out threshold.
	time.Sleep(8 * time.Second)
	if b, _, err := pool(); err != nil || len(b) != 1 {
		t.Fatalf("the pool changed under a trickle: brokers %v (%v)", b, err)
	}

	// The step: ~500 kB/s, 2.5 brokers' worth; the pool may grow to 3.
	rate.Store(500)
	stepAt := time.Now()
	var firstServing, allServing time.Duration
	for {
		b, leaders, err := pool()
		if err == nil {
			for _, id := range b {
				if id > 1 && leaders[id] > 0 && firstServing == 0 {
					firstServing = time.Since(stepAt)
					t.Logf("scale-out: broker %d leads %d partitions %v after the load step", id, leaders[id], firstServing.Round(10*time.Millisecond))
				}
			}
			if len(b) == maxBrokers && len(leaders) == maxBrokers && leaders[-1] == 0 {
				allServing = time.Since(stepAt)
				t.Logf("scale-out: all %d brokers lead partitions %v after the load step (%v)", maxBrokers, allServing.Round(10*time.Millisecond), leaders)
				break
			}
		}
		if time.Since(stepAt) > 90*time.Second {
			t.Fatalf("the pool did not grow to %d serving brokers within 90s of the load step: brokers %v, leaders %v (%v)", maxBrokers, b, leaders, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // serve the step on the full pool for a while
	ackedAtPeak := len(acks.snapshot())

	// Back to a trickle: the pool drains and stops brokers down to one.
	rate.Store(10)
	dropAt := time.Now()
	for {
		b, leaders, err := pool()
		if err == nil && len(b) == 1 && b[0] == 1 && leaders[1] == partitions {
			t.Logf("scale-in: back to broker 1 alone %v after the load dropped", time.Since(dropAt).Round(10*time.Millisecond))
			break
		}
		if time.Since(dropAt) > 100*time.Second {
			t.Fatalf("the pool did not shrink to one broker within 100s of the load drop: brokers %v, leaders %v (%v)", b, leaders, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The consumer group carries on on the one broker left.
	readAtScaleIn := groupRecords.Load()
	deadline := time.Now().Add(60 * time.Second)
	for groupRecords.Load() < readAtScaleIn+20 {
		if time.Now().After(deadline) {
			t.Fatalf("the consumer group read %d records in the minute after the scale-in", groupRecords.Load()-readAtScaleIn)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The control plane's account: both scale-ins drained their broker
	// completely (graceful moves), none had to be cut short.
	m := scrape(t, "http://127.0.0.1:"+strconv.Itoa(port+100)+"/metrics")
	if got := m[`eddy_autoscale_drains_total{outcome="completed"}`]; got != maxBrokers-1 {
		t.Errorf("completed drains: %v, want %d (metrics %v)", got, maxBrokers-1, m)
	}
	if got := m[`eddy_autoscale_drains_total{outcome="timed_out"}`]; got != 0 {
		t.Errorf("%v drains timed out", got)
	}
	if m[`eddy_autoscale_decisions_total{action="scale-out"}`] < 1 || m[`eddy_autoscale_decisions_total{action="scale-in"}`] != maxBrokers-1 {
		t.Errorf("decisions: %v scale-outs, %v scale-ins", m[`eddy_autoscale_decisions_total{action="scale-out"}`], m[`eddy_autoscale_decisions_total{action="scale-in"}`])
	}
	if m["eddy_autoscale_target_brokers"] != 1 {
		t.Errorf("target brokers %v, want 1", m["eddy_autoscale_target_brokers"])
	}
	stopProducing()
	wg.Wait()
	fctx, fcancel := context.WithTimeout(ctx, 90*time.Second)
	defer fcancel()
	if err := prod.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d records failed for good (last: %v)", n, lastErr.Load())
	}
	if n := groupFatal.Load(); n > 0 {
		t.Fatalf("the consumer group saw %d non-retriable errors (last: %v)", n, groupErr.Load())
	}
	got := acks.snapshot()
	if len(got) <= ackedAtPeak {
		t.Fatalf("nothing acknowledged after the scale-in began (%d at the peak, %d in all)", ackedAtPeak, len(got))
	}
	verifyAcks(t, bootstrap, topic, got)
	t.Logf("%d acknowledged records verified (none lost or duplicated); the group read %d and rejoined after %d coordinator moves; client warnings (retriable): %d",
		len(got), groupRecords.Load(), groupRejoins.Load(), clientWarnings.Load())
}

// ackLog records every acknowledged record: the verifier's ground truth.
type ackLog struct {
	mu   sync.Mutex
	acks map[string]ackPos // value → where the broker said it landed
}

type ackPos struct {
	partition int32
	offset    int64
}

func (a *ackLog) add(r *kgo.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acks[string(r.Value)] = ackPos{r.Partition, r.Offset}
}

func (a *ackLog) snapshot() map[string]ackPos {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]ackPos, len(a.acks))
	for k, v := range a.acks {
		out[k] = v
	}
	return out
}

// verifyAcks reads topic from the start and checks that every
// acknowledged record is there exactly once, where its ack said, and
// that no record at all is read twice.
func verifyAcks(t *testing.T, bootstrap, topic string, got map[string]ackPos) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for n := 0; n < len(got); {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d acknowledged records", n, len(got))
		}
		for _, r := range fs.Records() {
			v := string(r.Value)
			if seen[v] {
				t.Fatalf("record %.12s read twice", v)
			}
			seen[v] = true
			if a, ok := got[v]; ok {
				n++
				if a.partition != r.Partition || a.offset != r.Offset {
					t.Fatalf("record %.12s acknowledged at %d/%d but read at %d/%d", v, a.partition, a.offset, r.Partition, r.Offset)
				}
			}
		}
	}
	for v := range got {
		if !seen[v] {
			t.Fatalf("acknowledged record %.12s was lost", v)
		}
	}
}

// scrape reads a Prometheus text page into series -> value (no
// histograms needed here).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// countingLogger counts the clients' warnings and errors (retries after
// connection failures, NOT_LEADER and the like): they are logged, not
// failures.
type countingLogger struct{ n *atomic.Int64 }

func (l *countingLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }
func (l *countingLogger) Log(kgo.LogLevel, string, ...any) {
	l.n.Add(1)
}

// startDev runs `eddy dev --data-dir dir args...` until the test ends and
// waits until it prints ready; its logs are shown if the test failed.
func startDev(t *testing.T, bin, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev", "--data-dir", dir}, args...)...)
	logPath := filepath.Join(dir, "dev.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			for _, f := range append([]string{logPath}, globLogs(dir)...) {
				t.Logf("%s:\n%s", filepath.Base(f), tailFile(f, 80))
			}
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("eddy dev exited: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("eddy dev not ready after 2 minutes")
	}
}

func globLogs(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	return m
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
