// Package api is Eddy's REST API: an echo server for organisations,
// virtual clusters, topics, service accounts, API keys, role bindings and
// billing (usage, invoices, estimates, budget alerts), records (produce
// and browse, as a Kafka client of the pool: records.go), the operator's
// plans and their ceilings, the broker pool and the autoscaler's
// history (pool.go), and Kafka ACLs,
// plus the OAuth 2.0 token endpoint, JWKS and OIDC discovery that Kafka
// clients use. api/openapi.yaml is the contract (served at /openapi.yaml);
// api/client is the typed client.
//
// Conventions, the same on every route:
//   - errors are RFC 7807 application/problem+json with stable type URIs
//     (client.Problem*), validation errors name their fields;
//   - everything inside an organisation answers 404 to other tenants,
//     never 403, so ids do not leak existence;
//   - POST honours Idempotency-Key; PATCH and DELETE honour If-Match;
//   - listings page with ?limit= and an opaque ?cursor=;
//   - every response carries X-Request-Id, which is also in the logs.
//
// A Server is safe for concurrent use; Handler may be served by any number
// of http.Servers.
package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/eddy-streams/eddy/console"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/audit"
	"github.com/eddy-streams/eddy/internal/egress"
	"github.com/eddy-streams/eddy/internal/federation"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/store"
)

//go:embed openapi.yaml
var spec []byte

// Spec returns api/openapi.yaml.
func Spec() []byte { return spec }

// Config configures the REST API. Start from DefaultConfig.
type Config struct {
	// Listen is the address to serve on (eddy control-plane).
	Listen string
	// PublicURL is the base URL clients reach the API at; it is the JWT
	// issuer and prefixes the OIDC endpoints. Default: http://<Listen>.
	PublicURL string
	// AdminToken is the operator's bootstrap credential (bearer), which
	// creates organisations. Empty disables operator access.
	AdminToken string
	// KafkaBootstrap is the bootstrap address given to Kafka clients. The
	// records endpoints connect to it too, as the caller's service account
	// over OAUTHBEARER: the brokers must offer it with this control plane
	// as their --oauth-issuer (records.go).
	KafkaBootstrap string
	// MaxBodyBytes bounds request bodies, and the record data one browse
	// of the records API returns.
	MaxBodyBytes int64
	// RecordsConcurrency and RecordsConcurrencyPerOrg bound the records
	// requests in progress, in all and per organisation: each opens a
	// Kafka client from this control plane's one address, and brokers'
	// per-IP connection limits are shared by every tenant (records.go).
	RecordsConcurrency       int
	RecordsConcurrencyPerOrg int
	// TokenTTL is the lifetime of issued JWTs.
	TokenTTL time.Duration
	// Audience is the aud claim of issued JWTs.
	Audience string
	// KeyRotation is the age at which Run replaces the JWT signing key
	// (0: never). Replaced keys verify until their tokens expire.
	KeyRotation time.Duration
	// Webhooks decides which webhook URLs tenants may register; the
	// control plane hands in the ledger's policy, which also guards the
	// deliveries.
	Webhooks egress.Policy
	// Secrets seals the signing keys and the webhook secrets the API
	// creates; the control plane hands in its key-encryption key
	// (--secrets-key-file). Required: without it nothing is created.
	Secrets *seal.Sealer
	// Federation guards the fetches of the key sets of identity providers
	// organisations register (tenant-chosen URLs): --oidc-allow-*.
	Federation egress.Policy
	// AuditRetention is how long audit rows are kept (0: for ever); Run
	// deletes older ones.
	AuditRetention time.Duration
}

// DefaultConfig returns the defaults the flags start from. The API is off
// (no Listen) until one is given.
func DefaultConfig() Config {
	return Config{
		KafkaBootstrap: "127.0.0.1:9092",
		MaxBodyBytes:   1 << 20,
		// Each request holds a connection or two for at most
		// recordsTimeout; these leave most of a broker's per-IP room to
		// tenants' own clients and let no organisation take all of it.
		RecordsConcurrency:       64,
		RecordsConcurrencyPerOrg: 8,
		TokenTTL:                 identity.DefaultTokenTTL,
		Audience:                 identity.DefaultAudience,
		KeyRotation:              30 * 24 * time.Hour,
		AuditRetention:           90 * 24 * time.Hour,
	}
}

