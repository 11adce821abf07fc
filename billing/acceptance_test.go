package billing_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/billing"
	"github.com/eddy-streams/eddy/billing/meter"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// wire counts what a Kafka client wrote to and read from brokers, as the
// client saw it (size prefixes included).
type wire struct{ written, read atomic.Int64 }

func (w *wire) OnBrokerWrite(_ kgo.BrokerMetadata, _ int16, n int, _, _ time.Duration, _ error) {
	w.written.Add(int64(n))
}

func (w *wire) OnBrokerRead(_ kgo.BrokerMetadata, _ int16, n int, _, _ time.Duration, _ error) {
	w.read.Add(int64(n))
}

// tenant is an organisation with a ready cluster and a cluster API key.
type tenant struct {
	admin         *client.Client
	org, cluster  string
	keyID, secret string
}

func newTenant(t *testing.T, s *stack.Stack, name string) tenant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	op := client.New(s.APIURL(), client.WithToken(stack.OperatorToken))
	o, err := op.CreateOrganization(ctx, client.CreateOrganizationRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(s.APIURL(), client.WithAPIKey(o.AdminAPIKey.ID, o.AdminAPIKey.Secret))
	cl, err := admin.CreateCluster(ctx, client.CreateClusterRequest{Name: name + "-prod"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.WaitClusterReady(ctx, cl.ID, nil); err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: o.AdminServiceAccount.ID, ClusterID: cl.ID})
	if err != nil {
		t.Fatal(err)
	}
	return tenant{admin: admin, org: o.Organization.ID, cluster: cl.ID, keyID: key.ID, secret: key.Secret}
}

func (tn tenant) client(t *testing.T, s *stack.Stack, w *wire, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.Bootstrap()...),
		kgo.SASL(plain.Auth{User: tn.keyID, Pass: tn.secret}.AsMechanism()),
		kgo.WithHooks(w),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// metered sums the cluster's ingress and egress bytes as the REST API
