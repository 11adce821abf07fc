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
