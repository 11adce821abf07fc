package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// TestRevocation: deleting an API key over REST ends the PLAIN
// connection authenticated with it, and deleting a service account ends
// the OAUTHBEARER connection of its token, each within 5 s; a new login
// with the old token is refused, and so is the token at the REST API.
func TestRevocation(t *testing.T) {
	url, ts := tenants(t, "revoke")
	a := ts[0] // its key belongs to the org admin service account
	ctx := context.Background()
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2, API: true, Metrics: true,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN,OAUTHBEARER", "--oauth-issuer={api}"},
		ClientOpts: []kgo.Opt{kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())}})
	rest := client.New(s.APIURL(), orgWideKey(t, url, a))
	admin := newClient(t, s, kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism()))
	createTopic(t, admin, "orders", 1, nil)

	// Two accounts, each allowed to use the cluster.
	newUser := func(name string) (client.ServiceAccount, client.APIKey) {
		sa := mustREST[client.ServiceAccount](t)(rest.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: name}))
		key := mustREST[client.APIKey](t)(rest.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID, ClusterID: a.cluster}))
		mustREST[client.RoleBinding](t)(rest.CreateRoleBinding(ctx, a.cluster, client.CreateRoleBindingRequest{ServiceAccountID: sa.ID, Role: client.RoleDeveloperWrite}))
		return sa, key
	}
	_, plainKey := newUser("plain-user")
	tokenSA, tokenKey := newUser("token-user")
	tok := mustREST[client.Token](t)(client.New(s.APIURL()).Token(ctx, tokenKey.ID, tokenKey.Secret)).AccessToken
	addr := s.Broker(1).Addr

	// PLAIN: the key is deleted.
	pc := dialPlain(t, addr, account{keyID: plainKey.ID, secret: plainKey.Secret})
	pc.do(kmsg.NewPtrMetadataRequest())
	if err := rest.DeleteAPIKey(ctx, plainKey.ID); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, pc, "PLAIN connection after its API key was deleted")

	// OAUTHBEARER: the token's service account is deleted.
	oc := dialOAuth(t, addr, tok)
	oc.do(kmsg.NewPtrMetadataRequest())
	if _, err := client.New(s.APIURL(), client.WithToken(tok)).ListServiceAccounts(ctx, client.ListOptions{}); !isStatus(err, http.StatusForbidden) {
		t.Fatalf("REST with the token before deletion: %v, want 403 (not an org admin)", err)
	}
	if err := rest.DeleteServiceAccount(ctx, tokenSA.ID); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, oc, "OAUTHBEARER connection after its service account was deleted")

	// The old token no longer logs in, nor passes the REST API.
	rc := dialRaw(t, addr)
	if code := oauthLogin(rc, tok); code != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("new OAUTHBEARER login with the old token: %v, want SASL_AUTHENTICATION_FAILED", kerr.ErrorForCode(code))
	}
	if _, err := client.New(s.APIURL(), client.WithToken(tok)).ListServiceAccounts(ctx, client.ListOptions{}); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("REST with the token of a deleted account: %v, want 401", err)
	}
	m := scrape(t, s)
	if v := metricValue(m, "eddy_broker_revoked_connections_total", `deleted="api_key"`); v < 1 {
		t.Errorf("connections closed for a deleted key counted: %v", v)
	}
	if v := metricValue(m, "eddy_broker_revoked_connections_total", `deleted="service_account"`); v < 1 {
		t.Errorf("connections closed for a deleted account counted: %v", v)
	}
}

// waitClosed sends a request every 50 ms until the broker closes rc, and
// fails if it still answers 5 s after the call.
func waitClosed(t *testing.T, rc *rawConn, what string) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		if err := rc.try(kmsg.NewPtrMetadataRequest()); err != nil {
			t.Logf("%s: closed after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: still served after 5 s", what)
}

// try sends req and reads one response frame; an error means the broker
// closed the connection.
func (rc *rawConn) try(req kmsg.Request) error {
	_, err := rc.request(req)
	return err
}

// request sends req at its version and reads the response; do is request
// failing the test on an error. Safe off the test's goroutine.
func (rc *rawConn) request(req kmsg.Request) (kmsg.Response, error) {
	rc.corr++
	b := kbin.AppendInt16(nil, req.Key())
	b = kbin.AppendInt16(b, req.GetVersion())
	b = kbin.AppendInt32(b, rc.corr)
	b = kbin.AppendNullableString(b, kmsg.StringPtr("raw-test"))
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	rc.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := rc.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(rc.br, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rc.br, body); err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	body = body[4:]
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:]
	}
	return resp, resp.ReadFrom(body)
}

// oauthLogin authenticates rc with a bearer token (SASL/OAUTHBEARER) and
// returns SaslAuthenticate's error code.
func oauthLogin(rc *rawConn, token string) int16 {
	rc.t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "OAUTHBEARER"
	if resp := rc.do(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		rc.t.Fatalf("SaslHandshake: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 1, []byte("n,,\x01auth=Bearer "+token+"\x01\x01")
	return rc.do(au).(*kmsg.SASLAuthenticateResponse).ErrorCode
}

// dialOAuth opens a connection logged in with token.
func dialOAuth(t *testing.T, addr, token string) *rawConn {
	t.Helper()
	rc := dialRaw(t, addr)
	if code := oauthLogin(rc, token); code != 0 {
		t.Fatalf("OAUTHBEARER login: %v", kerr.ErrorForCode(code))
	}
	return rc
}

// orgWideKey makes the tenant's org admin a key for the whole
// organisation (service accounts are managed outside any one cluster).
func orgWideKey(t *testing.T, dbURL string, tn tenant) client.Option {
	t.Helper()
	ctx := context.Background()
	cp, err := store.Open(ctx, dbURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	secret, hash := identity.NewSecret()
	k, err := cp.CreateAPIKey(ctx, tn.org, tn.sa, "", "org admin", hash, nil)
	if err != nil {
		t.Fatal(err)
	}
	return client.WithAPIKey(k.ID, secret)
}

func isStatus(err error, status int) bool {
	var p *client.Problem
	return errors.As(err, &p) && p.Status == status
}