// RegisterFlags registers the API's flags on fs, with the defaults of
// DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.Listen, "api-listen", d.Listen, "address of the REST API, e.g. 127.0.0.1:8080 (empty: off)")
	fs.StringVar(&c.PublicURL, "public-url", d.PublicURL, "base URL clients use to reach the REST API; the JWT issuer (default http://<api-listen>)")
	fs.StringVar(&c.AdminToken, "admin-token", d.AdminToken, "operator bootstrap token for creating organisations (bearer); empty disables it")
	fs.StringVar(&c.KafkaBootstrap, "kafka-bootstrap", d.KafkaBootstrap, "Kafka bootstrap address handed to clients; the records API connects to it as the caller (brokers need OAUTHBEARER with this control plane as --oauth-issuer)")
	fs.Int64Var(&c.MaxBodyBytes, "api-max-body-bytes", d.MaxBodyBytes, "largest request body accepted, and about the most record data one records browse returns")
	fs.IntVar(&c.RecordsConcurrency, "api-records-concurrency", d.RecordsConcurrency, "most records API requests (produce, browse) in progress at once; more are refused with 429")
	fs.IntVar(&c.RecordsConcurrencyPerOrg, "api-records-concurrency-per-org", d.RecordsConcurrencyPerOrg, "most records API requests in progress at once for one organisation; more are refused with 429")
	fs.DurationVar(&c.TokenTTL, "token-ttl", d.TokenTTL, "lifetime of issued JWTs")
	fs.StringVar(&c.Audience, "token-audience", d.Audience, "aud claim of issued JWTs")
	fs.DurationVar(&c.KeyRotation, "signing-key-rotation", d.KeyRotation, "replace the JWT signing key when it is this old (0: never)")
	c.Federation.RegisterFlagsFor(fs, "oidc", "identity-provider JWKS URLs")
	fs.DurationVar(&c.AuditRetention, "audit-retention", d.AuditRetention, "how long audit-log rows are kept (0: for ever)")
}

// Validate checks the config, naming the flag of a bad value, and derives
// PublicURL from Listen when it is not given.
func (c *Config) Validate() error {
	switch {
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("api: --api-max-body-bytes must be positive, got %d", c.MaxBodyBytes)
	case c.RecordsConcurrency <= 0:
		return fmt.Errorf("api: --api-records-concurrency must be positive, got %d", c.RecordsConcurrency)
	case c.RecordsConcurrencyPerOrg <= 0:
		return fmt.Errorf("api: --api-records-concurrency-per-org must be positive, got %d", c.RecordsConcurrencyPerOrg)
	case c.TokenTTL <= 0:
		return fmt.Errorf("api: --token-ttl must be positive, got %s", c.TokenTTL)
	case c.AuditRetention < 0:
		return fmt.Errorf("api: --audit-retention must not be negative, got %s", c.AuditRetention)
	case c.Audience == "":
		return errors.New("api: --token-audience must not be empty")
	}
	if c.PublicURL == "" {
		if c.Listen == "" {
			return errors.New("api: --public-url is required when --api-listen is empty")
		}
		c.PublicURL = "http://" + c.Listen
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return errors.New("api: --admin-token must be at least 16 characters")
	}
	return nil
}

// IdentityConfig is the identity.Config matching c.
func (c Config) IdentityConfig() identity.Config {
	return identity.Config{Issuer: c.PublicURL, Audience: c.Audience, TokenTTL: c.TokenTTL, Secrets: c.Secrets}
}

