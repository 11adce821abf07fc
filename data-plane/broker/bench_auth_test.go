package broker_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eddy-streams/eddy/internal/devca"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
)

// BenchmarkProduceAuth: what authentication and TLS cost a producer. The
// same default franz-go producer as BenchmarkProduceThroughput (1 KiB
// incompressible records, 16 partitions) against one broker, without
// credentials, with SASL/PLAIN, with SCRAM-SHA-512, and with SASL/PLAIN
// over TLS. Authentication happens once per connection, so only TLS should
// cost anything per byte.
//
//	go test -run '^$' -bench ProduceAuth -benchtime 100000x ./data-plane/broker
func BenchmarkProduceAuth(b *testing.B) {
	url, ts := tenants(b, "bench-auth")
	a := ts[0]
	tlsURL, tlsTs := tenants(b, "bench-auth-tls") // brokers of two stacks must not share a database
	ta := tlsTs[0]
	// Quotas would measure the throttle, not authentication.
	unlimited(b, url, a)
	unlimited(b, tlsURL, ta)
	files, err := devca.Ensure(b.TempDir(), "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsOpt := kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	plainAuth := kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())
	scramAuth := kgo.SASL(scram.Auth{User: a.keyID, Pass: a.secret}.AsSha512Mechanism())
	mechs := "--sasl-mechanisms=PLAIN,SCRAM-SHA-512"

	// One plaintext broker that also takes anonymous clients (in vc-dev),
	// and one TLS broker.
	clear := stack.Start(b, stack.Options{DatabaseURL: url, Brokers: 1, BrokerArgs: []string{mechs}})
	tlsAuth := kgo.SASL(plain.Auth{User: ta.keyID, Pass: ta.secret}.AsMechanism())
	secure := stack.Start(b, stack.Options{DatabaseURL: tlsURL, Brokers: 1,
		BrokerArgs: []string{mechs, "--tls-cert=" + files.Cert, "--tls-key=" + files.Key},
		ClientOpts: []kgo.Opt{tlsOpt, tlsAuth}})
	for _, tc := range []struct {
		name  string
		seeds []string
		opts  []kgo.Opt
	}{
		{"anonymous", clear.Bootstrap(), nil},
		{"sasl-plain", clear.Bootstrap(), []kgo.Opt{plainAuth}},
		{"sasl-scram-sha-512", clear.Bootstrap(), []kgo.Opt{scramAuth}},
		{"sasl-plain-tls", secure.Bootstrap(), []kgo.Opt{tlsOpt, tlsAuth}},
	} {
		// One topic per case, reused by every run of it: the tenant's
		// cluster allows 100 partitions.
		b.Run(tc.name, func(b *testing.B) { produceThroughput(b, tc.seeds, "bench-auth-"+tc.name, tc.opts...) })
	}
}

// produceThroughput pushes b.N 1 KiB records into a 16-partition topic,
// created if it does not exist.
func produceThroughput(b *testing.B, seeds []string, topic string, opts ...kgo.Opt) {
	cl := benchClient(b, seeds, topic, 16, opts...)
	value := make([]byte, 1024)
	rand.Read(value)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// unlimited lifts the ingress and egress quotas of t's cluster.
func unlimited(b *testing.B, url string, t tenant) {
	cp, err := store.Open(context.Background(), url, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer cp.Close()
	if _, err := cp.UpdateCluster(context.Background(), t.org, t.cluster, 0, func(c *store.Cluster) error {
		c.Limits.IngressMBps, c.Limits.EgressMBps = 100_000, 100_000
		return nil
	}); err != nil {
		b.Fatal(err)
	}
}
