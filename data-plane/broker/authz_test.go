package broker_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// account is a (non-admin) service account of a tenant with a key scoped
// to the tenant's cluster.
type account struct {
	sa, keyID, secret string
}

func (a account) auth() kgo.Opt {
	return kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())
}

func newAccount(t *testing.T, dbURL string, tn tenant, name string) account {
	t.Helper()
	ctx := context.Background()
	cp, err := store.Open(ctx, dbURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	sa, err := cp.CreateServiceAccount(ctx, tn.org, name, "")
	if err != nil {
		t.Fatal(err)
	}
	secret := "secret-" + strings.ToLower(rand.Text())
	k, err := cp.CreateAPIKey(ctx, tn.org, sa.ID, tn.cluster, "test", identity.HashSecret(secret), identity.SCRAMCredentials(secret))
	if err != nil {
		t.Fatal(err)
	}
	return account{sa: sa.ID, keyID: k.ID, secret: secret}
}

// rawConn is one Kafka connection spoken by hand (kmsg encodings), so a
// test knows every request goes over the same, already authenticated
// connection.
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	br   *bufio.Reader
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// dialPlain opens a connection logged in with a's key (SASL/PLAIN).
func dialPlain(t *testing.T, addr string, a account) *rawConn {
	t.Helper()
	rc := dialRaw(t, addr)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if resp := rc.do(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("SaslHandshake: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 1, []byte("\x00"+a.keyID+"\x00"+a.secret)
	if resp := rc.do(au).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != 0 {
		t.Fatalf("SaslAuthenticate: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	return rc
}

// do sends req at its version and reads the response; the test fails if
// the broker closes the connection.
func (rc *rawConn) do(req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	resp, err := rc.request(req)
	if err != nil {
		rc.t.Fatalf("%s: the broker closed the connection or sent what does not decode: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

func fetchReq(topic string, partition int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes = 12, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes = partition, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func produceErr(ctx context.Context, cl *kgo.Client, topic string) error {
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return cl.ProduceSync(pctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
}

// metricValue sums a metric's series whose labels contain every one of
// labels (e.g. `operation="write"`); a series without labels counts when
// no labels are asked for.
func metricValue(text, name string, labels ...string) float64 {
	re := regexp.MustCompile(`(?m)^` + name + `(?:\{([^}]*)\})? (\S+)$`)
	sum := 0.0
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if ok {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}

// TestAuthorization: roles and ACLs decide what a service account may do.
// A developer-read account consumes but cannot produce; removing its role
// binding over REST stops its open connection's next fetch within 5 s;
// ACLs made with kadm show over REST and the other way round; a DENY ACL
// overrides a role (even an org admin's); an ACL alone grants; denials
// and failed logins are counted.
func TestAuthorization(t *testing.T) {
	url, ts := tenants(t, "authz")
	a := ts[0] // its key belongs to the org admin service account
	ctx := context.Background()
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2, API: true, Metrics: true,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN"},
		ClientOpts: []kgo.Opt{kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())}})
	rest := client.New(s.APIURL(), client.WithAPIKey(a.keyID, a.secret))
	reader := newAccount(t, url, a, "reader")
	writer := newAccount(t, url, a, "writer")
	aclOnly := newAccount(t, url, a, "acl-only")

	admin := newClient(t, s, kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism()))
	adm := kadm.NewClient(admin)
	createTopic(t, admin, "orders", 2, nil)
	createTopic(t, admin, "other", 1, nil)
	createTopic(t, admin, "secret.x", 1, nil)
	for i := range 10 {
		if err := admin.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: []byte(fmt.Sprintf("v-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// developer-read: consume yes, produce no.
	rb := mustREST[client.RoleBinding](t)(rest.CreateRoleBinding(ctx, a.cluster, client.CreateRoleBindingRequest{ServiceAccountID: reader.sa, Role: client.RoleDeveloperRead}))
	readCl := newClient(t, s, reader.auth(), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	for got < 10 && pctx.Err() == nil {
		fs := readCl.PollFetches(pctx)
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("developer-read consuming: %v", e.Err)
			}
		}
		got += len(fs.Records())
	}
	cancel()
	if got < 10 {
		t.Fatalf("developer-read consumed %d of 10 records", got)
	}
	plainProducer := newClient(t, s, reader.auth(), kgo.DisableIdempotentWrite(), kgo.RecordRetries(2))
	if err := produceErr(ctx, plainProducer, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("developer-read produced: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	idemProducer := newClient(t, s, reader.auth(), kgo.RecordRetries(2))
	if err := produceErr(ctx, idemProducer, "orders"); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("developer-read idempotent producer: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	readAdm := kadm.NewClient(plainProducer)
	if r, err := readAdm.CreateTopic(ctx, 1, -1, nil, "mine"); err == nil && !errors.Is(r.Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("developer-read created a topic: %v", r.Err)
	}
	if rs, err := readAdm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny)); err != nil || len(rs) != 1 || !errors.Is(rs[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("developer-read described ACLs: %v %+v", err, rs)
	}

	// Removing the binding stops the open connection's next fetch.
	var ls map[int32]int32
	poll.Until(t, 30*time.Second, "a leader of orders/0", func() (err error) {
		ls, err = leaders(adm, "orders", 1)
		return err
	})
	rc := dialPlain(t, s.Broker(int(ls[0])).Addr, reader)
	if resp := rc.do(fetchReq("orders", 0)).(*kmsg.FetchResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("fetch before revocation: %v", kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode))
	}
	if err := rest.DeleteRoleBinding(ctx, a.cluster, rb.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		resp := rc.do(fetchReq("orders", 0)).(*kmsg.FetchResponse)
		code := resp.Topics[0].Partitions[0].ErrorCode
		if code == kerr.TopicAuthorizationFailed.Code {
			break
		}
		if code != 0 {
			t.Fatalf("fetch after revocation: %v", kerr.ErrorForCode(code))
		}
		if time.Since(revoked) > 5*time.Second {
			t.Fatal("the open connection could still fetch 5 s after its role binding was removed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("revocation took effect on the open connection after %v", time.Since(revoked).Round(time.Millisecond))

	// developer-write produces; a DENY made with kadm overrides the role.
	mustREST[client.RoleBinding](t)(rest.CreateRoleBinding(ctx, a.cluster, client.CreateRoleBindingRequest{ServiceAccountID: writer.sa, Role: client.RoleDeveloperWrite}))
	writeCl := newClient(t, s, writer.auth(), kgo.RecordRetries(2))
	if err := produceErr(ctx, writeCl, "orders"); err != nil {
		t.Fatalf("developer-write produce: %v", err)
	}
	denyWriter := kadm.NewACLs().Deny("User:" + writer.sa).Topics("orders").Operations(kadm.OpWrite)
	if rs, err := adm.CreateACLs(ctx, denyWriter); err != nil || rs[0].Err != nil {
		t.Fatalf("kadm CreateACLs: %v %v", err, rs)
	}
	denyAdmin := kadm.NewACLs().Deny("User:" + a.sa).Topics("secret.").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpAll)
	if rs, err := adm.CreateACLs(ctx, denyAdmin); err != nil || rs[0].Err != nil {
		t.Fatalf("kadm CreateACLs: %v %v", err, rs)
	}
	waitErr(t, func() error { return produceErr(ctx, writeCl, "orders") }, kerr.TopicAuthorizationFailed)
	if err := produceErr(ctx, admin, "secret.x"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("org admin produced to a denied topic: %v", err)
	}
	if err := produceErr(ctx, admin, "orders"); err != nil {
		t.Fatalf("org admin produce next to a deny: %v", err)
	}

	// Both ACLs show in kadm and in REST.
	described, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil || len(described) != 1 || described[0].Err != nil || len(described[0].Described) != 2 {
		t.Fatalf("kadm DescribeACLs: %v %+v", err, described)
	}
	listed := mustREST[client.List[client.ACL]](t)(rest.ListACLs(ctx, a.cluster, client.ListOptions{}))
	var adminDeny client.ACL
	for _, x := range listed.Items {
		if x.Principal == "User:"+a.sa {
			adminDeny = x
		}
	}
	if len(listed.Items) != 2 || adminDeny.PatternType != "prefixed" || adminDeny.Operation != "all" || adminDeny.Permission != "deny" || adminDeny.Host != "*" {
		t.Fatalf("REST lists %+v", listed.Items)
	}
	// Deleting with kadm and with REST lifts the denials.
	if rs, err := adm.DeleteACLs(ctx, kadm.NewACLs().Deny("User:"+writer.sa).DenyHosts().Topics("orders").Operations(kadm.OpWrite)); err != nil || len(rs) != 1 || len(rs[0].Deleted) != 1 {
		t.Fatalf("kadm DeleteACLs: %v %+v", err, rs)
	}
	if err := rest.DeleteACL(ctx, a.cluster, adminDeny.ID); err != nil {
		t.Fatal(err)
	}
	waitErr(t, func() error { return produceErr(ctx, writeCl, "orders") }, nil)
	waitErr(t, func() error { return produceErr(ctx, admin, "secret.x") }, nil)

	// An ACL made over REST is a grant of its own: read on topics "ord*"
	// and groups "g-*"; listings show only what it may describe.
	for _, req := range []client.CreateACLRequest{
		{Principal: "User:" + aclOnly.sa, ResourceType: "topic", ResourceName: "ord", PatternType: "prefixed", Operation: "read", Permission: "allow"},
		{Principal: "User:" + aclOnly.sa, ResourceType: "group", ResourceName: "g-", PatternType: "prefixed", Operation: "read", Permission: "allow"},
	} {
		mustREST[client.ACL](t)(rest.CreateACL(ctx, a.cluster, req))
	}
	aclCl := newClient(t, s, aclOnly.auth())
	var names []string
	waitErr(t, func() error {
		td, err := kadm.NewClient(aclCl).ListTopics(ctx)
		names = td.Names()
		if err == nil && (len(names) != 1 || names[0] != "orders") {
			err = fmt.Errorf("lists topics %v", names)
		}
		return err
	}, nil)
	grp := newClient(t, s, aclOnly.auth(), kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("g-1"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got = 0
	pctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	for got < 10 && pctx.Err() == nil {
		fs := grp.PollFetches(pctx)
		got += len(fs.Records())
	}
	cancel()
	if got < 10 {
		t.Fatalf("the ACL-only account consumed %d records in group g-1", got)
	}
	if err := grp.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit in g-1: %v", err)
	}
	if _, err := kadm.NewClient(aclCl).FetchOffsets(ctx, "other-group"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("offsets of a group without a grant: %v", err)
	}

	// A KIP-848 regex subscription matches only topics the member may
	// DESCRIBE, and never internal topics: ".*" gives the ACL-only account
	// orders alone, the org admin every topic but __consumer_offsets.
	for _, tc := range []struct {
		cl    *kgo.Client
		group string
		want  string
	}{
		{aclCl, "g-regex", "orders"},
		{admin, "admin-regex", "orders,other,secret.x"},
	} {
		re := ".*"
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.RebalanceTimeoutMillis = tc.group, "m-"+tc.group, 30000
		req.SubscribedTopicRegex, req.Topics = &re, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if resp, err := req.RequestWith(ctx, tc.cl); err != nil || resp.ErrorCode != 0 {
			t.Fatalf("%s: regex heartbeat: %v %+v", tc.group, err, resp)
		}
		g, err := describeConsumerGroup(ctx, admin, tc.group)
		if err != nil || len(g.Members) != 1 {
			t.Fatalf("%s: describe: %v", tc.group, err)
		}
		if got := strings.Join(g.Members[0].SubscribedTopics, ","); got != tc.want {
			t.Errorf("%s: regex .* resolved to %s, want %s", tc.group, got, tc.want)
		}
	}

	// Audit: denials and failed logins are counted.
	bad := newClient(t, s, kgo.SASL(plain.Auth{User: reader.keyID, Pass: "wrong"}.AsMechanism()), kgo.RequestRetries(0))
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	kmsg.NewPtrMetadataRequest().RequestWith(rctx, bad)
	rcancel()
	m := scrape(t, s)
	if v := metricValue(m, "eddy_broker_authz_denials_total", `resource_type="topic"`, `operation="write"`); v < 2 {
		t.Errorf("topic write denials counted: %v", v)
	}
	if v := metricValue(m, "eddy_broker_auth_failures_total", `mechanism="PLAIN"`, `reason="credentials"`); v < 1 {
		t.Errorf("failed logins counted: %v", v)
	}
}

func mustREST[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// waitErr polls f until its error is want (nil: success), for up to a
// minute: authorization changes reach brokers asynchronously.
func waitErr(t *testing.T, f func() error, want error) {
	t.Helper()
	poll.Until(t, time.Minute, fmt.Sprintf("error %v", want), func() error {
		err := f()
		if (want == nil && err == nil) || (want != nil && errors.Is(err, want)) {
			return nil
		}
		return fmt.Errorf("got %v", err)
	})
}
