package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/devca"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// tenant is an organisation with one cluster and a cluster-scoped API key.
type tenant struct {
	org, cluster, sa, keyID, secret string
}

func newTenant(t testing.TB, cp *store.Store, name string) tenant {
	t.Helper()
	ctx := context.Background()
	org, sa, _, err := cp.CreateOrg(ctx, name, []byte("unused-admin-hash"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cp.CreateCluster(ctx, org.ID, name+"-cluster", limits.Limits{IngressMBps: 10, EgressMBps: 10, MaxRequestsPerSec: 10_000, MaxConnections: 1000, MaxPartitions: 100, MaxStorageGB: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := "secret-" + strings.ToLower(rand.Text())
	key, err := cp.CreateAPIKey(ctx, org.ID, sa.ID, cl.ID, "test", identity.HashSecret(secret), identity.SCRAMCredentials(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tenant{org: org.ID, cluster: cl.ID, sa: sa.ID, keyID: key.ID, secret: secret}
}

// tenants makes a test database with one tenant per name and returns its
// URL and the tenants.
func tenants(t testing.TB, names ...string) (string, []tenant) {
	t.Helper()
	url := pgtest.URL(t)
	cp, err := store.Open(context.Background(), url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	var out []tenant
	for _, n := range names {
		out = append(out, newTenant(t, cp, n))
	}
	return url, out
}

// testIssuer stands in for the control plane's token issuer: a JWKS
// endpoint and a signing key.
type testIssuer struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newTestIssuer(t *testing.T) *testIssuer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &testIssuer{key: k}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": "test-1", "use": "sig",
			"x": base64.RawURLEncoding.EncodeToString(k.PublicKey.X.FillBytes(make([]byte, 32))),
			"y": base64.RawURLEncoding.EncodeToString(k.PublicKey.Y.FillBytes(make([]byte, 32))),
		}}})
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *testIssuer) token(t *testing.T, tn tenant, ttl time.Duration) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": is.srv.URL, "aud": "eddy", "sub": tn.sa, "org": tn.org, "cluster": tn.cluster,
		"exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Unix(), "jti": "t-" + rand.Text(),
	})
	tok.Header["kid"] = "test-1"
	s, err := tok.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSASL: brokers with anonymous access off. PLAIN with API keys and
