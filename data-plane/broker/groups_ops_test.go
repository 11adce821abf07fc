package broker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scrape returns the text of every broker's /metrics.
func scrape(t *testing.T, s *stack.Stack) string {
	t.Helper()
	var all strings.Builder
	for _, u := range s.MetricsURLs() {
		resp, err := http.Get(u)
		if err != nil {
			continue // a broker may be restarting
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		all.Write(b)
	}
	return all.String()
}

// TestGroupLagAndRetention: consumer lag per group and partition is
// exported as a Prometheus metric by the coordinator, and the offsets of a
// group without members expire after the retention while those of a group
// with a member are kept.
func TestGroupLagAndRetention(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Metrics: true,
		BrokerArgs: append([]string{"--group-offsets-retention", "4s"}, groupArgs...)})
	cl := newClient(t, s)
	adm := kadm.NewClient(cl)
	createTopic(t, cl, "lagged", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for range 100 {
		recs = append(recs, &kgo.Record{Topic: "lagged", Value: []byte("x")})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// An active member commits offset 40; an idle group commits 70.
	mem := newClient(t, s, kgo.ConsumerGroup("active"), kgo.ConsumeTopics("lagged"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for len(mem.PollFetches(ctx).Records()) == 0 && ctx.Err() == nil {
	}
	commitAt := func(grp string, at int64, via *kgo.Client) {
		t.Helper()
		for {
			var err error
			if via != nil {
				err = commitSync(ctx, via, at)
			} else {
				var os kadm.Offsets
				os.AddOffset("lagged", 0, at, -1)
				var r kadm.OffsetResponses
				r, err = adm.CommitOffsets(ctx, grp, os)
				if err == nil {
					err = r.Error()
				}
			}
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("commit %s: %v", grp, err)
			}
			time.Sleep(100 * time.Millisecond) // retry pacing
		}
	}
	commitAt("active", 40, mem)
	commitAt("idle", 70, nil)

	want := `eddy_group_lag{group="active",partition="0",topic="lagged",virtual_cluster="vc-dev"} 60`
	var last string
	if !stack.WaitFor(ctx, func() bool { last = scrape(t, s); return strings.Contains(last, want) }) {
		t.Fatalf("no %s in metrics:\n%s", want, grepLines(last, "eddy_group"))
	}

	// The idle group's offsets expire; the active group's stay.
	if !stack.WaitFor(ctx, func() bool {
		r, err := adm.FetchOffsets(ctx, "idle")
		_, ok := r.Lookup("lagged", 0)
		return err == nil && r.Error() == nil && !ok
	}) {
		t.Fatal("offsets of the idle group did not expire")
	}
	r, err := adm.FetchOffsets(ctx, "active")
	if o, ok := r.Lookup("lagged", 0); err != nil || !ok || o.At != 40 {
		t.Fatalf("offsets of the active group: %+v %v", o, err)
	}
}

func commitSync(ctx context.Context, cl *kgo.Client, at int64) error {
	var cerr error
	cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"lagged": {0: {Epoch: -1, Offset: at}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			cerr = err
			if err == nil {
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if p.ErrorCode != 0 {
							cerr = kerr.ErrorForCode(p.ErrorCode)
						}
					}
				}
			}
		})
	return cerr
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestGroupKcatBalanced: two kcat balanced consumers (librdkafka, -G) share
// a group: together they read every record, and the group's committed
// offsets reach the end when they stop.
func TestGroupKcatBalanced(t *testing.T) {
	kcat := tool(t, "kcat")
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: groupArgs})
	cl := newClient(t, s)
	const topic, n = "kcat-group", 4000
	createTopic(t, cl, topic, 8, nil)
	produceValues(t, cl, topic, "g", n, 500, 0)

	var mu sync.Mutex
	seen := map[string]int{}
	var cmds []*exec.Cmd
	var readers sync.WaitGroup
	for range 2 {
		// -u: unbuffered output, so every value read reaches us at once.
		cmd := exec.Command(kcat, "-b", strings.Join(s.Bootstrap(), ","), "-G", "kcat-group", "-q", "-u",
			"-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=500", "-f", "%s\n", topic)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				seen[sc.Text()]++
				mu.Unlock()
			}
		}()
	}
	stopAll := func() {
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
		}
		readers.Wait()
		for _, c := range cmds {
			c.Wait()
		}
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if !stack.WaitFor(ctx, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= n }) {
		mu.Lock()
		t.Fatalf("kcat consumers read %d of %d values", len(seen), n)
	}
	// The offsets are committed, and both kcat processes are members.
	if !stack.WaitFor(ctx, func() bool {
		sum := int64(0)
		for _, o := range committed(t, s, "kcat-group") {
			sum += o
		}
		return sum == n
	}) {
		t.Fatalf("committed offsets of kcat-group do not reach %d", n)
	}
	var members int
	if !stack.WaitFor(ctx, func() bool {
		d, err := kadm.NewClient(cl).DescribeGroups(ctx, "kcat-group")
		members = len(d["kcat-group"].Members)
		return err == nil && members == 2 && d["kcat-group"].State == "Stable"
	}) {
		t.Fatalf("kcat-group has %d members, want 2 in a stable group", members)
	}
	stopAll()
}

// TestGroupKafkaJSMembers: three kafkajs members of one group consume a
// topic while it is written; one leaves mid-stream (test/js/groups.js).
// kafkajs auto-commits every 5 s or on rebalance, so a handoff may
// re-deliver; nothing may be lost.
func TestGroupKafkaJSMembers(t *testing.T) {
	node := tool(t, "node")
	_, file, _, _ := runtime.Caller(0)
	jsDir := filepath.Join(filepath.Dir(file), "..", "..", "test", "js")
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "kafkajs")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kafkajs is not installed in test/js; `make deps` runs npm ci there")
		}
		t.Skip("kafkajs is not installed in test/js (run `make deps`)")
	}
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: groupArgs})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(jsDir, "groups.js"), strings.Join(s.Bootstrap(), ","), "kafkajs-groups", "3000")
	cmd.Dir = jsDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kafkajs: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum struct{ Produced, Consumed, Duplicates int }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("unexpected output: %s", out)
	}
	t.Logf("kafkajs: %+v", sum)
	if sum.Produced != 3000 || sum.Consumed != 3000 {
		t.Fatalf("kafkajs summary %+v, want all 3000 consumed", sum)
	}
}
