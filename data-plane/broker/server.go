// Package broker is Eddy's Kafka-protocol front end: it accepts
// connections, decodes requests with franz-go's kmsg, dispatches them to
// one handler per API (one file each, opening with the versions supported
// and any deliberate deviation from Kafka) and writes responses in request
// order, one request at a time per connection, as Kafka brokers do.
//
// A Server also keeps the broker's session in Postgres alive (heartbeats),
// refreshes its routing view (brokers, topics, leaders, coordinator slots)
// and hands the partitions placed on it to the leader.Manager.
//
// Shutdown drains like net/http: stop accepting, let in-flight requests
// finish until the deadline, flush and commit everything acknowledged,
// release partitions, end the session. Serve runs these parts as one
// ordered list (internal/service): its Adds are the start order, its
// StopOrder the shutdown order.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	billmeter "github.com/eddy-streams/eddy/billing/meter"
	"github.com/eddy-streams/eddy/data-plane/group"
	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/data-plane/quota"
	"github.com/eddy-streams/eddy/data-plane/sasl"
	"github.com/eddy-streams/eddy/data-plane/share"
	"github.com/eddy-streams/eddy/internal/audit"
	"github.com/eddy-streams/eddy/internal/egress"
	"github.com/eddy-streams/eddy/internal/federation"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/loopback"
	"github.com/eddy-streams/eddy/internal/service"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrServerClosed is returned by Run after a shutdown.
var ErrServerClosed = errors.New("broker: server closed")

// Config is a broker's configuration. Start from DefaultConfig (or
// RegisterFlags); Validate derives Advertise, JWKSURL and the parts'
// broker ids.
type Config struct {
	ID int32
	// Listen is the address the Kafka listener binds; Advertise is what
	// Metadata tells clients (defaults to Listen).
	Listen    string
	Advertise string
	Rack      string
	// AnonymousCluster is the virtual cluster unauthenticated connections
	// belong to (development only); empty requires SASL on every connection.
	AnonymousCluster string
	// SASL: mechanisms offered (PLAIN with API keys, OAUTHBEARER with the
	// control plane's JWTs), the token issuer and audience, and its JWKS.
	SASLMechanisms []string
	OAuthIssuer    string
	OAuthAudience  string
	JWKSURL        string
	// Federation guards the fetches of the key sets of identity providers
	// organisations register (tenant-chosen URLs): --oidc-allow-*.
	Federation egress.Policy
	// APIKeyCacheTTL bounds how long logins trust a cached API key or
	// service account lookup; deletions announced on eddy_revoke drop the
	// entry at once (revoke.go), so this only matters if one is lost.
	APIKeyCacheTTL time.Duration
	// TLS (SASL_SSL): PEM certificate chain and key. Without them the
	// listener is plaintext, which is refused on non-loopback addresses
	// unless AllowPlaintext is set.
	TLSCert, TLSKey string
	AllowPlaintext  bool
	// SessionTTL is how long the broker's session outlives its last
	// heartbeat; a broker that dies loses its partitions this long after.
	SessionTTL        time.Duration
	HeartbeatInterval time.Duration
	// MetadataInterval is how often the broker checks which brokers are
	// live (a few rows): a session that expires is announced by no
	// NOTIFY. Every other change of the routing view (topics, leaders,
	// clusters, coordinator slots) is, and makes the broker re-read the
	// whole view at once; so do a change of live brokers and a failed
	// re-read. What an idle broker costs Postgres thus does not grow with
	// the partitions it routes.
	MetadataInterval time.Duration
	// MetadataFullInterval is how often the whole routing view is re-read
	// even though nothing announced a change: a safety net, not the way
	// changes arrive.
	MetadataFullInterval time.Duration
	// QuotaInterval is how often the broker recomputes its share of every
	// cluster's quotas from the pool's load reports (quota.go).
	QuotaInterval time.Duration
	// MaxRequestBytes caps one request frame (Kafka's socket.request.max.bytes).
	MaxRequestBytes int
	// Conn bounds what a connection may cost the broker (connlimits.go).
	Conn ConnLimits
	// FetchSessions bounds the fetch sessions kept (fetchsession.go).
	FetchSessions FetchSessionLimits
	// TransactionMaxTimeout caps the transaction.timeout.ms a producer may
	// ask for (Kafka's transaction.max.timeout.ms): InitProducerId with a
	// longer one gets INVALID_TRANSACTION_TIMEOUT.
	TransactionMaxTimeout time.Duration
	// TransactionCheckInterval is how often the coordinator slots' leader
	// looks for expired transactions (Kafka's
	// transaction.abort.timed.out.transaction.cleanup.interval.ms) and for
	// group markers it missed a notification of (txn.go).
	TransactionCheckInterval time.Duration
	// ShutdownTimeout bounds the drain on shutdown.
	ShutdownTimeout time.Duration
	// The parts' configurations, each registering its own flags.
	Leader leader.Config
	Group  group.Config
	Share  share.Config
	// Metering counts usage per virtual cluster for billing.
	Metering billmeter.Config
}

