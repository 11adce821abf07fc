package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
)

// from dials the brokers from local address ip (any of 127.0.0.0/8 is
// this machine's loopback).
func from(ip string) kgo.Opt {
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return d.DialContext(ctx, network, host)
	})
}

// TestAllowList (issue 24, acceptance 5): a cluster whose allow-list
// excludes 127.0.0.2 refuses a Kafka connection from that address with
// SASL_AUTHENTICATION_FAILED and accepts one from 127.0.0.1; a DENY ACL
// on a CIDR block refuses a produce from inside it and not from outside.
func TestAllowList(t *testing.T) {
	url, ts := tenants(t, "allow")
	a := ts[0]
	ctx := context.Background()
	auth := kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN"}, ClientOpts: []kgo.Opt{auth}})
	st, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	setList := func(list ...string) {
		t.Helper()
		if _, err := st.UpdateCluster(ctx, a.org, a.cluster, 0, func(c *store.Cluster) error { c.AllowedCIDRs = list; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// expect polls produces, each from a new client (a connection is
	// checked when it authenticates), until one ends with want.
	expect := func(ip string, want error) {
		t.Helper()
		poll.Until(t, 15*time.Second, "a produce from "+ip+" to end with "+fmt.Sprint(want), func() error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), auth, from(ip), kgo.DisableIdempotentWrite(), kgo.RecordRetries(1))
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := produceErr(ctx, cl, "orders"); !errors.Is(err, want) && (want != nil || err != nil) {
				return fmt.Errorf("got %v", err)
			}
			return nil
		})
	}
	createTopic(t, newClient(t, s, auth), "orders", 1, nil)

	expect("127.0.0.2", nil) // no list: from anywhere
	setList("127.0.0.1/32")
	expect("127.0.0.2", kerr.SaslAuthenticationFailed)
	expect("127.0.0.1", nil)

	// Both may connect; a DENY on 127.0.0.2/31 refuses the one inside it
	// although its service account is an org admin.
	setList("127.0.0.0/8")
	if _, err := st.CreateACL(ctx, a.org, acl.ACL{Cluster: a.cluster, Principal: acl.AnyPrincipal, ResourceType: acl.Topic,
		ResourceName: "orders", PatternType: acl.Literal, Operation: acl.Write, Permission: acl.Deny, Host: "127.0.0.2/31"}); err != nil {
		t.Fatal(err)
	}
	expect("127.0.0.2", kerr.TopicAuthorizationFailed)
	expect("127.0.0.1", nil)
}

// TestAllowListClosesOpen: narrowing a cluster's allow-list closes the
// open connections from addresses it no longer allows, an API key's
// (PLAIN) as well as a token's (OAUTHBEARER), whose sessions would
// otherwise go on; a client still inside the list keeps producing. Each
// client produced once before the change, so its connection is open.
func TestAllowListClosesOpen(t *testing.T) {
	url, ts := tenants(t, "narrow")
	a := ts[0]
	ctx := context.Background()
	is := newTestIssuer(t)
	plainAuth := kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1, Metrics: true,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN,OAUTHBEARER", "--oauth-issuer=" + is.srv.URL},
		ClientOpts: []kgo.Opt{plainAuth}})
	st, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	createTopic(t, newClient(t, s, plainAuth), "orders", 1, nil)

	clientFrom := func(ip string, auth kgo.Opt) *kgo.Client {
		cl := newClient(t, s, auth, from(ip), kgo.DisableIdempotentWrite(), kgo.RecordRetries(1))
		if err := produceErr(ctx, cl, "orders"); err != nil {
			t.Fatalf("produce from %s before the change: %v", ip, err)
		}
		return cl
	}
	inside := clientFrom("127.0.0.1", plainAuth)
	outside := map[string]*kgo.Client{
		"PLAIN":       clientFrom("127.0.0.2", plainAuth),
		"OAUTHBEARER": clientFrom("127.0.0.2", kgo.SASL(oauth.Auth{Token: is.token(t, a, time.Hour)}.AsMechanism())),
	}

	if _, err := st.UpdateCluster(ctx, a.org, a.cluster, 0, func(c *store.Cluster) error {
		c.AllowedCIDRs = []string{"127.0.0.1/32"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for mech, cl := range outside {
		// Its open connection is closed; the client's new one is refused.
		poll.Until(t, 15*time.Second, "the "+mech+" client from 127.0.0.2 to be closed and refused", func() error {
			if err := produceErr(ctx, cl, "orders"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				return fmt.Errorf("produce: %v", err)
			}
			return nil
		})
	}
	if err := produceErr(ctx, inside, "orders"); err != nil {
		t.Fatalf("produce from 127.0.0.1, inside the list: %v", err)
	}
	if v := metricValue(scrape(t, s), "eddy_broker_revoked_connections_total", `deleted="allow_list"`); v < 2 {
		t.Errorf("connections closed for the allow-list counted: %v, want at least 2", v)
	}
}