// Server is the REST API.
type Server struct {
	cfg    Config
	st     *store.Store
	issuer *identity.Issuer
	log    *slog.Logger
	e      *echo.Echo

	patterns   []routePattern
	records    recordsLimiter
	auditLog   *audit.Writer
	federation *federation.Verifier

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the server. cfg must have been validated; reg receives the
// API's metrics and is served at /metrics (nil: no metrics).
func New(cfg Config, st *store.Store, issuer *identity.Issuer, log *slog.Logger, reg *prometheus.Registry) *Server {
	s := &Server{cfg: cfg, st: st, issuer: issuer, log: log.With("component", "api")}
	s.auditLog = audit.New(st, s.log, reg)
	s.federation = federation.New(st, cfg.Federation)
	s.records = recordsLimiter{total: cfg.RecordsConcurrency, perOrg: cfg.RecordsConcurrencyPerOrg, orgs: map[string]int{}}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eddy_api_requests_total", Help: "REST requests by route, method and status.",
	}, []string{"route", "method", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "eddy_api_request_seconds", Help: "REST request latency by route.", Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.requestID, s.observe, s.recover)
	s.e = e

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	if reg != nil {
		reg.MustRegister(s.requests, s.latency)
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	}
	e.GET("/openapi.yaml", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/yaml", spec) })
	e.GET("/.well-known/jwks.json", s.jwks)
	e.GET("/.well-known/openid-configuration", s.discovery)
	e.POST("/oauth2/token", s.token)

	v1 := e.Group("/v1", s.authenticate, s.audit)
	op := v1.Group("", s.idempotent)
	op.POST("/organizations", s.createOrg, operatorOnly)
	v1.GET("/organizations", s.listOrgs, operatorOnly)
	v1.GET("/organizations/:org_id", s.getOrg)
	v1.DELETE("/organizations/:org_id", s.deleteOrg)
	v1.GET("/organizations/:org_id/audit-log", s.listAuditLog)
	v1.GET("/organizations/:org_id/billing", s.getBillingSettings)
	v1.PUT("/organizations/:org_id/billing", s.putBillingSettings)
	op.POST("/organizations/:org_id/billing/adjustments", s.createAdjustment)
	op.POST("/plans", s.createPlan, operatorOnly)
	v1.GET("/plans", s.listPlans, operatorOnly)
	v1.GET("/plans/:plan_id", s.getPlan, operatorPlan)
	v1.PATCH("/plans/:plan_id", s.updatePlan, operatorPlan)
	v1.GET("/brokers", s.listBrokers, operatorOnly)
	v1.GET("/autoscaler/decisions", s.autoscalerDecisions, operatorOnly)

	t := v1.Group("", tenantOnly)
	ti := t.Group("", s.idempotent)
	ti.POST("/clusters", s.createCluster)
	t.GET("/clusters", s.listClusters)
	t.GET("/clusters/:cluster_id", s.getCluster)
	t.PATCH("/clusters/:cluster_id", s.updateCluster)
	t.DELETE("/clusters/:cluster_id", s.deleteCluster)

	ti.POST("/clusters/:cluster_id/topics", s.createTopic, s.allowedFrom)
	t.GET("/clusters/:cluster_id/topics", s.listTopics, s.allowedFrom)
	t.GET("/clusters/:cluster_id/topics/:topic_name", s.getTopic, s.allowedFrom)
	t.PATCH("/clusters/:cluster_id/topics/:topic_name", s.updateTopic, s.allowedFrom)
	t.DELETE("/clusters/:cluster_id/topics/:topic_name", s.deleteTopic, s.allowedFrom)

	ti.POST("/clusters/:cluster_id/role-bindings", s.createRoleBinding, s.allowedFrom)
	t.GET("/clusters/:cluster_id/role-bindings", s.listRoleBindings, s.allowedFrom)
	t.GET("/clusters/:cluster_id/role-bindings/:binding_id", s.getRoleBinding, s.allowedFrom)
	t.DELETE("/clusters/:cluster_id/role-bindings/:binding_id", s.deleteRoleBinding, s.allowedFrom)

	// Records: every service account of the organisation; the brokers
	// authorize as they do any Kafka client (records.go).
	rec := v1.Group("", tenantMember)
	// limitRecords before idempotent: a 429 must not be recorded as the
	// answer to the request's Idempotency-Key.
	rec.POST("/clusters/:cluster_id/topics/:topic_name/records", s.produceRecords, s.limitRecords, s.idempotent, s.allowedFrom)
	rec.GET("/clusters/:cluster_id/topics/:topic_name/partitions/:partition/records", s.browseRecords, s.limitRecords, s.allowedFrom)

	t.GET("/clusters/:cluster_id/consumer-groups", s.listGroups, s.allowedFrom)
	t.GET("/clusters/:cluster_id/consumer-groups/:group_id", s.getGroup, s.allowedFrom)
	t.GET("/clusters/:cluster_id/consumer-groups/:group_id/lag-history", s.getLagHistory, s.allowedFrom)
	t.GET("/clusters/:cluster_id/quota-usage", s.getQuotaUsage, s.allowedFrom)

	t.GET("/clusters/:cluster_id/share-groups", s.listShareGroups, s.allowedFrom)
	t.GET("/clusters/:cluster_id/share-groups/:group_id", s.getShareGroup, s.allowedFrom)
	t.POST("/clusters/:cluster_id/share-groups/:group_id/reset", s.resetShareGroup, s.allowedFrom)
	t.DELETE("/clusters/:cluster_id/share-groups/:group_id/offsets", s.deleteShareGroupOffsets, s.allowedFrom)

	ti.POST("/clusters/:cluster_id/acls", s.createACL, s.allowedFrom)
	t.GET("/clusters/:cluster_id/acls", s.listACLs, s.allowedFrom)
	t.GET("/clusters/:cluster_id/acls/:acl_id", s.getACL, s.allowedFrom)
	t.DELETE("/clusters/:cluster_id/acls/:acl_id", s.deleteACL, s.allowedFrom)

	ti.POST("/service-accounts", s.createServiceAccount)
	t.GET("/service-accounts", s.listServiceAccounts)
	t.GET("/service-accounts/:service_account_id", s.getServiceAccount)
	t.PATCH("/service-accounts/:service_account_id", s.updateServiceAccount)
	t.DELETE("/service-accounts/:service_account_id", s.deleteServiceAccount)

	ti.POST("/api-keys", s.createAPIKey)
	t.GET("/api-keys", s.listAPIKeys)
	t.GET("/api-keys/:key_id", s.getAPIKey)
	t.DELETE("/api-keys/:key_id", s.deleteAPIKey)

	t.GET("/audit-log", s.listOwnAuditLog)

	ti.POST("/identity-providers", s.createIdentityProvider)
	t.GET("/identity-providers", s.listIdentityProviders)
	t.GET("/identity-providers/:provider_id", s.getIdentityProvider)
	t.DELETE("/identity-providers/:provider_id", s.deleteIdentityProvider)
	ti.POST("/identity-pools", s.createIdentityPool)
	t.GET("/identity-pools", s.listIdentityPools)
	t.GET("/identity-pools/:pool_id", s.getIdentityPool)
	t.DELETE("/identity-pools/:pool_id", s.deleteIdentityPool)

	t.GET("/billing/usage", s.getUsage)
	t.GET("/billing/invoices", s.listInvoices)
	t.GET("/billing/invoices/:invoice_id", s.getInvoice)
	t.GET("/billing/estimate", s.getEstimate)
	ti.POST("/billing/budget-alerts", s.createBudgetAlert)
	t.GET("/billing/budget-alerts", s.listBudgetAlerts)
	t.GET("/billing/budget-alerts/:alert_id", s.getBudgetAlert)
	t.DELETE("/billing/budget-alerts/:alert_id", s.deleteBudgetAlert)

	// Unknown routes and methods still answer problem+json. Under /v1 they
	// need credentials (like every /v1 route) but no particular role; this
	// replaces the catch-alls the groups above registered with their
	// middleware.
	notFound := func(c echo.Context) error { return echo.ErrNotFound }
	e.RouteNotFound("/*", notFound)
	v1.RouteNotFound("", notFound)
	v1.RouteNotFound("/*", notFound)
	for _, r := range s.Routes() {
		re := regexp.MustCompile("^" + routeParam.ReplaceAllString(regexp.QuoteMeta(r.Path), "[^/]+") + "$")
		s.patterns = append(s.patterns, routePattern{re: re, method: r.Method})
	}
	return s
}

var routeParam = regexp.MustCompile(`:[a-z_]+`)

type routePattern struct {
	re     *regexp.Regexp
	method string
}

// allowed lists the methods the routes matching path accept, to tell 405
// from 404 (echo's catch-all routes would make both 404).
func (s *Server) allowed(path string) []string {
	var out []string
	for _, p := range s.patterns {
		if p.re.MatchString(path) && !slices.Contains(out, p.method) {
			out = append(out, p.method)
		}
	}
	return out
}

// Handler returns the HTTP handler: the API, the web console under
// /console and the rendered API reference at /docs (package console),
// which are not part of the API's contract.
func (s *Server) Handler() http.Handler {
	ui, docs := console.Handler(), console.DocsHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == console.Prefix || strings.HasPrefix(r.URL.Path, console.Prefix+"/") {
			ui.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == console.DocsPrefix || strings.HasPrefix(r.URL.Path, console.DocsPrefix+"/") {
			docs.ServeHTTP(w, r)
			return
		}
		s.e.ServeHTTP(w, r)
	})
}