// reports them.
func (tn tenant) metered(ctx context.Context, t *testing.T) (in, out int64) {
	t.Helper()
	u, err := tn.admin.GetUsage(ctx, client.UsageQuery{ClusterID: tn.cluster, Granularity: "month",
		From: time.Now().Add(-48 * time.Hour), To: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range u.Items {
		n, err := strconv.ParseInt(it.Quantity, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		switch it.Metric {
		case "ingress":
			in += n
		case "egress":
			out += n
		}
	}
	return in, out
}

// workload creates a topic, produces n random (incompressible) records
// of size bytes with acks=all and consumes them all back.
func workload(ctx context.Context, t *testing.T, s *stack.Stack, tn tenant, w *wire, topic string, n, size int) {
	t.Helper()
	prod := tn.client(t, s, w)
	defer prod.Close()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		v := make([]byte, size)
		rand.Read(v)
		prod.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cons := tn.client(t, s, w, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cons.Close()
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", got, n, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
		got += fs.NumRecords()
	}
}

func within(got, want int64, frac float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return float64(d) <= frac*float64(want)
}

// TestMeteredBytesMatchClients is acceptance 1: a workload of known size
// is metered within 0.1% of the bytes its clients sent and received (on
// the wire, counted by kgo hooks), and the running month's invoice is the
// sum of its lines.
func TestMeteredBytesMatchClients(t *testing.T) {
	s := stack.Start(t, stack.Options{
		DatabaseURL: pgtest.URL(t), API: true, Brokers: 2, Metrics: true,
		BrokerArgs:       []string{"--sasl-mechanisms", "PLAIN", "--metering-window", "1s", "--metering-sync", "200ms"},
		ControlPlaneArgs: []string{"--billing-sample-interval", "1s", "--billing-rate-interval", "1s"},
	})
	tn := newTenant(t, s, "metered")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var w wire
	workload(ctx, t, s, tn, &w, "orders", 3000, 1024)
	sent, received := w.written.Load(), w.read.Load()
	t.Logf("clients sent %d bytes and received %d", sent, received)

	var in, out int64
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	ok := stack.WaitFor(wctx, func() bool {
		in, out = tn.metered(ctx, t)
		return in == sent && out == received
	})
	t.Logf("metered %d bytes in, %d out (client: %d, %d)", in, out, sent, received)
	if !ok && (!within(in, sent, 0.001) || !within(out, received, 0.001)) {
		t.Fatalf("metered %d in / %d out, clients sent %d / received %d: more than 0.1%% apart", in, out, sent, received)
	}

	// Storage (from the object index) and partition- and cluster-hours
	// (from metadata) are sampled by the control plane.
	var sampled map[string]int64
	if !stack.WaitFor(wctx, func() bool {
		u, err := tn.admin.GetUsage(ctx, client.UsageQuery{ClusterID: tn.cluster, Granularity: "month"})
		if err != nil {
			t.Fatal(err)
		}
		sampled = map[string]int64{}
		for _, it := range u.Items {
			n, _ := strconv.ParseInt(it.Quantity, 10, 64)
			sampled[it.Metric] += n
		}
		// 3000 KiB-records stored; 3 partitions; one cluster.
		return sampled["storage"] >= 3000*1024 && sampled["partitions"] >= 3 && sampled["clusters"] >= 1
	}) {
		t.Errorf("sampled usage = %v", sampled)
	}

	// Operators see the meter's health.
	for _, u := range s.MetricsURLs() {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range []string{"eddy_metering_lag_seconds ", "eddy_metering_report_failures_total 0", "eddy_metering_reports_total"} {
			if !strings.Contains(string(b), "\n"+m) {
				t.Errorf("%s: no %q", u, m)
			}
		}
	}

	// The estimate rates that usage; its invoice is the sum of its lines.
	est, err := tn.admin.GetEstimate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lines billing.Nanos
	var ingressGB *big.Rat
	for _, l := range est.Invoice.Lines {
		a, err := billing.ParseAmount(l.Amount)
		if err != nil {
			t.Fatal(err)
		}
		lines += a
		if l.Metric == "ingress" {
			ingressGB, _ = new(big.Rat).SetString(l.Units)
		}
	}
	sub, err := billing.ParseAmount(est.Invoice.Subtotal)
	if err != nil || sub != lines || est.MonthToDate != billing.FormatCents(lines.Cents()) {
		t.Errorf("estimate %+v: lines sum to %s", est, lines)
	}
	if ingressGB == nil || billing.FormatDecimal(ingressGB, 6) != billing.FormatDecimal(big.NewRat(in, 1e9), 6) {
		t.Errorf("invoice ingress %v GB, metered %d bytes", ingressGB, in)
	}
}

// spool reads a broker's metering spool.
func spool(t *testing.T, b *stack.Broker) (raw []byte, pending int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.DataDir, "metering", meter.SpoolFile))
	if err != nil {
		t.Fatal(err)
	}
	var sf struct {
		Pending []json.RawMessage `json:"pending"`
	}
	if err := json.Unmarshal(raw, &sf); err != nil {
		t.Fatal(err)
	}
	return raw, len(sf.Pending)
}

// spooled sums the bytes in and out of cluster that broker b's metering
// spool holds, pending and running windows alike (the format is in the
// meter package's doc).
func spooled(t *testing.T, b *stack.Broker, cluster string) (in, out int64) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.DataDir, "metering", meter.SpoolFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0 // not synced yet
	}
	if err != nil {
		t.Fatal(err)
	}
	type window struct {
		Clusters map[string]meter.Counts `json:"clusters"`
	}
	var sf struct {
		Pending []window `json:"pending"`
		Current *window  `json:"current"`
	}
	if err := json.Unmarshal(raw, &sf); err != nil {
		t.Fatal(err)
	}
	if sf.Current != nil {
		sf.Pending = append(sf.Pending, *sf.Current)
	}
	for _, w := range sf.Pending {
		in += w.Clusters[cluster].BytesIn
		out += w.Clusters[cluster].BytesOut
	}
	return in, out
}