// OAUTHBEARER with control-plane JWTs log in; bad credentials get
// SASL_AUTHENTICATION_FAILED; unauthenticated requests are refused; two
// tenants each have a topic "orders" and see only their own.
func TestSASL(t *testing.T) {
	url, ts := tenants(t, "tenant-a", "tenant-b")
	a, b := ts[0], ts[1]
	ctx := context.Background()
	is := newTestIssuer(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER", "--oauth-issuer=" + is.srv.URL},
		ClientOpts: []kgo.Opt{kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())}})

	plainA := newClient(t, s, kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism()), kgo.DefaultProduceTopic("orders"))
	createTopic(t, plainA, "orders", 2, nil)
	if err := plainA.ProduceSync(ctx, &kgo.Record{Value: []byte("a-1")}).FirstErr(); err != nil {
		t.Fatalf("PLAIN produce: %v", err)
	}

	tokB := is.token(t, b, time.Hour)
	oauthB := newClient(t, s, kgo.SASL(oauth.Auth{Token: tokB}.AsMechanism()), kgo.DefaultProduceTopic("orders"))
	createTopic(t, oauthB, "orders", 1, nil) // the same name in another tenant
	if err := oauthB.ProduceSync(ctx, &kgo.Record{Value: []byte("b-1")}).FirstErr(); err != nil {
		t.Fatalf("OAUTHBEARER produce: %v", err)
	}

	// Each tenant sees only its own topic and data.
	for _, tc := range []struct {
		name string
		cl   *kgo.Client
		want string
		n    int
	}{{"a", plainA, "a-1", 2}, {"b", oauthB, "b-1", 1}} {
		adm := kadm.NewClient(tc.cl)
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(td) != 1 || len(td["orders"].Partitions) != tc.n {
			t.Fatalf("tenant %s sees topics %v", tc.name, td.Names())
		}
	}
	recsA := consumeAs(t, s, kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism()), 1)
	recsB := consumeAs(t, s, kgo.SASL(oauth.Auth{Token: tokB}.AsMechanism()), 1)
	if string(recsA[0].Value) != "a-1" || string(recsB[0].Value) != "b-1" {
		t.Fatalf("tenant data crossed: a read %q, b read %q", recsA[0].Value, recsB[0].Value)
	}

	// SCRAM with the same API keys: both hashes, reading what PLAIN wrote.
	for i, mech := range []sasl.Mechanism{
		scram.Auth{User: a.keyID, Pass: a.secret}.AsSha256Mechanism(),
		scram.Auth{User: a.keyID, Pass: a.secret}.AsSha512Mechanism(),
	} {
		t.Run(mech.Name(), func(t *testing.T) {
			cl := newClient(t, s, kgo.SASL(mech), kgo.DefaultProduceTopic("orders"))
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("scram")}).FirstErr(); err != nil {
				t.Fatalf("%s produce: %v", mech.Name(), err)
			}
			seen := map[string]int{}
			for _, r := range consumeAs(t, s, kgo.SASL(mech), i+2) {
				seen[string(r.Value)]++
			}
			if seen["a-1"] != 1 || seen["scram"] != i+1 || len(seen) != 2 {
				t.Fatalf("%s read %v", mech.Name(), seen)
			}
		})
	}

	// Bad credentials.
	for _, tc := range []struct {
		name string
		mech kgo.Opt
	}{
		{"wrong secret", kgo.SASL(plain.Auth{User: a.keyID, Pass: "nope"}.AsMechanism())},
		{"wrong secret scram", kgo.SASL(scram.Auth{User: a.keyID, Pass: "nope"}.AsSha256Mechanism())},
		{"unknown key scram", kgo.SASL(scram.Auth{User: "key-nope", Pass: a.secret}.AsSha512Mechanism())},
		{"unknown key", kgo.SASL(plain.Auth{User: "key-nope", Pass: a.secret}.AsMechanism())},
		{"expired token", kgo.SASL(oauth.Auth{Token: is.token(t, a, -time.Hour)}.AsMechanism())},
		{"tampered token", kgo.SASL(oauth.Auth{Token: tokB[:len(tokB)-4] + "AAAA"}.AsMechanism())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), tc.mech, kgo.RequestRetries(0))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			_, err = kmsg.NewPtrMetadataRequest().RequestWith(rctx, cl)
			if !strings.Contains(err.Error(), kerr.SaslAuthenticationFailed.Message) {
				t.Fatalf("got %v, want SASL_AUTHENTICATION_FAILED", err)
			}
		})
	}

	// A revoked (deleted) key stops logging in within the key cache's TTL
	// (5 s), with PLAIN and SCRAM alike.
	t.Run("revoked key", func(t *testing.T) {
		cp, err := store.Open(ctx, url, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer cp.Close()
		secret := "revoked-" + strings.ToLower(rand.Text())
		k, err := cp.CreateAPIKey(ctx, a.org, a.sa, a.cluster, "to revoke", identity.HashSecret(secret), identity.SCRAMCredentials(secret))
		if err != nil {
			t.Fatal(err)
		}
		login := func(mech sasl.Mechanism) error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), kgo.SASL(mech), kgo.RequestRetries(0))
			if err != nil {
				return err
			}
			defer cl.Close()
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			_, err = kmsg.NewPtrMetadataRequest().RequestWith(rctx, cl)
			return err
		}
		mechs := []sasl.Mechanism{plain.Auth{User: k.ID, Pass: secret}.AsMechanism(), scram.Auth{User: k.ID, Pass: secret}.AsSha256Mechanism()}
		for _, m := range mechs {
			if err := login(m); err != nil {
				t.Fatalf("%s login with a fresh key: %v", m.Name(), err)
			}
		}
		if err := cp.DeleteAPIKey(ctx, a.org, k.ID); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		for _, m := range mechs {
			for {
				err := login(m)
				if err != nil && strings.Contains(err.Error(), kerr.SaslAuthenticationFailed.Message) {
					break
				}
				if time.Since(revoked) > 15*time.Second {
					t.Fatalf("%s: a revoked key still logs in %s after revocation (last: %v)", m.Name(), time.Since(revoked), err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		t.Logf("revoked key refused %s after the delete", time.Since(revoked).Round(time.Millisecond))
	})

	// A mechanism the broker does not offer: UNSUPPORTED_SASL_MECHANISM,
	// with the list of what it offers.
	t.Run("unknown mechanism", func(t *testing.T) {
		req := kmsg.NewPtrSASLHandshakeRequest()
		req.Version, req.Mechanism = 1, "GSSAPI"
		body := rawFrame(t, s.Bootstrap()[0], sized(req.AppendTo(header(17, 1))))
		if body == nil {
			t.Fatal("no SaslHandshake response")
		}
		resp := kmsg.NewPtrSASLHandshakeResponse()
		resp.Version = 1
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || !slices.Contains(resp.SupportedMechanisms, "SCRAM-SHA-512") {
			t.Fatalf("got %v offering %v, want UNSUPPORTED_SASL_MECHANISM and the offered list", kerr.ErrorForCode(resp.ErrorCode), resp.SupportedMechanisms)
		}
	})

	// No SASL at all: the broker closes the connection.
	t.Run("unauthenticated", func(t *testing.T) {
		body := rawFrame(t, s.Bootstrap()[0], sized(append(header(3, 1), 0xff, 0xff, 0xff, 0xff)))
		if body != nil {
			t.Fatal("an unauthenticated Metadata request was answered")
		}
	})

	// kcat (librdkafka) with SASL/PLAIN and SCRAM.
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-512"} {
		t.Run("kcat "+mech, func(t *testing.T) { kcatRoundTrip(t, s, mech, a) })
	}
}

