package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddy-streams/eddy/api"
	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/cluster"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const operatorToken = "operator-token-for-tests-0123456789"

// env is an in-process REST API on a fresh database, with a client
// transport that validates every request and response against
// api/openapi.yaml.
type env struct {
	t        testing.TB
	url      string
	dbURL    string
	st       *store.Store
	srv      *api.Server
	issuer   *identity.Issuer
	secrets  *seal.Sealer
	router   routers.Router
	operator *client.Client
}

type envOption func(*api.Config, *identity.Config)

func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.Spec())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	return doc
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := &env{t: t, dbURL: pgtest.URL(t)}
	st, err := store.Open(ctx, e.dbURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	e.st = st

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + l.Addr().String()
	cfg := api.DefaultConfig()
	cfg.PublicURL, cfg.AdminToken = e.url, operatorToken
	// A key-encryption key as eddy control-plane is given one.
	if cfg.Secrets, err = seal.New(seal.NewKey()); err != nil {
		t.Fatal(err)
	}
	icfg := cfg.IdentityConfig()
	for _, o := range opts {
		o(&cfg, &icfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	icfg.Issuer, icfg.Audience = cfg.PublicURL, cfg.Audience
	if icfg.TokenTTL == 0 {
		icfg.TokenTTL = cfg.TokenTTL
	}
	e.issuer, e.secrets = identity.New(icfg, st), cfg.Secrets
	if err := e.issuer.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	e.srv = api.New(cfg, st, e.issuer, log, prometheus.NewRegistry())
	hs := httptest.NewUnstartedServer(e.srv.Handler())
	hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	t.Cleanup(hs.Close)

	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cluster.NewProvisioner(st, 100*time.Millisecond, log).Run(runCtx)
	}()
	wg.Go(func() { e.srv.Run(runCtx) }) // upkeep and the audit log's writer
	t.Cleanup(func() { stop(); wg.Wait() })

	doc := loadSpec(t)
	doc.Servers = nil // match any host
	e.router, err = legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	e.operator = e.client(client.WithToken(operatorToken))
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// client returns an API client whose traffic is checked against the spec.
func (e *env) client(opts ...client.Option) *client.Client {
	hc := &http.Client{Transport: &validator{t: e.t, router: e.router, next: http.DefaultTransport}, Timeout: 60 * time.Second}
	return client.New(e.url, append([]client.Option{client.WithHTTPClient(hc)}, opts...)...)
}

// raw returns an http.Client that validates responses only: for requests
// that are invalid on purpose.
func (e *env) raw() *http.Client {
	return &http.Client{Transport: &validator{t: e.t, router: e.router, next: http.DefaultTransport, responsesOnly: true}, Timeout: 60 * time.Second}
}

// validator is an http.RoundTripper that validates requests (unless
// responsesOnly) and responses against the OpenAPI document, and fails
// the test on any 5xx.
type validator struct {
	t             testing.TB
	router        routers.Router
	next          http.RoundTripper
	responsesOnly bool
}

var noAuth = &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}

func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	route, params, routeErr := v.router.FindRoute(req)
	var in *openapi3filter.RequestValidationInput
	if routeErr == nil {
		in = &openapi3filter.RequestValidationInput{Request: req.Clone(req.Context()), PathParams: params, Route: route, Options: noAuth}
		in.Request.Body = io.NopCloser(bytes.NewReader(body))
		if !v.responsesOnly {
			if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
				v.t.Errorf("%s %s: request does not match openapi.yaml: %v", req.Method, req.URL.Path, err)
			}
		}
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	if resp.StatusCode >= 500 {
		v.t.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, rb)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		v.t.Errorf("%s %s: no X-Request-Id", req.Method, req.URL.Path)
	}
	if routeErr != nil {
		// Only unknown routes may be missing from the document.
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusUnauthorized {
			v.t.Errorf("%s %s: %d but the route is not in openapi.yaml (%v)", req.Method, req.URL.Path, resp.StatusCode, routeErr)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode >= 400 && ct != "application/problem+json" {
			v.t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", req.Method, req.URL.Path, resp.StatusCode, ct)
		}
		return resp, nil
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(rb)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		v.t.Errorf("%s %s: %d response does not match openapi.yaml: %v\n%s", req.Method, req.URL.Path, resp.StatusCode, err, rb)
	}
	return resp, nil
}

// tenant is an organisation with an admin client.
type tenant struct {
	org    client.CreatedOrganization
	admin  *client.Client
	keyID  string
	secret string
}

func (e *env) newTenant(name string) tenant {
	e.t.Helper()
	ctx := context.Background()
	o, err := e.operator.CreateOrganization(ctx, client.CreateOrganizationRequest{Name: name})
	if err != nil {
		e.t.Fatalf("create org %s: %v", name, err)
	}
	if o.AdminAPIKey.Secret == "" {
		e.t.Fatal("no admin secret")
	}
	return tenant{org: o, admin: e.client(client.WithAPIKey(o.AdminAPIKey.ID, o.AdminAPIKey.Secret)),
		keyID: o.AdminAPIKey.ID, secret: o.AdminAPIKey.Secret}
}

func ptr[T any](v T) *T { return &v }

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
