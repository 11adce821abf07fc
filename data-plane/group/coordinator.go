// Package group is the group coordinator. Kafka's classic protocol:
// JoinGroup, SyncGroup, Heartbeat and LeaveGroup drive group membership and
// rebalances (eager and cooperative, static membership); KIP-848 consumer
// groups: ConsumerGroupHeartbeat with server-side assignors (uniform,
// range) and ConsumerGroupDescribe; OffsetCommit, OffsetFetch and
// OffsetDelete manage committed offsets, with retention for groups without
// members (ExpireOffsets); ListGroups, DescribeGroups and DeleteGroups
// administer groups. Semantics follow Apache Kafka's GroupCoordinator; each
// API file (08_offset_commit.go, 11_join_group.go, ...) opens with the
// versions it supports and any deliberate deviation.
//
// # Contract
//
// Groups live in virtual clusters: a group is identified by (cluster, group
// id), and the same group id in two clusters names two unrelated groups. The
// broker decodes frames, checks that this broker owns the group's coordinator
// slot (answering NOT_COORDINATOR itself otherwise), filters out topics that
// do not exist or that the client may not use, and then calls a handler with
// the decoded request. Every handler returns a response of the request's
// version. Client identity (client.id and host), which Kafka carries in the
// request header, reaches the coordinator through WithClient.
//
// When the broker loses a slot it calls Forget; the coordinator then drops the
// in-memory state of the slot's groups (membership and cached offsets), and
// requests blocked on those groups return NOT_COORDINATOR.
//
// Membership is persisted when the OffsetStore also implements StateStore
// (see persist.go): a coordinator that gains a slot Loads its groups, and
// their members carry on without rejoining. Committed offsets are persisted
// through OffsetStore and cached per group after their first load.
//
// The coordinator copies every request field it keeps beyond a call, so the
// broker may decode requests in place (kmsg UnsafeReadFrom). Responses echo
// request fields (group ids, topics), so such a buffer must outlive the
// response's encoding. Responses also share memory with coordinator state;
// the broker must not modify them.
//
// Committed offsets are fenced by the broker, not here: the OffsetStore the
// broker provides writes only while its coordinator slot's leader epoch is
// unchanged, and answers ErrNotCoordinator otherwise, so a commit in flight
// when Forget runs can never land after the group moved.
//
// Groups are bounded (limits.go): members per group (group.max.size,
// group.consumer.max.size), groups per cluster, and Empty groups without
// committed offsets are deleted by RemoveEmptyGroups, as Kafka deletes them
// once their offsets expire.
//
// Transactional offset commits (TxnOffsetCommit) stay pending outside the
// coordinator, in the broker's store, until their transaction ends; the
// coordinator checks their member fields (CheckTxnCommit) and, when a
// transaction's offsets are applied, drops its cache of the group's
// offsets (ApplyOffsets). See 28_txn_offset_commit.go.
//
// KIP-848 groups resolve regular-expression subscriptions themselves
// (regex.go), and a group converts online between the classic and the
// consumer protocol while its members keep consuming, classic members of a
// consumer group being answered by it (migration.go).
//
// Not provided: a classic-protocol view of KIP-848 groups in
// DescribeGroups.
//
// # Concurrency
//
// All methods are safe for concurrent use. Group state is owned by a single
// goroutine, the owner loop (run), which executes short closures submitted
// by handlers (do), fires timers (session, rebalance, sync and pending-member
// deadlines from one heap, on one time.Timer) and never blocks: no store I/O
// and no waiting happens on it. Handlers that must wait for other members
// (JoinGroup until the join phase completes, SyncGroup until the leader's
// assignment arrives) park on a channel the loop completes, and give up when
// their ctx ends. Store I/O runs on the calling handler's goroutine, outside
// the loop; per group it is serialised by a one-slot lock so that the cache
// stays equal to the store (see offsets.go).
//
// The package starts two goroutines, the loop and, with a StateStore, the
// writer that persists group state (writeLoop); Close stops both and waits
// for them, after a last write of the state changed before Close.
package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Config holds the coordinator's limits. Start from DefaultConfig; the
// defaults are Kafka's broker defaults unless noted.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for in JoinGroup; outside them JoinGroup fails with
	// INVALID_SESSION_TIMEOUT. Kafka: group.min.session.timeout.ms (6s) and
	// group.max.session.timeout.ms (30m).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration

	// InitialRebalanceDelay is how long the first rebalance of an Empty group
	// waits for more members before completing; each member that joins
	// during the wait extends it by the same delay, up to the group's
	// rebalance timeout. Zero disables the delay. Kafka:
	// group.initial.rebalance.delay.ms.
	//
	// The default is Kafka's 3s rather than something shorter: the delay is
	// what lets a fleet of consumers that start together settle in one
	// rebalance instead of one per late arrival, and clients and operators
	// tune their expectations to Kafka's value. Tests set it small.
	InitialRebalanceDelay time.Duration

	// MaxMetadataBytes caps the protocol metadata one member may send in
	// JoinGroup (the sum over its protocols); larger joins fail with
	// INVALID_REQUEST. Kafka has no such limit beyond the request size; the
	// coordinator holds metadata in memory for every member, so Eddy caps it.
	// Default 1 MiB, far above what consumers send (a subscription plus owned
	// partitions).
	MaxMetadataBytes int

	// MaxOffsetMetadataBytes caps the metadata string of one committed
	// offset; longer commits fail for that partition with
	// OFFSET_METADATA_TOO_LARGE. Kafka: offset.metadata.max.bytes (4096).
	MaxOffsetMetadataBytes int

	// ConsumerSessionTimeout is how long a KIP-848 member may go without a
	// heartbeat before it is removed; ConsumerHeartbeatInterval is the
	// interval members are told to heartbeat at. Kafka:
	// group.consumer.session.timeout.ms (45s) and
	// group.consumer.heartbeat.interval.ms (5s).
	ConsumerSessionTimeout    time.Duration
	ConsumerHeartbeatInterval time.Duration

	// OffsetsRetention is how long the committed offsets of a group
	// without members are kept after its last commit. Kafka:
	// offsets.retention.minutes (7 days).
	OffsetsRetention time.Duration

	// MaxSize caps the members of a classic group and ConsumerMaxSize
	// those of a KIP-848 group; a member joining a full group gets
	// GROUP_MAX_SIZE_REACHED. Kafka: group.max.size and
	// group.consumer.max.size (both unbounded by default); Eddy bounds
	// them because every member costs the shared coordinator memory and
	// rebalance work. Default 1000, beyond any consumer fleet of one group
	// that a partition count allows to do useful work.
	MaxSize         int
	ConsumerMaxSize int

	// MaxGroups caps the groups of any one virtual cluster, over each
	// cluster's own limit (limits.go): a join or simple commit that would
	// create one more is refused. Default DefaultMaxGroups.
	MaxGroups int

	// ConsumerRegexRefreshInterval is the shortest time between two
	// resolutions of a KIP-848 group's regular-expression subscriptions
	// against its cluster's topics (regex.go): a group re-resolves when
	// topic metadata changed and at least this long has passed since its
	// last resolution, never on every heartbeat. A regex new to the group
	// is resolved at once. Kafka: 10s, not configurable there.
	ConsumerRegexRefreshInterval time.Duration

	// ConsumerMaxRegexLength caps the length of a SubscribedTopicRegex and
	// ConsumerMaxRegexes the distinct regexes of one group; beyond either a
	// heartbeat fails with INVALID_REGULAR_EXPRESSION. Kafka has neither;
	// Eddy bounds them because each regex is matched against every topic
	// of the cluster on the coordinator's loop. Defaults 1024 and 32.
	ConsumerMaxRegexLength int
	ConsumerMaxRegexes     int

	// ConsumerMigrationPolicy says which online conversions between the
	// classic and the consumer protocol a group with members may make
	// (migration.go): "bidirectional" (Kafka 4.x's default), "upgrade"
	// (classic to consumer only), "downgrade" (consumer to classic only)
	// or "disabled". Kafka: group.consumer.migration.policy.
	ConsumerMigrationPolicy string
}

