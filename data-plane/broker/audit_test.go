package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
)

// TestAuditLog: creating and deleting a topic through REST and through
// the Kafka admin API each leave exactly one audit row naming the
// principal; a refused produce leaves a denial row; no row holds a
// secret.
func TestAuditLog(t *testing.T) {
	url, ts := tenants(t, "audit")
	a := ts[0] // its key belongs to the org admin service account
	ctx := context.Background()
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1, API: true,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN"},
		ClientOpts: []kgo.Opt{kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())}})
	rest := client.New(s.APIURL(), client.WithAPIKey(a.keyID, a.secret))
	reader := newAccount(t, url, a, "reader")

	admin := newClient(t, s, kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism()))
	adm := kadm.NewClient(admin)
	createTopic(t, admin, "k-topic", 1, nil)
	if rs, err := adm.DeleteTopics(ctx, "k-topic"); err != nil || rs["k-topic"].Err != nil {
		t.Fatalf("delete k-topic: %v %v", err, rs["k-topic"].Err)
	}
	mustREST[client.Topic](t)(rest.CreateTopic(ctx, a.cluster, client.CreateTopicRequest{Name: "r-topic"}))
	if err := rest.DeleteTopic(ctx, a.cluster, "r-topic"); err != nil {
		t.Fatal(err)
	}
	createTopic(t, admin, "orders", 1, nil)
	mustREST[client.RoleBinding](t)(rest.CreateRoleBinding(ctx, a.cluster, client.CreateRoleBindingRequest{ServiceAccountID: reader.sa, Role: client.RoleDeveloperRead}))
	producer := newClient(t, s, reader.auth(), kgo.DisableIdempotentWrite(), kgo.RecordRetries(2))
	if err := produceErr(ctx, producer, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("developer-read produced: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	st, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	adminP, readerP := "User:"+a.sa, "User:"+reader.sa
	want := []struct {
		channel, action, name, principal, result string
	}{
		{store.AuditKafka, "topic.create", "k-topic", adminP, store.AuditOK},
		{store.AuditKafka, "topic.delete", "k-topic", adminP, store.AuditOK},
		{store.AuditREST, "topic.create", "r-topic", adminP, store.AuditOK},
		{store.AuditREST, "topic.delete", "r-topic", adminP, store.AuditOK},
		{store.AuditREST, "role-binding.create", "", adminP, store.AuditOK},
		{store.AuditKafka, "Produce", "orders", readerP, store.AuditDenied},
	}
	var rows []store.AuditEntry
	poll.Until(t, 15*time.Second, "the audit rows", func() error {
		rows = rows[:0]
		for p := (store.Page{Limit: 1000}); ; {
			page, next, err := st.AuditLog(ctx, a.org, store.AuditFilter{}, p)
			if err != nil {
				return err
			}
			rows = append(rows, page...)
			if next == "" {
				break
			}
			p.After = next
		}
		for _, w := range want {
			n := 0
			for _, r := range rows {
				if r.Channel == w.channel && r.Action == w.action && (w.name == "" || r.ResourceName == w.name) {
					if r.Principal != w.principal || r.Result != w.result || r.ClusterID != a.cluster || r.Source == "" {
						return fmt.Errorf("row %+v, want principal %s, result %s, cluster %s and a source", r, w.principal, w.result, a.cluster)
					}
					n += max(r.Count, 1)
				}
			}
			// A denial may be counted more than once (the client's
			// retries); a change exactly once.
			if n == 0 || n > 1 && w.result != store.AuditDenied {
				return fmt.Errorf("%d rows for %s %s %s, want 1 (rows: %+v)", n, w.channel, w.action, w.name, rows)
			}
		}
		return nil
	})
	// No row holds a secret, in any field.
	for _, r := range rows {
		text := fmt.Sprintf("%+v", r)
		for _, secret := range []string{a.secret, reader.secret} {
			if strings.Contains(text, secret) {
				t.Fatalf("audit row %s holds a secret", text)
			}
		}
	}
}
