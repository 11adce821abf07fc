package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/eddy-streams/eddy/api"
	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/stack"
)

// forwarder is a TCP listener that hands connections to a target set
// later: the REST API needs its --kafka-bootstrap before the brokers,
// which verify its tokens, can be started.
type forwarder struct {
	l      net.Listener
	mu     sync.Mutex
	target string
	wg     sync.WaitGroup
}

func newForwarder(t *testing.T) *forwarder {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{l: l}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			target := f.target
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				u, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{})
				go func() { io.Copy(u, c); u.Close(); close(done) }()
				io.Copy(c, u)
				c.Close()
				<-done
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); f.wg.Wait() })
	return f
}

func (f *forwarder) set(target string) {
	f.mu.Lock()
	f.target = target
	f.mu.Unlock()
}

// recordsRig is the REST API in process and a broker that accepts its
// tokens (OAUTHBEARER), with one tenant's cluster and topic.
type recordsRig struct {
	*env
	a       tenant
	cluster client.Cluster
	topic   string
	stack   *stack.Stack
}

func newRecordsRig(t *testing.T) *recordsRig {
	fwd := newForwarder(t)
	e := newEnv(t, func(c *api.Config, _ *identity.Config) { c.KafkaBootstrap = fwd.l.Addr().String() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := &recordsRig{env: e, a: e.newTenant("acme"), topic: "orders"}
	r.cluster = must[client.Cluster](t)(r.a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "prod"}))
	r.cluster = must[client.Cluster](t)(r.a.admin.WaitClusterReady(ctx, r.cluster.ID, nil))
	must[client.Topic](t)(r.a.admin.CreateTopic(ctx, r.cluster.ID, client.CreateTopicRequest{Name: r.topic, Partitions: ptr[int32](2)}))
	r.stack = stack.Start(t, stack.Options{DatabaseURL: e.dbURL, Brokers: 1,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN,OAUTHBEARER",
			"--oauth-issuer=" + r.cluster.Kafka.OAuth.Issuer, "--jwks-url=" + r.cluster.Kafka.OAuth.JWKSURI,
			"--oauth-audience=" + r.cluster.Kafka.OAuth.Audience, "--metering-window=200ms"},
		ClientOpts: []kgo.Opt{kgo.SASL(plain.Auth{User: r.a.keyID + "@" + r.cluster.ID, Pass: r.a.secret}.AsMechanism())}})
	fwd.set(r.stack.Bootstrap()[0])
	return r
}

// member returns a client for a new service account of A with role on
// the cluster ("" for none).
func (r *recordsRig) member(t *testing.T, name, role string) (*client.Client, client.ServiceAccount) {
	ctx := context.Background()
	sa := must[client.ServiceAccount](t)(r.a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: name}))
	key := must[client.APIKey](t)(r.a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID, ClusterID: r.cluster.ID}))
	if role != "" {
		must[client.RoleBinding](t)(r.a.admin.CreateRoleBinding(ctx, r.cluster.ID, client.CreateRoleBindingRequest{ServiceAccountID: sa.ID, Role: role}))
	}
	return r.client(client.WithAPIKey(key.ID, key.Secret)), sa
}

func text(s string) *string { return &s }