// DefaultConfig returns the default configuration: the one place the
// defaults are written. RegisterFlags uses them as flag defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:      6 * time.Second,
		MaxSessionTimeout:      30 * time.Minute,
		InitialRebalanceDelay:  3 * time.Second,
		MaxMetadataBytes:       1 << 20,
		MaxOffsetMetadataBytes: 4096,

		ConsumerSessionTimeout:    45 * time.Second,
		ConsumerHeartbeatInterval: 5 * time.Second,
		OffsetsRetention:          7 * 24 * time.Hour,

		MaxSize:         1000,
		ConsumerMaxSize: 1000,
		MaxGroups:       DefaultMaxGroups,

		ConsumerRegexRefreshInterval: 10 * time.Second,
		ConsumerMaxRegexLength:       1024,
		ConsumerMaxRegexes:           32,
		ConsumerMigrationPolicy:      "bidirectional",
	}
}

// RegisterFlags registers the configuration's --group-* flags on fs, with
// the defaults of DefaultConfig.
func (cfg *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&cfg.MinSessionTimeout, "group-min-session-timeout", d.MinSessionTimeout, "shortest session timeout a classic group member may request (Kafka's group.min.session.timeout.ms)")
	fs.DurationVar(&cfg.MaxSessionTimeout, "group-max-session-timeout", d.MaxSessionTimeout, "longest session timeout a classic group member may request (Kafka's group.max.session.timeout.ms)")
	fs.DurationVar(&cfg.InitialRebalanceDelay, "group-initial-rebalance-delay", d.InitialRebalanceDelay, "how long a new group waits for more members before its first rebalance (0 disables)")
	fs.IntVar(&cfg.MaxMetadataBytes, "group-max-metadata-bytes", d.MaxMetadataBytes, "largest protocol metadata one member may send in JoinGroup")
	fs.IntVar(&cfg.MaxOffsetMetadataBytes, "group-max-offset-metadata-bytes", d.MaxOffsetMetadataBytes, "largest metadata string of one committed offset (Kafka's offset.metadata.max.bytes)")
	fs.DurationVar(&cfg.ConsumerSessionTimeout, "group-consumer-session-timeout", d.ConsumerSessionTimeout, "session timeout of KIP-848 consumer group members")
	fs.DurationVar(&cfg.ConsumerHeartbeatInterval, "group-consumer-heartbeat-interval", d.ConsumerHeartbeatInterval, "heartbeat interval of KIP-848 consumer group members")
	fs.DurationVar(&cfg.OffsetsRetention, "group-offsets-retention", d.OffsetsRetention, "how long offsets of a group without members are kept after its last commit (Kafka's offsets.retention.minutes)")
	fs.IntVar(&cfg.MaxSize, "group-max-size", d.MaxSize, "most members of one classic group (Kafka's group.max.size)")
	fs.IntVar(&cfg.ConsumerMaxSize, "group-consumer-max-size", d.ConsumerMaxSize, "most members of one KIP-848 consumer group (Kafka's group.consumer.max.size)")
	fs.IntVar(&cfg.MaxGroups, "group-max-groups", d.MaxGroups, "most consumer groups of any one virtual cluster, a pool-wide cap over each cluster's max_groups (from its plan)")
	fs.DurationVar(&cfg.ConsumerRegexRefreshInterval, "group-consumer-regex-refresh-interval", d.ConsumerRegexRefreshInterval, "shortest time between two resolutions of a KIP-848 group's regex subscriptions after topics change")
	fs.IntVar(&cfg.ConsumerMaxRegexLength, "group-consumer-max-regex-length", d.ConsumerMaxRegexLength, "longest SubscribedTopicRegex a KIP-848 member may send")
	fs.IntVar(&cfg.ConsumerMaxRegexes, "group-consumer-max-regexes", d.ConsumerMaxRegexes, "most distinct subscription regexes of one KIP-848 group")
	fs.StringVar(&cfg.ConsumerMigrationPolicy, "group-consumer-migration-policy", d.ConsumerMigrationPolicy, "online conversions between classic and KIP-848 groups with members: bidirectional, upgrade, downgrade or disabled (Kafka's group.consumer.migration.policy)")
}