// Routes lists every route (method and echo path, e.g.
// /v1/clusters/:cluster_id), for tests that must cover them all.
func (s *Server) Routes() []*echo.Route {
	var out []*echo.Route
	for _, r := range s.e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		out = append(out, r)
	}
	return out
}

// Run does the server's background upkeep until ctx ends: it forgets old
// idempotency records, rotates the signing key when it is due and deletes
// the keys no token needs any more.
func (s *Server) Run(ctx context.Context) {
	// The audit writer lives as long as Run: its last write happens after
	// the REST server stopped (the control plane stops it first).
	var wg sync.WaitGroup
	wg.Go(func() { s.auditLog.Run(ctx) })
	defer wg.Wait()
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		if s.cfg.AuditRetention > 0 {
			s.pruneAudit(ctx)
		}
		if err := s.st.ExpireIdempotent(ctx, idempotencyTTL); err != nil && ctx.Err() == nil {
			s.log.Warn("idempotency: expiry failed", "err", err)
		}
		if s.cfg.KeyRotation > 0 {
			if err := s.issuer.RotateIfOlder(ctx, s.cfg.KeyRotation); err != nil && ctx.Err() == nil {
				s.log.Warn("signing key rotation failed", "err", err)
			}
		}
		if n, err := s.issuer.DeleteExpired(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("deleting expired signing keys failed", "err", err)
		} else if n > 0 {
			s.log.Info("deleted expired signing keys", "keys", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Serve serves srv until ctx ends, then shuts down gracefully within
// grace, like net/http's Server.Shutdown.
func (s *Server) Serve(ctx context.Context, srv *http.Server, grace time.Duration) error {
	srv.Handler = s.Handler()
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = 10 * time.Second
	}
	if srv.ReadTimeout == 0 {
		srv.ReadTimeout = time.Minute
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = 2 * time.Minute
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

func requestID(c echo.Context) string {
	id, _ := c.Get("request_id").(string)
	return id
}

// requestID takes a sane X-Request-Id from the client or makes one, and
// echoes it in the response.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = store.NewID("req")
		}
		c.Set("request_id", id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}

// observe logs and counts every request after the error handler ran.
// It never logs headers or bodies, so secrets stay out of the logs.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" || route == "/*" {
			route = "unmatched"
		}
		code := c.Response().Status
		d := time.Since(start)
		s.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(code)).Inc()
		s.latency.WithLabelValues(route, c.Request().Method).Observe(d.Seconds())
		lvl := slog.LevelInfo
		if code >= 500 {
			lvl = slog.LevelError
		}
		s.log.Log(c.Request().Context(), lvl, "request", "request_id", requestID(c), "method", c.Request().Method,
			"route", route, "status", code, "duration", d.Round(time.Microsecond))
		return nil
	}
}

// recover turns a panic into a 500.
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("panic", "request_id", requestID(c), "panic", r)
				err = errors.New("panic")
			}
		}()
		return next(c)
	}
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "the database does not answer")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