// DefaultConfig returns the defaults the flags start from: the broker's
// own here, its parts' from their packages.
func DefaultConfig() Config {
	return Config{
		ID:                   1,
		Listen:               "127.0.0.1:9092",
		OAuthAudience:        "eddy",
		APIKeyCacheTTL:       5 * time.Second,
		SessionTTL:           6 * time.Second,
		HeartbeatInterval:    time.Second,
		MetadataInterval:     250 * time.Millisecond,
		MetadataFullInterval: 30 * time.Second,
		QuotaInterval:        2 * time.Second,
		MaxRequestBytes:      100 << 20,
		Conn:                 DefaultConnLimits(),
		FetchSessions:        DefaultFetchSessionLimits(),
		ShutdownTimeout:      15 * time.Second,

		TransactionMaxTimeout:    15 * time.Minute,
		TransactionCheckInterval: 5 * time.Second,

		Leader:   leader.DefaultConfig(),
		Group:    group.DefaultConfig(),
		Share:    share.DefaultConfig(),
		Metering: billmeter.DefaultConfig(),
	}
}

// RegisterFlags registers the broker's flags, and through its parts'
// RegisterFlags theirs, with the defaults of DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.Int32Var(&c.ID, "id", d.ID, "broker id (unique in the pool)")
	fs.StringVar(&c.Listen, "listen", d.Listen, "Kafka listener address")
	fs.StringVar(&c.Advertise, "advertise", d.Advertise, "address advertised to clients (default: --listen)")
	fs.StringVar(&c.Rack, "rack", d.Rack, "zone (rack) of this broker: Metadata shows it, and clients that say their zone read from a broker of it (KIP-392)")
	fs.StringVar(&c.AnonymousCluster, "anonymous-cluster", d.AnonymousCluster, "accept unauthenticated connections, acting in this virtual cluster (development only; e.g. vc-dev)")
	fs.StringSliceVar(&c.SASLMechanisms, "sasl-mechanisms", d.SASLMechanisms, "SASL mechanisms to offer: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (API keys), OAUTHBEARER (control-plane JWTs)")
	fs.StringVar(&c.OAuthIssuer, "oauth-issuer", d.OAuthIssuer, "issuer (iss) of accepted tokens: the control plane's base URL")
	fs.StringVar(&c.OAuthAudience, "oauth-audience", d.OAuthAudience, "audience (aud) accepted tokens must name")
	fs.StringVar(&c.JWKSURL, "jwks-url", d.JWKSURL, "JWKS of the token issuer (default: <oauth-issuer>/.well-known/jwks.json)")
	c.Federation.RegisterFlagsFor(fs, "oidc", "identity-provider JWKS URLs")
	fs.StringVar(&c.TLSCert, "tls-cert", d.TLSCert, "PEM certificate (chain) for TLS on the Kafka listener")
	fs.StringVar(&c.TLSKey, "tls-key", d.TLSKey, "PEM private key for --tls-cert")
	fs.BoolVar(&c.AllowPlaintext, "allow-plaintext", d.AllowPlaintext, "allow a plaintext listener on a non-loopback address")
	fs.DurationVar(&c.APIKeyCacheTTL, "api-key-cache-ttl", d.APIKeyCacheTTL, "how long API key and service account lookups at login are cached (deletions announced by Postgres take effect at once; this bounds a lost announcement)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", d.SessionTTL, "how long the session outlives the last heartbeat")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", d.HeartbeatInterval, "heartbeat period")
	fs.DurationVar(&c.MetadataInterval, "metadata-interval", d.MetadataInterval, "how often the live brokers are checked (other routing changes arrive by NOTIFY)")
	fs.DurationVar(&c.MetadataFullInterval, "metadata-full-interval", d.MetadataFullInterval, "how often the whole routing view is re-read without a notification (a safety net)")
	fs.DurationVar(&c.QuotaInterval, "quota-interval", d.QuotaInterval, "how often this broker's share of each cluster's quotas is recomputed from the pool's load")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", d.MaxRequestBytes, "largest request frame accepted")
	c.Conn.RegisterFlags(fs)
	c.FetchSessions.RegisterFlags(fs)
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "longest a clean shutdown drains")
	fs.DurationVar(&c.TransactionMaxTimeout, "transaction-max-timeout", d.TransactionMaxTimeout, "longest transaction.timeout.ms a transactional producer may ask for (Kafka's transaction.max.timeout.ms)")
	fs.DurationVar(&c.TransactionCheckInterval, "transaction-check-interval", d.TransactionCheckInterval, "how often expired transactions are aborted and missed group markers applied")
	c.Leader.RegisterFlags(fs)
	c.Group.RegisterFlags(fs)
	c.Share.RegisterFlags(fs)
	c.Metering.RegisterFlags(fs)
}