// Validate reports whether the configuration is usable, naming the flags
// of the values it rejects.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.MinSessionTimeout < 0 {
		errs = append(errs, errors.New("group: --group-min-session-timeout must not be negative"))
	}
	if cfg.MaxSessionTimeout <= 0 || cfg.MaxSessionTimeout < cfg.MinSessionTimeout {
		errs = append(errs, fmt.Errorf("group: --group-max-session-timeout %v must be positive and at least --group-min-session-timeout %v", cfg.MaxSessionTimeout, cfg.MinSessionTimeout))
	}
	if cfg.InitialRebalanceDelay < 0 {
		errs = append(errs, errors.New("group: --group-initial-rebalance-delay must not be negative"))
	}
	if cfg.MaxMetadataBytes <= 0 {
		errs = append(errs, errors.New("group: --group-max-metadata-bytes must be positive"))
	}
	if cfg.ConsumerSessionTimeout <= 0 || cfg.ConsumerHeartbeatInterval <= 0 || cfg.ConsumerHeartbeatInterval >= cfg.ConsumerSessionTimeout {
		errs = append(errs, fmt.Errorf("group: --group-consumer-heartbeat-interval %v must be positive and below --group-consumer-session-timeout %v", cfg.ConsumerHeartbeatInterval, cfg.ConsumerSessionTimeout))
	}
	if cfg.OffsetsRetention <= 0 {
		errs = append(errs, errors.New("group: --group-offsets-retention must be positive"))
	}
	if cfg.MaxSize < 1 || cfg.ConsumerMaxSize < 1 {
		errs = append(errs, errors.New("group: --group-max-size and --group-consumer-max-size must be at least 1"))
	}
	if cfg.MaxGroups < 1 {
		errs = append(errs, errors.New("group: --group-max-groups must be at least 1"))
	}
	if cfg.ConsumerRegexRefreshInterval <= 0 {
		errs = append(errs, errors.New("group: --group-consumer-regex-refresh-interval must be positive"))
	}
	if cfg.ConsumerMaxRegexLength < 1 || cfg.ConsumerMaxRegexes < 1 {
		errs = append(errs, errors.New("group: --group-consumer-max-regex-length and --group-consumer-max-regexes must be at least 1"))
	}
	switch cfg.ConsumerMigrationPolicy {
	case "bidirectional", "upgrade", "downgrade", "disabled":
	default:
		errs = append(errs, fmt.Errorf("group: --group-consumer-migration-policy %q must be bidirectional, upgrade, downgrade or disabled", cfg.ConsumerMigrationPolicy))
	}
	if cfg.MaxOffsetMetadataBytes < 0 {
		errs = append(errs, errors.New("group: --group-max-offset-metadata-bytes must not be negative"))
	}
	return errors.Join(errs...)
}