// TestKilledBrokersNeitherDoubleCountNorDrop is acceptance 2: brokers
// SIGKILLed in the middle of a metering window report that window after
// a restart (from their spool, under the old boot id), and replaying the
// same spool again counts nothing twice.
func TestKilledBrokersNeitherDoubleCountNorDrop(t *testing.T) {
	// An hour-long window: the kill lands inside it, so nothing of the
	// workload is reported before the restart (unless the test straddles
	// the top of the hour, which the check below allows for).
	s := stack.Start(t, stack.Options{
		DatabaseURL: pgtest.URL(t), API: true, Brokers: 2,
		BrokerArgs: []string{"--sasl-mechanisms", "PLAIN", "--metering-window", "1h", "--metering-sync", "200ms"},
	})
	tn := newTenant(t, s, "killed")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	started := time.Now()
	var w wire
	workload(ctx, t, s, tn, &w, "events", 1500, 700)
	sent, received := w.written.Load(), w.read.Load()
	// The clients are closed; once every broker synced what they sent and
	// received to its spool (or, past the top of the hour, reported it),
	// kill.
	poll.Until(t, time.Minute, "the brokers' spools to hold the workload", func() error {
		in, out := tn.metered(ctx, t)
		for id := 1; id <= 2; id++ {
			i, o := spooled(t, s.Broker(id), tn.cluster)
			in, out = in+i, out+o
		}
		if in < sent || out < received {
			return fmt.Errorf("spooled or reported %d of %d bytes in, %d of %d out", in, sent, out, received)
		}
		return nil
	})
	crashed := map[int][]byte{}
	for id := 1; id <= 2; id++ {
		s.Kill(id)
		crashed[id], _ = spool(t, s.Broker(id))
	}
	// What the brokers counted before they died, reported or spooled: what
	// a restart must report, neither more nor less. It is what the clients
	// sent, and what they received but for a response the broker wrote as
	// a client closed, which that client never read (a fetch in flight at
	// Close): at most a few KiB, where counting twice would be the whole
	// workload again.
	wantIn, wantOut := tn.metered(ctx, t)
	for id := 1; id <= 2; id++ {
		i, o := spooled(t, s.Broker(id), tn.cluster)
		wantIn, wantOut = wantIn+i, wantOut+o
	}
	if wantIn != sent || wantOut < received || wantOut > received+4096 {
		t.Fatalf("counted before the kill: %d in / %d out; clients sent %d / received %d", wantIn, wantOut, sent, received)
	}
	in, out := tn.metered(ctx, t)
	if time.Now().Truncate(time.Hour).Equal(started.Truncate(time.Hour)) && in+out >= sent+received {
		t.Fatalf("%d bytes were reported before the kill: the running window was not what the restart replayed", in+out)
	}
	t.Logf("before the restart: %d of %d bytes in, %d of %d out reported", in, sent, out, received)

	for id := 1; id <= 2; id++ {
		s.Restart(id)
	}
	ok := stack.WaitFor(ctx, func() bool {
		in, out = tn.metered(ctx, t)
		return in == wantIn && out == wantOut
	})
	t.Logf("after the restart: metered %d in, %d out (counted before the kill: %d, %d; clients: %d, %d)", in, out, wantIn, wantOut, sent, received)
	if !ok {
		t.Fatalf("after the restart: metered %d in / %d out, counted before the kill %d / %d", in, out, wantIn, wantOut)
	}

	// Replay: kill again and put back the spools as the first kill left
	// them, so the old windows are reported a second time.
	for id := 1; id <= 2; id++ {
		s.Kill(id)
		if err := os.WriteFile(filepath.Join(s.Broker(id).DataDir, "metering", meter.SpoolFile), crashed[id], 0o644); err != nil {
			t.Fatal(err)
		}
		s.Restart(id)
	}
	if !stack.WaitFor(ctx, func() bool {
		_, p1 := spool(t, s.Broker(1))
		_, p2 := spool(t, s.Broker(2))
		return p1 == 0 && p2 == 0
	}) {
		t.Fatal("the replayed spools were not reported")
	}
	if in, out = tn.metered(ctx, t); in != wantIn || out != wantOut {
		t.Fatalf("after a replay: metered %d in / %d out, want %d / %d", in, out, wantIn, wantOut)
	}
}