// TestRecords: produce over HTTP and browse by offset and by timestamp,
// text and binary data, with the caller's Kafka permissions.
func TestRecords(t *testing.T) {
	r := newRecordsRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, topic, admin := r.cluster.ID, r.topic, r.a.admin

	binary := []byte{0xff, 0x00, 0xfe, 'x'}
	res := must[client.ProduceResponse](t)(admin.ProduceRecords(ctx, cl, topic, client.ProduceRequest{Records: []client.ProduceRecord{
		{Partition: ptr[int32](1), Key: text("k1"), Value: text("héllo"), Headers: []client.RecordHeader{{Key: "trace", Value: "abc"}}},
		{Partition: ptr[int32](1), Key: nil, Value: text(base64.StdEncoding.EncodeToString(binary)), ValueEncoding: client.EncodingBase64,
			Headers: []client.RecordHeader{{Key: "bin", Value: base64.StdEncoding.EncodeToString(binary), Encoding: client.EncodingBase64}}},
		{Partition: ptr[int32](1), Key: text("k3"), Value: nil},
	}}))
	if len(res.Records) != 3 || res.Records[0].Partition != 1 || res.Records[0].Offset != 0 || res.Records[2].Offset != 2 {
		t.Fatalf("produce = %+v", res.Records)
	}

	t.Run("by offset", func(t *testing.T) {
		got := must[client.Records](t)(admin.BrowseRecords(ctx, cl, topic, 1, client.BrowseQuery{Offset: ptr[int64](0)}))
		if len(got.Records) != 3 || got.NextOffset != 3 || got.HighWatermark != 3 || got.LogStartOffset != 0 {
			t.Fatalf("browse = %+v", got)
		}
		r0, r1, r2 := got.Records[0], got.Records[1], got.Records[2]
		if *r0.Key != "k1" || *r0.Value != "héllo" || r0.ValueEncoding != client.EncodingText ||
			len(r0.Headers) != 1 || r0.Headers[0] != (client.RecordHeader{Key: "trace", Value: "abc", Encoding: client.EncodingText}) {
			t.Errorf("text record = %+v", r0)
		}
		if r1.Key != nil || r1.ValueEncoding != client.EncodingBase64 || *r1.Value != base64.StdEncoding.EncodeToString(binary) ||
			r1.Headers[0].Encoding != client.EncodingBase64 || r1.Headers[0].Value != base64.StdEncoding.EncodeToString(binary) {
			t.Errorf("binary record = %+v", r1)
		}
		if r2.Value != nil || *r2.Key != "k3" {
			t.Errorf("null value record = %+v", r2)
		}
		page := must[client.Records](t)(admin.BrowseRecords(ctx, cl, topic, 1, client.BrowseQuery{Offset: ptr[int64](1), Limit: 1}))
		if len(page.Records) != 1 || page.Records[0].Offset != 1 || page.NextOffset != 2 {
			t.Errorf("offset 1 limit 1 = %+v", page)
		}
		end := must[client.Records](t)(admin.BrowseRecords(ctx, cl, topic, 1, client.BrowseQuery{Offset: ptr[int64](3)}))
		if len(end.Records) != 0 || end.NextOffset != 3 {
			t.Errorf("at the high watermark = %+v", end)
		}
		empty := must[client.Records](t)(admin.BrowseRecords(ctx, cl, topic, 0, client.BrowseQuery{}))
		if len(empty.Records) != 0 || empty.HighWatermark != 0 {
			t.Errorf("empty partition = %+v", empty)
		}
	})

	t.Run("by timestamp", func(t *testing.T) {
		time.Sleep(20 * time.Millisecond)
		mid := time.Now()
		time.Sleep(20 * time.Millisecond)
		must[client.ProduceResponse](t)(admin.ProduceRecords(ctx, cl, topic, client.ProduceRequest{Records: []client.ProduceRecord{
			{Partition: ptr[int32](1), Value: text("later")}}}))
		got := must[client.Records](t)(admin.BrowseRecords(ctx, cl, topic, 1, client.BrowseQuery{Timestamp: &mid}))
		if len(got.Records) != 1 || *got.Records[0].Value != "later" || got.Records[0].Offset != 3 {
			t.Fatalf("from %s = %+v", mid, got)
		}
		future := time.Now().Add(time.Hour)
		if got := must[client.Records](t)(admin.BrowseRecords(ctx, cl, topic, 1, client.BrowseQuery{Timestamp: &future})); len(got.Records) != 0 || got.NextOffset != 4 {
			t.Errorf("from the future = %+v", got)
		}
	})

	t.Run("keyed records land by key", func(t *testing.T) {
		// One request per key: records of one request could share a
		// partition by stickiness alone, whatever their keys. Each must
		// land where Kafka's Java client (murmur2) would put it, and the
		// keys cover both partitions.
		byKey := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
		seen := map[int32]bool{}
		for _, k := range []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"} {
			res := must[client.ProduceResponse](t)(admin.ProduceRecords(ctx, cl, topic, client.ProduceRequest{Records: []client.ProduceRecord{
				{Key: text(k), Value: text("v")}}}))
			want := int32(byKey.Partition(&kgo.Record{Key: []byte(k)}, 2))
			if got := res.Records[0].Partition; got != want {
				t.Errorf("key %q landed on partition %d, want %d", k, got, want)
			}
			seen[want] = true
		}
		if len(seen) != 2 {
			t.Fatalf("the keys all hash to partitions %v; pick keys that cover both", seen)
		}
	})

	t.Run("metered as Kafka bytes", func(t *testing.T) {
		ingress := func() int64 {
			u := must[client.Usage](t)(admin.GetUsage(ctx, client.UsageQuery{ClusterID: cl, Metric: "ingress"}))
			var n int64
			for _, it := range u.Items {
				q, _ := strconv.ParseInt(it.Quantity, 10, 64)
				n += q
			}
			return n
		}
		before, start := ingress(), time.Now()
		// Random bytes, which the producer's compression cannot shrink.
		const size = 200_000
		payload := make([]byte, size)
		rand.Read(payload)
		must[client.ProduceResponse](t)(admin.ProduceRecords(ctx, cl, topic, client.ProduceRequest{Records: []client.ProduceRecord{
			{Partition: ptr[int32](0), Value: text(base64.StdEncoding.EncodeToString(payload)), ValueEncoding: client.EncodingBase64}}}))
		for ingress() < before+size {
			if time.Since(start) > time.Minute {
				t.Fatalf("ingress metered %d bytes before, %d after an HTTP produce of %d", before, ingress(), size)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("a small browse fetches little", func(t *testing.T) {
		const bulk = "bulk"
		must[client.Topic](t)(admin.CreateTopic(ctx, cl, client.CreateTopicRequest{Name: bulk, Partitions: ptr[int32](1)}))
		// 20 batches of 25 KiB (one request each; random bytes, which
		// compression cannot shrink): 500 KiB a 1 MiB fetch would take.
		for range 20 {
			payload := make([]byte, 25<<10)
			rand.Read(payload)
			must[client.ProduceResponse](t)(admin.ProduceRecords(ctx, cl, bulk, client.ProduceRequest{Records: []client.ProduceRecord{
				{Value: text(base64.StdEncoding.EncodeToString(payload)), ValueEncoding: client.EncodingBase64}}}))
		}
		egress := func() int64 {
			u := must[client.Usage](t)(admin.GetUsage(ctx, client.UsageQuery{ClusterID: cl, Metric: "egress"}))
			var n int64
			for _, it := range u.Items {
				q, _ := strconv.ParseInt(it.Quantity, 10, 64)
				n += q
			}
			return n
		}
		before := egress()
		got := must[client.Records](t)(admin.BrowseRecords(ctx, cl, bulk, 0, client.BrowseQuery{Offset: ptr[int64](0), Limit: 1}))
		if len(got.Records) != 1 || got.NextOffset != 1 {
			t.Fatalf("limit 1 = %d records, next_offset %d", len(got.Records), got.NextOffset)
		}
		for start := time.Now(); egress() == before; time.Sleep(200 * time.Millisecond) {
			if time.Since(start) > time.Minute {
				t.Fatal("the browse's fetch was never metered")
			}
		}
		time.Sleep(time.Second) // the rest of its windows
		if d := egress() - before; d > 200<<10 {
			t.Errorf("a limit=1 browse of 25 KiB records fetched %d bytes", d)
		}
	})

	t.Run("authorization", func(t *testing.T) {
		reader, readerSA := r.member(t, "reader", client.RoleDeveloperRead)
		writer, _ := r.member(t, "writer", client.RoleDeveloperWrite)
		nobody, _ := r.member(t, "nobody", "")
		one := client.ProduceRequest{Records: []client.ProduceRecord{{Partition: ptr[int32](0), Value: text("x")}}}

		if _, err := writer.ProduceRecords(ctx, cl, topic, one); err != nil {
			t.Errorf("developer-write produces: %v", err)
		}
		if _, err := reader.BrowseRecords(ctx, cl, topic, 0, client.BrowseQuery{}); err != nil {
			t.Errorf("developer-read browses: %v", err)
		}
		if _, err := reader.ProduceRecords(ctx, cl, topic, one); client.StatusOf(err) != http.StatusForbidden {
			t.Errorf("developer-read produces: %v, want 403", err)
		}
		if _, err := nobody.BrowseRecords(ctx, cl, topic, 0, client.BrowseQuery{}); client.StatusOf(err) != http.StatusForbidden {
			t.Errorf("no role browses: %v, want 403", err)
		}
		if _, err := nobody.ProduceRecords(ctx, cl, topic, one); client.StatusOf(err) != http.StatusForbidden {
			t.Errorf("no role produces: %v, want 403", err)
		}
		// A DENY ACL wins over the role, as on the Kafka path.
		must[client.ACL](t)(admin.CreateACL(ctx, cl, client.CreateACLRequest{Principal: "User:" + readerSA.ID,
			ResourceType: client.ACLResourceTopic, ResourceName: topic, Operation: "read", Permission: client.ACLDeny}))
		var err error
		for range 50 { // the brokers learn of the ACL from eddy_authz
			if _, err = reader.BrowseRecords(ctx, cl, topic, 1, client.BrowseQuery{}); client.StatusOf(err) == http.StatusForbidden {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if client.StatusOf(err) != http.StatusForbidden {
			t.Errorf("denied reader browses: %v, want 403", err)
		}
		// The rest of the REST API stays for org admins.
		if _, err := writer.ListTopics(ctx, cl, client.ListOptions{}); client.StatusOf(err) != http.StatusForbidden {
			t.Errorf("developer lists topics over REST: %v, want 403", err)
		}
		// The operator has no Kafka identity.
		if _, err := r.operator.BrowseRecords(ctx, cl, topic, 0, client.BrowseQuery{}); client.StatusOf(err) != http.StatusForbidden {
			t.Errorf("operator browses: %v, want 403", err)
		}
	})

	t.Run("browse to a transaction marker", func(t *testing.T) {
		const txTopic = "payments"
		must[client.Topic](t)(admin.CreateTopic(ctx, cl, client.CreateTopicRequest{Name: txTopic, Partitions: ptr[int32](1)}))
		kc, err := kgo.NewClient(kgo.SeedBrokers(r.stack.Bootstrap()...), kgo.DefaultProduceTopic(txTopic),
			kgo.TransactionalID("browse-test"),
			kgo.SASL(plain.Auth{User: r.a.keyID + "@" + cl, Pass: r.a.secret}.AsMechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer kc.Close()
		if err := kc.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := kc.ProduceSync(ctx, &kgo.Record{Value: []byte("a")}, &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := kc.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		// Two records and the commit marker (which the coordinator may
		// write after EndTransaction returns): the browse ends at the
		// marker, promptly, without showing it.
		var got client.Records
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			start := time.Now()
			got = must[client.Records](t)(admin.BrowseRecords(ctx, cl, txTopic, 0, client.BrowseQuery{Offset: ptr[int64](0)}))
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("browse to the marker took %s", took)
			}
			if got.HighWatermark == 3 || time.Now().After(deadline) {
				break
			}
		}
		if len(got.Records) != 2 || got.HighWatermark != 3 || got.NextOffset != 3 {
			t.Errorf("browse = %+v, want 2 records, next_offset = high_watermark = 3", got)
		}
	})

	t.Run("partial failure", func(t *testing.T) {
		const small = "small-records"
		must[client.Topic](t)(admin.CreateTopic(ctx, cl, client.CreateTopicRequest{Name: small, Partitions: ptr[int32](2),
			Configs: map[string]string{"max.message.bytes": "2000"}}))
		big := make([]byte, 8000) // random: compression cannot bring it under 2000
		rand.Read(big)
		res, err := admin.ProduceRecords(ctx, cl, small, client.ProduceRequest{Records: []client.ProduceRecord{
			{Partition: ptr[int32](0), Value: text(base64.StdEncoding.EncodeToString(big)), ValueEncoding: client.EncodingBase64},
			{Partition: ptr[int32](1), Value: text("fits")}}}, client.IdempotencyKey("partial-1"))
		if err != nil {
			t.Fatalf("one record refused, one landed: %v, want each record's result", err)
		}
		r0, r1 := res.Records[0], res.Records[1]
		if r0.Error == nil || r0.Error.Status != http.StatusRequestEntityTooLarge || r0.Offset != -1 {
			t.Errorf("the refused record = %+v (error %+v), want a 413 error and offset -1", r0, r0.Error)
		}
		if r1.Error != nil || r1.Partition != 1 || r1.Offset != 0 {
			t.Errorf("the record that landed = %+v (error %+v)", r1, r1.Error)
		}
		// A retry under the same key replays the answer; the record that
		// landed is not written twice.
		again := must[client.ProduceResponse](t)(admin.ProduceRecords(ctx, cl, small, client.ProduceRequest{Records: []client.ProduceRecord{
			{Partition: ptr[int32](0), Value: text(base64.StdEncoding.EncodeToString(big)), ValueEncoding: client.EncodingBase64},
			{Partition: ptr[int32](1), Value: text("fits")}}}, client.IdempotencyKey("partial-1")))
		if again.Records[1].Offset != 0 || again.Records[0].Error == nil {
			t.Errorf("retry under the same key = %+v", again.Records)
		}
		if got := must[client.Records](t)(admin.BrowseRecords(ctx, cl, small, 1, client.BrowseQuery{})); got.HighWatermark != 1 {
			t.Errorf("partition 1 holds %d records after a retry, want 1", got.HighWatermark)
		}
		// Every record refused: a problem, as before.
		if _, err := admin.ProduceRecords(ctx, cl, small, client.ProduceRequest{Records: []client.ProduceRecord{
			{Partition: ptr[int32](0), Value: text(base64.StdEncoding.EncodeToString(big)), ValueEncoding: client.EncodingBase64}}}); client.StatusOf(err) != http.StatusRequestEntityTooLarge {
			t.Errorf("every record refused: %v, want 413", err)
		}
	})

	// Last: it spends the cluster's producer-id budget for the hour.
	t.Run("no producer id per request", func(t *testing.T) {
		must[client.Cluster](t)(admin.UpdateCluster(ctx, cl, client.UpdateClusterRequest{
			Limits: &limits.Limits{ProducerIDsPerHour: 1, ProducerIDBurst: 1}}))
		// Spend the budget as a Kafka producer would, until the brokers
		// throttle (they learn of the new limits on their own schedule).
		// A fresh client each time: kgo waits out a throttle before its
		// next request on the same connection.
		throttled := false
		for start := time.Now(); !throttled && time.Since(start) < time.Minute; {
			kc, err := kgo.NewClient(kgo.SeedBrokers(r.stack.Bootstrap()...),
				kgo.SASL(plain.Auth{User: r.a.keyID + "@" + cl, Pass: r.a.secret}.AsMechanism()))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, kc)
			kc.Close()
			if err != nil {
				t.Fatal(err)
			}
			throttled = resp.ErrorCode == kerr.ThrottlingQuotaExceeded.Code
			if !throttled {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if !throttled {
			t.Fatal("InitProducerId never throttled under a burst of 1")
		}
		// HTTP produces do not need producer ids, so they still succeed.
		for i := range 3 {
			if _, err := admin.ProduceRecords(ctx, cl, topic, client.ProduceRequest{Records: []client.ProduceRecord{
				{Partition: ptr[int32](0), Value: text("after the budget")}}}); err != nil {
				t.Fatalf("produce %d with the producer-id budget spent: %v", i, err)
			}
		}
	})
}

// TestRecordsBadInput: what the records API refuses before and after
// asking the brokers, each as problem+json.
func TestRecordsBadInput(t *testing.T) {
	r := newRecordsRig(t)
	base := r.url + "/v1/clusters/" + r.cluster.ID + "/topics/" + r.topic
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		field                           string
	}{
		{"no records", "POST", "/records", "application/json", `{"records":[]}`, 400, "records"},
		{"bad encoding", "POST", "/records", "application/json", `{"records":[{"value":"x","value_encoding":"hex"}]}`, 400, "records[0].value_encoding"},
		{"bad base64", "POST", "/records", "application/json", `{"records":[{"key":"!!","key_encoding":"base64"}]}`, 400, "records[0].key"},
		{"negative partition", "POST", "/records", "application/json", `{"records":[{"partition":-1,"value":"x"}]}`, 400, "records[0].partition"},
		{"partition out of range", "POST", "/records", "application/json", `{"records":[{"partition":7,"value":"x"}]}`, 400, "records[0].partition"},
		{"empty header key", "POST", "/records", "application/json", `{"records":[{"value":"x","headers":[{"key":"","value":"v"}]}]}`, 400, "records[0].headers[0].key"},
		{"unknown field", "POST", "/records", "application/json", `{"records":[{"val":"x"}]}`, 400, "val"},
		{"not json", "POST", "/records", "text/plain", `hello`, 415, ""},
		{"too large", "POST", "/records", "application/json", `{"records":[{"value":"` + strings.Repeat("x", 2<<20) + `"}]}`, 413, ""},
		{"unknown topic", "POST", "/../nope/records", "application/json", `{"records":[{"value":"x"}]}`, 404, ""},
		{"offset and timestamp", "GET", "/partitions/0/records?offset=1&timestamp=2026-01-01T00:00:00Z", "", "", 400, "timestamp"},
		{"bad offset", "GET", "/partitions/0/records?offset=-3", "", "", 400, "offset"},
		{"bad timestamp", "GET", "/partitions/0/records?timestamp=yesterday", "", "", 400, "timestamp"},
		{"bad limit", "GET", "/partitions/0/records?limit=0", "", "", 400, "limit"},
		{"bad partition", "GET", "/partitions/x/records", "", "", 400, "partition"},
		{"unknown partition", "GET", "/partitions/9/records", "", "", 404, ""},
		{"unknown topic browse", "GET", "/../nope/partitions/0/records", "", "", 404, ""},
	}
	hc := r.raw()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := base + tc.path
			if strings.HasPrefix(tc.path, "/../") {
				url = r.url + "/v1/clusters/" + r.cluster.ID + "/topics/" + strings.TrimPrefix(tc.path, "/../")
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, url, body)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			req.SetBasicAuth(r.a.keyID, r.a.secret)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %s, want %d problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), b, tc.status)
			}
			var p client.Problem
			if err := json.NewDecoder(bytes.NewReader(b)).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
				t.Errorf("errors = %+v, want field %s", p.Errors, tc.field)
			}
		})
	}
}