// Client describes the connection a request arrived on: Kafka's client.id
// from the request header and the client's host. Member ids are derived from
// ID, and DescribeGroups reports both.
type Client struct {
	ID   string
	Host string
}

type clientKey struct{}

// WithClient returns a context that carries cl to the coordinator's
// handlers. A context without one means an anonymous client.
func WithClient(ctx context.Context, cl Client) context.Context {
	return context.WithValue(ctx, clientKey{}, cl)
}

func clientFrom(ctx context.Context) Client {
	cl, _ := ctx.Value(clientKey{}).(Client)
	return Client{ID: strings.Clone(cl.ID), Host: strings.Clone(cl.Host)}
}

// errClosed is returned by do once Close has been called.
var errClosed = errors.New("group: coordinator closed")

// Coordinator coordinates the classic-protocol groups of the slots this
// broker owns, across virtual clusters. Create it with New and stop it with
// Close.
type Coordinator struct {
	cfg   Config
	store OffsetStore
	log   *slog.Logger

	ops       chan func()   // closures for the owner loop; unbuffered
	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the owner loop has returned
	closeOnce sync.Once

	// Owned by the loop.
	clusters map[string]map[string]*group
	timers   timerHeap
	dirty    map[*group]struct{} // groups whose state the writer must write

	// Persistence (persist.go); states is nil without a StateStore.
	states     StateStore
	wake       chan struct{} // pokes the writer; buffered 1
	closing    chan struct{} // closed by Close before quit
	writerDone chan struct{}
	writeMu    sync.Mutex // held by the writer for a round, and by Load
}

