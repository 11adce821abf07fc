// Package clients_test logs in to Eddy with the Kafka client libraries
// tenants use — franz-go, librdkafka (kcat, and confluent-kafka-go for
// OIDC), kafkajs — with every SASL mechanism, over plaintext and over TLS,
// against real control-plane and broker processes. Clients that use
// OAUTHBEARER fetch their own tokens from the control plane's token
// endpoint with an API key (client credentials), as a tenant's would.
package clients_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/devca"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a running deployment with one tenant and its API key.
type env struct {
	s         *stack.Stack
	keyID     string
	secret    string
	ca        string // CA file when the brokers speak TLS, else ""
	tlsOpt    []kgo.Opt
	topic     string
	tokenURL  string
	bootstrap string
	protocol  string // librdkafka security.protocol
}

func start(t *testing.T, useTLS bool) *env {
	t.Helper()
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	cp, err := store.Open(ctx, dbURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	org, sa, _, err := cp.CreateOrg(ctx, "logins", []byte("unused"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cp.CreateCluster(ctx, org.ID, "logins", limits.Limits{IngressMBps: 10, EgressMBps: 10, MaxRequestsPerSec: 10_000, MaxConnections: 1000, MaxPartitions: 100, MaxStorageGB: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, hash := identity.NewSecret()
	key, err := cp.CreateAPIKey(ctx, org.ID, sa.ID, cl.ID, "client logins", hash, identity.SCRAMCredentials(secret))
	if err != nil {
		t.Fatal(err)
	}

	e := &env{keyID: key.ID, secret: secret, topic: "logins", protocol: "SASL_PLAINTEXT"}
	args := []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER", "--oauth-issuer={api}"}
	if useTLS {
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
		e.ca, e.protocol = files.CA, "SASL_SSL"
		e.tlsOpt = []kgo.Opt{kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})}
		args = append(args, "--tls-cert="+files.Cert, "--tls-key="+files.Key)
	}
	plainAuth := kgo.SASL(plain.Auth{User: e.keyID, Pass: e.secret}.AsMechanism())
	e.s = stack.Start(t, stack.Options{DatabaseURL: dbURL, Brokers: 2, API: true, BrokerArgs: args,
		ClientOpts: append([]kgo.Opt{plainAuth}, e.tlsOpt...)})
	e.tokenURL = e.s.APIURL() + "/oauth2/token"
	e.bootstrap = strings.Join(e.s.Bootstrap(), ",")

	adm := kadm.NewClient(e.client(t, plainAuth))
	resp, err := adm.CreateTopics(ctx, 2, 1, nil, e.topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	return e
}

func (e *env) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(e.s.Bootstrap()...)}, e.tlsOpt...), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// fetchToken gets a token from the control plane with the API key, as
// OAuth client credentials.
func (e *env) fetchToken(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.tokenURL, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(e.keyID, e.secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// TestClientLogins: every client library, every mechanism, with and
// without TLS: each produces a record and reads it back.
func TestClientLogins(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "plaintext"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			e := start(t, useTLS)
			t.Run("franz-go oauth", func(t *testing.T) { franzOAuth(t, e) })
			t.Run("librdkafka oidc", func(t *testing.T) { librdkafkaOIDC(t, e) })
			t.Run("kcat scram", func(t *testing.T) { kcatSCRAM(t, e) })
			t.Run("kafkajs", func(t *testing.T) { kafkajs(t, e) })
		})
	}
}

func franzOAuth(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var fetches atomic.Int32 // the client calls back from its own goroutines
	auth := kgo.SASL(oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
		fetches.Add(1)
		tok, err := e.fetchToken(ctx)
		return oauth.Auth{Token: tok}, err
	}))
	cl := e.client(t, auth, kgo.DefaultProduceTopic(e.topic), kgo.ConsumeTopics(e.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("franz-oauth")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitValue(t, ctx, cl, "franz-oauth")
	if fetches.Load() == 0 {
		t.Fatal("the client never fetched a token")
	}
}

func waitValue(t *testing.T, ctx context.Context, cl *kgo.Client, want string) {
	t.Helper()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("did not read %q back", want)
		}
		for _, r := range fs.Records() {
			if string(r.Value) == want {
				return
			}
		}
	}
}

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; `make deps` installs it", name)
		}
		t.Skipf("%s is not installed (run `make deps`)", name)
	}
	return p
}

func kcatSCRAM(t *testing.T, e *env) {
	kcat := tool(t, "kcat")
	args := []string{"-b", e.bootstrap, "-X", "security.protocol=" + e.protocol, "-X", "sasl.mechanisms=SCRAM-SHA-256",
		"-X", "sasl.username=" + e.keyID, "-X", "sasl.password=" + e.secret}
	if e.ca != "" {
		args = append(args, "-X", "ssl.ca.location="+e.ca)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := exec.CommandContext(ctx, kcat, append(args, "-P", "-t", e.topic, "-p", "0")...)
	prod.Stdin = strings.NewReader("kcat-scram\n")
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, kcat, append(args, "-C", "-t", e.topic, "-o", "beginning", "-e", "-q")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kcat-scram") {
		t.Fatalf("kcat -C: %v\n%s", err, out)
	}
}

func kafkajs(t *testing.T, e *env) {
	node := tool(t, "node")
	_, file, _, _ := runtime.Caller(0)
	jsDir := filepath.Join(filepath.Dir(file), "..", "js")
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "kafkajs")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kafkajs is not installed in test/js; `make deps` runs npm ci there")
		}
		t.Skip("kafkajs is not installed in test/js (run `make deps`)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{filepath.Join(jsDir, "sasl.js"), e.bootstrap, e.topic, e.keyID, e.secret, e.tokenURL}
	if e.ca != "" {
		args = append(args, e.ca)
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = jsDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kafkajs: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got map[string]bool
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("unexpected kafkajs output: %s", out)
	}
	for _, m := range []string{"plain", "scram-sha-256", "scram-sha-512", "oauthbearer"} {
		if !got[m] {
			t.Errorf("kafkajs %s: no round trip (%s)", m, out)
		}
	}
}