// blackHole accepts connections and never answers: a broker that holds
// every records request until its context ends.
func blackHole(t *testing.T) (addr string, accepted <-chan struct{}) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 100)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String(), ch
}

// TestRecordsConcurrency: records requests beyond the per-organisation
// or the global bound are refused with 429 and Retry-After, not queued.
func TestRecordsConcurrency(t *testing.T) {
	addr, accepted := blackHole(t)
	e := newEnv(t, func(c *api.Config, _ *identity.Config) {
		c.KafkaBootstrap, c.RecordsConcurrency, c.RecordsConcurrencyPerOrg = addr, 2, 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type org struct {
		tenant
		cluster string
	}
	var orgs []org
	for _, name := range []string{"acme", "globex", "initech"} {
		o := org{tenant: e.newTenant(name)}
		o.cluster = must[client.Cluster](t)(o.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "prod"})).ID
		orgs = append(orgs, o)
	}
	hc := e.raw()
	browse := func(ctx context.Context, o org) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/clusters/"+o.cluster+"/topics/orders/partitions/0/records", nil)
		req.SetBasicAuth(o.keyID, o.secret)
		return hc.Do(req)
	}
	want429 := func(what string, o org) {
		t.Helper()
		resp, err := browse(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Content-Type") != "application/problem+json" ||
			resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: %d %s Retry-After %q %s, want 429 problem+json with Retry-After", what, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), b)
		}
	}
	// hold starts a browse of o that the black hole keeps in progress.
	var wg sync.WaitGroup
	defer wg.Wait()
	hold := func(o org) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := browse(ctx, o); err == nil {
				resp.Body.Close()
			}
		}()
		select {
		case <-accepted:
		case <-ctx.Done():
			t.Fatal("the held browse never reached the broker")
		}
	}
	defer cancel() // ends the held browses before wg.Wait

	hold(orgs[0])
	want429("a second request of one organisation", orgs[0])
	hold(orgs[1]) // another organisation still gets a slot
	want429("a request past the global bound", orgs[2])
}
