package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/stack"
)

// TestEndToEnd: the operator creates an organisation; its admin creates a
// cluster, a topic, a service account, an API key and a role binding over
// REST; a Kafka client logs in to the brokers with a token from the token
// endpoint (OAUTHBEARER, verified by the brokers against this server's
// JWKS) and with the API key (PLAIN), produces to the topic and reads it
// back. Topics created over Kafka show in REST and the other way round.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a := e.newTenant("acme")
	cl := must[client.Cluster](t)(a.admin.CreateCluster(ctx, client.CreateClusterRequest{Name: "prod"}))
	cl = must[client.Cluster](t)(a.admin.WaitClusterReady(ctx, cl.ID, nil))
	top := must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "orders", Partitions: ptr[int32](3)}))
	sa := must[client.ServiceAccount](t)(a.admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "shop"}))
	key := must[client.APIKey](t)(a.admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID, ClusterID: cl.ID}))
	// admin: besides producing and consuming, it creates topics over Kafka
	// below, which developer roles may not.
	must[client.RoleBinding](t)(a.admin.CreateRoleBinding(ctx, cl.ID, client.CreateRoleBindingRequest{ServiceAccountID: sa.ID, Role: client.RoleAdmin}))
	tok := must[client.Token](t)(e.client().Token(ctx, key.ID, key.Secret))

	// Brokers start after the cluster exists, verifying tokens against
	// this server's JWKS (the OAuth settings the cluster advertises).
	plainAuth := kgo.SASL(plain.Auth{User: key.ID, Pass: key.Secret}.AsMechanism())
	s := stack.Start(t, stack.Options{DatabaseURL: e.dbURL, Brokers: 2,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN,OAUTHBEARER",
			"--oauth-issuer=" + cl.Kafka.OAuth.Issuer, "--jwks-url=" + cl.Kafka.OAuth.JWKSURI, "--oauth-audience=" + cl.Kafka.OAuth.Audience},
		ClientOpts: []kgo.Opt{plainAuth}})

	producer, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), kgo.SASL(oauth.Auth{Token: tok.AccessToken}.AsMechanism()),
		kgo.DefaultProduceTopic(top.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	const n = 300
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "order-%d", i)})
	}
	if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce with a token from the token endpoint: %v", err)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), plainAuth, kgo.ConsumeTopics(top.Name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", len(seen), n)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	for i := range n {
		if !seen[fmt.Sprintf("order-%d", i)] {
			t.Fatalf("order-%d not read back", i)
		}
	}

	// REST shows the leaders the placer assigned and the high watermarks.
	got := must[client.Topic](t)(a.admin.GetTopic(ctx, cl.ID, top.Name))
	var total int64
	for _, p := range got.Partitions {
		if p.Leader == nil {
			t.Errorf("partition %d has no leader in REST", p.Partition)
		}
		total += p.HighWatermark
	}
	if total != n {
		t.Errorf("high watermarks sum to %d, want %d", total, n)
	}

	// A group's committed offsets and lag show in REST: commit each
	// partition's first record as consumed.
	adm := kadm.NewClient(producer)
	var offs kadm.Offsets
	for _, p := range got.Partitions {
		offs.Add(kadm.Offset{Topic: top.Name, Partition: p.Partition, At: 1, LeaderEpoch: -1})
	}
	if r, err := adm.CommitOffsets(ctx, "shop-app", offs); err != nil || r.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, r.Error())
	}
	groups := must[client.List[client.ConsumerGroup]](t)(a.admin.ListConsumerGroups(ctx, cl.ID, client.ListOptions{}))
	if len(groups.Items) != 1 || groups.Items[0].GroupID != "shop-app" || groups.Items[0].TotalLag != n-int64(len(got.Partitions)) {
		t.Fatalf("consumer groups in REST = %+v, want shop-app with lag %d", groups.Items, n-len(got.Partitions))
	}
	g := must[client.ConsumerGroupDetail](t)(a.admin.GetConsumerGroup(ctx, cl.ID, "shop-app"))
	for _, o := range g.Offsets {
		if o.CommittedOffset != 1 || o.Lag != o.HighWatermark-1 {
			t.Fatalf("group offset %+v", o)
		}
	}
	if _, err := a.admin.GetConsumerGroup(ctx, cl.ID, "no-such-group"); !client.IsNotFound(err) {
		t.Fatalf("unknown group: %v, want 404", err)
	}

	// A share group's backlog shows in REST, and resets there: kadm starts
	// it at the earliest offsets, a share consumer works the backlog off.
	starts, err := adm.ListStartOffsets(ctx, top.Name)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := adm.AlterShareGroupOffsets(ctx, "shop-queue", starts.Offsets()); err != nil || r.Error() != nil {
		t.Fatalf("alter share group offsets: %v %v", err, r.Error())
	}
	backlog := func() int64 {
		return must[client.ShareGroupDetail](t)(a.admin.GetShareGroup(ctx, cl.ID, "shop-queue")).Backlog
	}
	sgs := must[client.List[client.ShareGroup]](t)(a.admin.ListShareGroups(ctx, cl.ID, client.ListOptions{}))
	if len(sgs.Items) != 1 || sgs.Items[0].GroupID != "shop-queue" || sgs.Items[0].Backlog != n || backlog() != n {
		t.Fatalf("share groups in REST = %+v, want shop-queue with a backlog of %d", sgs.Items, n)
	}
	queue, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), plainAuth, kgo.ShareGroup("shop-queue"),
		kgo.ConsumeTopics(top.Name), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < n && ctx.Err() == nil; {
		got += len(queue.PollFetches(ctx).Records())
		queue.MarkAcks(kgo.AckAccept)
		if err := queue.FlushAcks(ctx); err != nil {
			t.Fatal(err)
		}
	}
	queue.Close()
	if !stack.WaitFor(ctx, func() bool { return backlog() == 0 }) {
		t.Fatalf("share group backlog %d after consuming everything", backlog())
	}
	if d := must[client.ShareGroupDetail](t)(a.admin.ResetShareGroup(ctx, cl.ID, "shop-queue", client.ShareGroupReset{To: "earliest"})); d.Backlog != n {
		t.Fatalf("after a reset to earliest: %+v", d)
	}
	if d := must[client.ShareGroupDetail](t)(a.admin.ResetShareGroup(ctx, cl.ID, "shop-queue", client.ShareGroupReset{To: "latest"})); d.Backlog != 0 {
		t.Fatalf("after a reset to latest: %+v", d)
	}
	if err := a.admin.DeleteShareGroupOffsets(ctx, cl.ID, "shop-queue"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin.GetShareGroup(ctx, cl.ID, "shop-queue"); !client.IsNotFound(err) {
		t.Fatalf("share group after deleting its offsets: %v, want 404", err)
	}

	// A topic created over Kafka shows in REST ...
	if r, err := adm.CreateTopic(ctx, 2, -1, map[string]*string{"retention.ms": ptr("60000")}, "from-kafka"); err != nil || r.Err != nil {
		t.Fatalf("kafka create topic: %v %v", err, r.Err)
	}
	kt := must[client.Topic](t)(a.admin.GetTopic(ctx, cl.ID, "from-kafka"))
	if kt.PartitionCount != 2 || kt.Configs["retention.ms"] != "60000" {
		t.Fatalf("Kafka-created topic in REST = %+v", kt)
	}
	// ... and REST changes show over Kafka.
	must[client.Topic](t)(a.admin.UpdateTopic(ctx, cl.ID, "from-kafka", client.UpdateTopicRequest{Partitions: ptr[int32](4)}))
	must[client.Topic](t)(a.admin.CreateTopic(ctx, cl.ID, client.CreateTopicRequest{Name: "from-rest"}))
	if err := a.admin.DeleteTopic(ctx, cl.ID, top.Name); err != nil {
		t.Fatal(err)
	}
	ok := stack.WaitFor(ctx, func() bool {
		td, err := adm.ListTopics(ctx)
		return err == nil && len(td) == 2 && td.Has("from-rest") && len(td["from-kafka"].Partitions) == 4
	})
	if !ok {
		td, err := adm.ListTopics(ctx)
		t.Fatalf("Kafka's view after REST changes: %v %v", td.Names(), err)
	}
}