// kcatRoundTrip produces a record with kcat as tenant a, then reads the
// topic back with kcat and checks it sees a's records only.
func kcatRoundTrip(t *testing.T, s *stack.Stack, mech string, a tenant) {
	ctx := context.Background()
	{
		kcat := tool(t, "kcat")
		args := []string{"-b", s.Bootstrap()[0], "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=" + mech,
			"-X", "sasl.username=" + a.keyID, "-X", "sasl.password=" + a.secret}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		prod := exec.CommandContext(cctx, kcat, append(args, "-P", "-t", "orders")...)
		prod.Stdin = strings.NewReader("from-kcat\n")
		if out, err := prod.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, out)
		}
		out, err := exec.CommandContext(cctx, kcat, append(args, "-C", "-t", "orders", "-o", "beginning", "-e", "-q")...).Output()
		if err != nil {
			t.Fatalf("kcat -C: %v", err)
		}
		if !strings.Contains(string(out), "from-kcat") || !strings.Contains(string(out), "a-1") || strings.Contains(string(out), "b-1") {
			t.Fatalf("kcat read %q", out)
		}
	}
}

func consumeAs(t *testing.T, s *stack.Stack, auth kgo.Opt, want int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, s, auth, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", len(out), want)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// TestSASLOverTLS: the same logins over TLS (SASL_SSL), with franz-go and
// kcat trusting a development CA.
func TestSASLOverTLS(t *testing.T) {
	url, ts := tenants(t, "tls-tenant")
	a := ts[0]
	ctx := context.Background()
	files, err := devca.Ensure(t.TempDir(), "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsOpt := kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	auth := kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN,SCRAM-SHA-256", "--tls-cert=" + files.Cert, "--tls-key=" + files.Key},
		ClientOpts: []kgo.Opt{tlsOpt, auth}})

	cl := newClient(t, s, tlsOpt, auth, kgo.DefaultProduceTopic("secure"))
	createTopic(t, cl, "secure", 1, nil)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("over-tls")}).FirstErr(); err != nil {
		t.Fatalf("produce over TLS: %v", err)
	}
	scramCl := newClient(t, s, tlsOpt, kgo.SASL(scram.Auth{User: a.keyID, Pass: a.secret}.AsSha256Mechanism()), kgo.DefaultProduceTopic("secure"))
	if err := scramCl.ProduceSync(ctx, &kgo.Record{Value: []byte("scram-over-tls")}).FirstErr(); err != nil {
		t.Fatalf("SCRAM produce over TLS: %v", err)
	}
	// A plaintext client gets nowhere.
	plainCl, err := kgo.NewClient(kgo.SeedBrokers(s.Bootstrap()...), auth, kgo.RequestRetries(0), kgo.DialTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer plainCl.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(rctx, plainCl); err == nil {
		t.Fatal("a plaintext client was served by a TLS listener")
	}

	kcat := tool(t, "kcat")
	out, err := exec.CommandContext(ctx, kcat, "-b", s.Bootstrap()[0], "-X", "security.protocol=SASL_SSL",
		"-X", "ssl.ca.location="+files.CA, "-X", "sasl.mechanisms=PLAIN",
		"-X", "sasl.username="+a.keyID, "-X", "sasl.password="+a.secret,
		"-C", "-t", "secure", "-o", "beginning", "-e", "-q").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "over-tls") {
		t.Fatalf("kcat over SASL_SSL: %v\n%s", err, out)
	}
}

// TestSessionLifetime (KIP-368): a connection's session ends with its
// token. A client that fetches fresh tokens re-authenticates and carries
// on; one stuck with the old token is cut off once it expires.
func TestSessionLifetime(t *testing.T) {
	url, ts := tenants(t, "kip368")
	a := ts[0]
	ctx := context.Background()
	is := newTestIssuer(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER", "--oauth-issuer=" + is.srv.URL},
		ClientOpts: []kgo.Opt{kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())}})

	fresh := kgo.SASL(oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		return oauth.Auth{Token: is.token(t, a, 3*time.Second)}, nil
	}))
	stale := kgo.SASL(oauth.Auth{Token: is.token(t, a, 3*time.Second)}.AsMechanism())
	good := newClient(t, s, fresh, kgo.DefaultProduceTopic("sessions"))
	createTopic(t, good, "sessions", 1, nil)
	bad := newClient(t, s, stale, kgo.DefaultProduceTopic("sessions"), kgo.RecordRetries(1), kgo.RequestRetries(1))

	deadline := time.Now().Add(8 * time.Second)
	badFailed := false
	for i := 0; time.Now().Before(deadline); i++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := good.ProduceSync(pctx, &kgo.Record{Value: []byte("ok")}).FirstErr(); err != nil {
			cancel()
			t.Fatalf("a client with fresh tokens failed at %d: %v", i, err)
		}
		if err := bad.ProduceSync(pctx, &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
			badFailed = true
		}
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	if !badFailed {
		t.Fatal("a client whose token expired 5 s ago could still produce")
	}
}