// Validate checks the configuration, naming the flag of a bad value, and
// fills what is derived from other settings.
func (c *Config) Validate() error {
	if c.ID < 0 {
		return fmt.Errorf("broker: --id must be >= 0, got %d", c.ID)
	}
	if c.Advertise == "" {
		c.Advertise = c.Listen
	}
	if _, _, err := splitHostPort(c.Advertise); err != nil {
		return fmt.Errorf("broker: --advertise: %w", err)
	}
	c.Leader.BrokerID = c.ID
	if err := c.Leader.Validate(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if c.HeartbeatInterval <= 0 {
		return fmt.Errorf("broker: --heartbeat-interval must be positive, got %s", c.HeartbeatInterval)
	}
	if c.SessionTTL < 2*c.HeartbeatInterval {
		return fmt.Errorf("broker: --session-ttl (%s) must be at least twice --heartbeat-interval (%s)", c.SessionTTL, c.HeartbeatInterval)
	}
	for _, m := range c.SASLMechanisms {
		switch m {
		case sasl.Plain, sasl.ScramSHA256, sasl.ScramSHA512:
		case sasl.OAuthBearer:
			if c.OAuthIssuer == "" {
				return errors.New("broker: OAUTHBEARER needs --oauth-issuer")
			}
			if c.JWKSURL == "" {
				c.JWKSURL = strings.TrimSuffix(c.OAuthIssuer, "/") + "/.well-known/jwks.json"
			}
		default:
			return fmt.Errorf("broker: --sasl-mechanisms: %q is not offered (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)", m)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("broker: --tls-cert and --tls-key go together")
	}
	if c.TLSCert == "" && !c.AllowPlaintext {
		if !loopback.Is(c.Listen) {
			return fmt.Errorf("broker: %s is not a loopback address: configure --tls-cert/--tls-key, or --allow-plaintext if a proxy terminates TLS", c.Listen)
		}
	}
	if c.AnonymousCluster == "" && len(c.SASLMechanisms) == 0 {
		return errors.New("broker: no way in: set --sasl-mechanisms, or --anonymous-cluster for development")
	}
	switch {
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("broker: --shutdown-timeout must be positive, got %s", c.ShutdownTimeout)
	case c.MetadataInterval <= 0:
		return fmt.Errorf("broker: --metadata-interval must be positive, got %s", c.MetadataInterval)
	case c.MetadataFullInterval < c.MetadataInterval:
		return fmt.Errorf("broker: --metadata-full-interval (%s) must be at least --metadata-interval (%s)", c.MetadataFullInterval, c.MetadataInterval)
	case c.QuotaInterval <= 0:
		return fmt.Errorf("broker: --quota-interval must be positive, got %s", c.QuotaInterval)
	case c.MaxRequestBytes <= 0:
		return fmt.Errorf("broker: --max-request-bytes must be positive, got %d", c.MaxRequestBytes)
	case c.TransactionMaxTimeout < time.Millisecond || c.TransactionMaxTimeout > math.MaxInt32*time.Millisecond:
		return fmt.Errorf("broker: --transaction-max-timeout must be between 1ms and %v, got %s", math.MaxInt32*time.Millisecond, c.TransactionMaxTimeout)
	case c.TransactionCheckInterval <= 0:
		return fmt.Errorf("broker: --transaction-check-interval must be positive, got %s", c.TransactionCheckInterval)
	}
	if err := c.Conn.Validate(); err != nil {
		return err
	}
	if err := c.FetchSessions.Validate(); err != nil {
		return err
	}
	if err := c.Group.Validate(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := c.Share.Validate(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	c.Metering.BrokerID = c.ID
	if err := c.Metering.Validate(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return nil
}

func splitHostPort(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, int32(p), nil
}

// Server is one broker.
type Server struct {
	cfg      Config
	store    *store.Store
	auth     *sasl.Authenticator
	authz    *authorizer
	revoke   *revoker // login caches and metrics of revocation (revoke.go)
	failed   failedLogins
	lead     *leader.Manager
	audit    *audit.Writer // admin changes and denials (auditlog.go)
	groups   *group.Coordinator
	groupMet *groupStateMetrics // group persistence (groupstate.go)
	// Share groups (share.go): membership on the group's coordinator,
	// share-partitions on the partition's leader.
	shareGroups *share.Groups
	shares      *share.Partitions
	log         *slog.Logger
	met         *metrics
	meter       *quota.Meter      // per-cluster load
	guard       *guard            // connection limits (guard.go)
	quotas      *quota.Enforcer   // per-cluster quota shares
	limits      *limits.Overrides // every cluster's effective limits, kept fresh by quotas
	usage       *billmeter.Meter  // usage metering for billing (metering.go)

	handOffs handOffs // graceful partition moves under way (handoff.go)

	commits *commitBatcher // offset commits, batched across requests (commitbatch.go)

	sessions *fetchSessions // fetch sessions (fetchsession.go)
	// fetchHook, set by tests before Run, sees every Fetch request as
	// the client sent it.
	fetchHook func(*conn, *kmsg.FetchRequest)

	txnMet  *txnMetrics   // the transaction coordinator's (txn.go)
	txnPoke chan struct{} // 1-buffered: group markers to apply (txn.go)

	session atomic.Int64 // current session epoch
	// lastData is when a Produce or Fetch last arrived (Unix ns): a
	// draining broker lingers until clients have stopped sending them
	// (handOffAll).
	lastData atomic.Int64
	// loaded: a routing view has been read and the partitions it places
	// here are loaded (Ready).
	loaded  atomic.Bool
	view    atomic.Pointer[view]
	refresh chan refreshReq // on-demand metadata refreshes (view.go)

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]struct{}
	draining bool
	connWG   sync.WaitGroup
}

// New prepares a broker: it opens the WAL (replaying what a previous run
// left) but does not touch the network until Run.
func New(cfg Config, st *store.Store, bkt bucket.Bucket, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.With("broker", cfg.ID)
	// The meter holds nothing open; the WAL is opened last, so that Serve
	// is the one place that closes it.
	usage, err := billmeter.Open(cfg.Metering, reportUsage(st), log, reg)
	if err != nil {
		return nil, err
	}
	lead, err := leader.Open(cfg.Leader, st, bkt, log, reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, store: st, lead: lead, log: log, usage: usage,
		met:     newMetrics(reg),
		meter:   quota.NewMeter(),
		limits:  limits.NewOverrides(),
		refresh: make(chan refreshReq),
		conns:   map[*conn]struct{}{},
	}
	s.audit = audit.New(st, log, reg)
	s.quotas = quota.New(quota.Config{Broker: cfg.ID, Interval: cfg.QuotaInterval}, st, s.limits, log, reg)
	s.commits = newCommitBatcher(st, reg)
	s.sessions = newFetchSessions(cfg.FetchSessions, reg)
	s.txnMet, s.txnPoke = newTxnMetrics(reg), make(chan struct{}, 1)
	s.groupMet = newGroupStateMetrics(reg)
	s.groups = group.New(cfg.Group, groupStore{offsetStore{st, s.commits}, s, s.groupMet}, log)
	s.shareGroups = share.NewGroups(cfg.Share)
	shareCfg := cfg.Share
	// A share session holds partitions as a fetch session does: one bound.
	shareCfg.MaxSessionPartitions = cfg.FetchSessions.MaxPartitions
	s.shares = share.NewPartitions(shareCfg, shareStore{s})
	if reg != nil {
		reg.MustRegister(newGroupLagCollector(s))     // consumer lag (groups.go)
		reg.MustRegister(newShareBacklogCollector(s)) // share-group backlog (share.go)
	}
	s.auth = &sasl.Authenticator{Offer: cfg.SASLMechanisms}
	s.revoke = newRevoker(reg)
	for _, m := range cfg.SASLMechanisms {
		switch m {
		case sasl.Plain, sasl.ScramSHA256, sasl.ScramSHA512:
			if s.auth.Keys == nil {
				s.revoke.keys = &sasl.KeyCache{Lookup: apiKeyLookup(st), TTL: cfg.APIKeyCacheTTL}
				s.auth.Keys = s.revoke.keys
			}
		case sasl.OAuthBearer:
			s.auth.Tokens = &sasl.JWKS{URL: cfg.JWKSURL, Issuer: cfg.OAuthIssuer, Audience: cfg.OAuthAudience}
			s.revoke.accounts = &sasl.AccountCache{Exists: accountExists(st), TTL: cfg.APIKeyCacheTTL}
			s.auth.Accounts = s.revoke.accounts
			s.auth.Pools = poolVerifier{federation.New(st, cfg.Federation)}
		}
	}
	s.authz = newAuthorizer(st.Grants)
	s.guard = newGuard(cfg.Conn, log, reg, s.loginBackoffs)
	s.view.Store(&view{})
	return s, nil
}

// Addr returns the listener's address once Run has bound it.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Run binds the listener, registers the broker and serves until ctx ends;
// then it shuts down cleanly (see the package doc) and returns
// ErrServerClosed, or the error that stopped it.
func (s *Server) Run(ctx context.Context) error { return s.serve(ctx, nil) }

// Serve is Run on an existing listener (wrapped in TLS when configured).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error { return s.serve(ctx, ln) }

// serve runs the broker as one ordered list of services: they start in
// the order added and stop in the order declared below, each once the one
// before has returned, so the drain of the package doc reads top to
// bottom. The shutdown steps share one deadline, cfg.ShutdownTimeout after
// the shutdown began. A nil ln is bound from cfg.Listen.
func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	var (
		host  string // advertised, for re-registration
		port  int32
		clean bool // the last flush committed everything: the WAL may go
	)
	l := service.List{Log: s.log, ShutdownTimeout: s.cfg.ShutdownTimeout}
	// The WAL and the group coordinator exist since New: the list owns
	// them from the start, so a failed start closes them too.
	l.Add("wal", service.Basic{Stopping: func(context.Context) error { s.closeWAL(clean); return nil }})
	l.Add("groups", service.Basic{Stopping: func(context.Context) error { s.groups.Close(); return nil }})
	l.Add("listener", service.Basic{
		Starting: func(context.Context) (err error) {
			raiseFileLimit(s.log)
			ln, err = s.listen(ln)
			return err
		},
		Stopping: func(context.Context) error { ln.Close(); return nil },
	})
	l.Add("session", service.Basic{
		Starting: func(ctx context.Context) (err error) { host, port, err = s.register(ctx, ln); return err },
		Stopping: s.deregister,
	})
	l.Add("flush all", service.Basic{Stopping: func(ctx context.Context) error {
		clean = s.lead.FlushAll(ctx) == nil
		return nil
	}})
	l.Add("heartbeat", service.Loop(func(ctx context.Context) { s.heartbeatLoop(ctx, host, port) }))
	l.Add("metadata", service.Loop(s.metadataLoop))
	l.Add("authz", service.Loop(s.authzLoop))
	l.Add("revocation", service.Loop(s.revocationLoop))
	l.Add("revocation check", service.Loop(s.recheckLoop))
	l.Add("quota", service.Loop(s.quotas.Run))
	l.Add("offset expiry", service.Loop(s.expireOffsetsLoop))
	l.Add("producer expiry", service.Loop(s.lead.RunProducerExpiry))
	l.Add("transaction markers", service.Loop(s.lead.RunMarkers))
	l.Add("transactions", service.Loop(s.txnLoop))
	l.Add("share groups", service.Loop(s.shareGroups.Run))
	l.Add("share locks", service.Loop(s.shares.Run))
	l.Add("audit", service.Loop(s.audit.Run))
	l.Add("flusher", service.Func(s.runFlusher))
	l.Add("usage meter", service.Loop(func(ctx context.Context) { s.usage.Run(ctx, s.cfg.ShutdownTimeout/3) }))
	l.Add("offset commits", service.Basic{
		Starting: func(context.Context) error { s.commits.start(); return nil },
		Stopping: func(ctx context.Context) error {
			if err := s.commits.shutdown(ctx); err != nil {
				s.log.Warn("queued offset commits not written", "err", err)
			}
			return nil
		},
	})
	l.Add("hand-offs", service.Basic{Stopping: func(ctx context.Context) error { s.handOffAll(ctx); return nil }})
	l.Add("connections", service.Basic{Stopping: func(ctx context.Context) error { s.drainConns(ctx); return nil }})
	l.Add("accept", service.Func(func(ctx context.Context) error { return s.accept(ctx, ln) }))
	l.StopOrder(
		"accept",         // stop accepting
		"hand-offs",      // partitions to other brokers, clients redirected
		"connections",    // requests in progress finish until the deadline
		"offset commits", // write what they committed
		"usage meter",    // report their last window
		"flusher",        // flush what they produced
		"heartbeat", "metadata", "authz", "revocation", "revocation check", "quota", "offset expiry", "producer expiry",
		"transaction markers", "transactions", "share groups", "share locks",
		"audit", // the connections' last admin changes and denials
		"groups",
		"flush all", // whatever is left, until the deadline
		"session",   // deregister: the partitions move on at once
		"listener",
		"wal", // removed if everything was flushed, then closed
	)
	err := l.Run(ctx)
	s.log.Info("broker stopped")
	if err != nil {
		return err
	}
	return ErrServerClosed
}

// listen binds cfg.Listen unless Serve was given a listener, and wraps it
// in TLS when configured.
func (s *Server) listen(ln net.Listener) (net.Listener, error) {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return nil, fmt.Errorf("broker: listen: %w", err)
		}
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("broker: tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return ln, nil
}

// register opens the broker's session, advertising the bound port when the
// configured one is 0, and makes sure the anonymous cluster exists. It
// returns the advertised address.
func (s *Server) register(ctx context.Context, ln net.Listener) (string, int32, error) {
	host, port, _ := splitHostPort(s.cfg.Advertise)
	if port == 0 { // listening on :0 — advertise what was bound
		_, port, _ = splitHostPort(ln.Addr().String())
	}
	epoch, err := s.store.Register(ctx, s.cfg.ID, host, port, s.cfg.Rack, s.cfg.SessionTTL)
	if err != nil {
		return "", 0, err
	}
	s.session.Store(epoch)
	s.log.Info("broker registered", "addr", ln.Addr().String(), "session_epoch", epoch)
	if s.cfg.AnonymousCluster != "" {
		if err := s.store.EnsureCluster(ctx, s.cfg.AnonymousCluster, s.cfg.AnonymousCluster); err != nil {
			return "", 0, err
		}
	}
	return host, port, nil
}

// deregister ends the session, so that placement moves the partitions at
// once instead of after the session's TTL.
func (s *Server) deregister(ctx context.Context) error {
	if err := s.store.Deregister(ctx, s.cfg.ID, s.session.Load()); err != nil && !errors.Is(err, store.ErrSessionLost) {
		s.log.Warn("deregister failed", "err", err)
	}
	return nil
}

// runFlusher flushes produced batches to the object store until ctx ends,
// then once more.
func (s *Server) runFlusher(ctx context.Context) error {
	if err := s.lead.Run(ctx); err != nil {
		s.log.Warn("final flush incomplete", "err", err)
	}
	return nil
}

// closeWAL releases the partitions and closes the WAL, removing it first
// when the last flush committed everything it holds.
func (s *Server) closeWAL(clean bool) {
	if clean {
		if err := s.lead.RemoveWAL(); err != nil {
			s.log.Warn("wal removal failed", "err", err)
		}
	}
	if err := s.lead.Close(); err != nil {
		s.log.Warn("wal close failed", "err", err)
	}
}

// accept serves connections until ctx ends or accepting fails, then stops
// accepting; the connections drain in the next step of the shutdown.
func (s *Server) accept(ctx context.Context, ln net.Listener) error {
	done := make(chan error, 1)
	go func() { done <- s.acceptLoop(ctx, ln) }()
	var err error
	stopped := false
	select {
	case <-ctx.Done():
		stopped = true
	case err = <-done:
	}
	s.log.Info("broker shutting down")
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	ln.Close()
	if stopped {
		<-done
	}
	return err
}

// acceptLoop accepts until the listener closes. Running out of file
// descriptors is waited out (guard.go); another accept error is fatal:
// it stops the broker, so that its process exits and is restarted.
func (s *Server) acceptLoop(ctx context.Context, ln net.Listener) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			draining := s.draining
			s.mu.Unlock()
			if draining || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ok bool
			if delay, ok = s.guard.acceptFailed(err, delay); ok {
				sleepCtx(ctx, delay)
				continue
			}
			return fmt.Errorf("broker: accept: %w", err)
		}
		delay = 0
		host := ipKey(remoteHost(nc))
		if !s.guard.admit(host, time.Now()) {
			nc.Close()
			continue
		}
		c := s.newConn(nc)
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			s.guard.leave(host)
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.connWG.Done()
			defer s.guard.leave(host)
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// drainConns stops every connection from reading further requests, lets
// the request in progress finish until ctx ends, then closes what is left.
func (s *Server) drainConns(ctx context.Context) {
	s.mu.Lock()
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// Past the deadline: cut the connections and cancel what their
		// handlers wait on (long polls, group joins, acks=all).
		s.mu.Lock()
		for c := range s.conns {
			c.cancel()
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
	}
}

func (s *Server) heartbeatLoop(ctx context.Context, host string, port int32) {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.store.Heartbeat(ctx, s.cfg.ID, s.session.Load(), s.cfg.SessionTTL, s.loadReport())
		if errors.Is(err, store.ErrSessionLost) {
			// The session lapsed (a long pause) or another process took
			// this id. Partitions placed on the old session may be gone;
			// the metadata loop reconciles.
			epoch, rerr := s.store.Register(ctx, s.cfg.ID, host, port, s.cfg.Rack, s.cfg.SessionTTL)
			if rerr != nil {
				s.log.Warn("re-registration failed", "err", rerr)
				continue
			}
			s.session.Store(epoch)
			s.log.Warn("broker session was lost; registered again", "session_epoch", epoch)
			continue
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("heartbeat failed", "err", err)
		}
	}
}