// New starts a coordinator. store persists committed offsets, and group
// state too if it implements StateStore; log may be nil.
// New panics if cfg does not Validate or store is nil: both are wiring errors
// that cmd/eddy reports before getting here.
func New(cfg Config, store OffsetStore, log *slog.Logger) *Coordinator {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if store == nil {
		panic("group: nil OffsetStore")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{
		cfg:        cfg,
		store:      store,
		log:        log,
		ops:        make(chan func()),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		clusters:   make(map[string]map[string]*group),
		dirty:      make(map[*group]struct{}),
		wake:       make(chan struct{}, 1),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	go c.run()
	if st, ok := store.(StateStore); ok {
		c.states = st
		go c.writeLoop()
	} else {
		close(c.writerDone)
	}
	return c
}

// Close stops the coordinator and waits for its goroutine to exit. Requests
// parked in JoinGroup or SyncGroup return COORDINATOR_NOT_AVAILABLE, as does
// every later call. Store calls already under way on handler goroutines are
// not interrupted; they end with their request's ctx. Close is idempotent.
func (c *Coordinator) Close() {
	c.closeOnce.Do(func() {
		close(c.closing)
		<-c.writerDone
		close(c.quit)
	})
	<-c.done
}

// Forget drops the in-memory state (membership, timers, cached offsets) of
// every group for which match returns true; the broker calls it when it
// loses coordinator slots. Requests parked on those groups return
// NOT_COORDINATOR. match runs on the owner loop: it must be quick and must
// not call the Coordinator.
func (c *Coordinator) Forget(match func(cluster, group string) bool) {
	_ = c.do(context.Background(), func() { c.forget(match) })
}

// run is the owner loop: it executes submitted closures and fires timers
// until Close.
func (c *Coordinator) run() {
	defer close(c.done)
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		var tick <-chan time.Time
		if len(c.timers) > 0 {
			// Since Go 1.23 Reset discards a stale expiry, so tick only
			// delivers the deadline of the current head.
			wake.Reset(time.Until(c.timers[0].when))
			tick = wake.C
		} else {
			wake.Stop()
		}
		select {
		case <-c.quit:
			c.shutdown()
			return
		case fn := <-c.ops:
			fn()
		case <-tick:
			c.fireDue(time.Now())
		}
	}
}

// do runs fn on the owner loop and waits for it. It fails only when ctx ends
// or the coordinator closes before fn was accepted; once accepted, fn runs to
// completion, so results it writes to captured variables are visible when do
// returns nil.
func (c *Coordinator) do(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return err // select below would pick at random
	}
	done := make(chan struct{})
	op := func() {
		defer close(done)
		fn()
	}
	select {
	case c.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.quit:
		return errClosed
	}
	<-done
	return nil
}

// shutdown fails every parked request and drops all state; it runs on the
// loop as it exits.
func (c *Coordinator) shutdown() {
	for _, groups := range c.clusters {
		for _, g := range groups {
			c.unload(g, kerr.CoordinatorNotAvailable.Code)
		}
	}
	c.timers = nil
}

// key identifies a group across virtual clusters.
type key struct {
	cluster, group string
}

func (c *Coordinator) get(k key) *group {
	return c.clusters[k.cluster][k.group]
}

func (c *Coordinator) put(g *group) {
	groups := c.clusters[g.cluster]
	if groups == nil {
		groups = make(map[string]*group)
		c.clusters[g.cluster] = groups
	}
	groups[g.group] = g
}

func (c *Coordinator) del(g *group) {
	groups := c.clusters[g.cluster]
	if groups[g.group] != g {
		return
	}
	delete(groups, g.group)
	if len(groups) == 0 {
		delete(c.clusters, g.cluster)
	}
}

// logger returns the coordinator's logger annotated with a group.
func (c *Coordinator) logger(g *group) *slog.Logger {
	return c.log.With("cluster", g.cluster, "group", g.group)
}
