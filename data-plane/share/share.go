// Package share provides share groups (KIP-932, Kafka 4.2): Kafka as a
// queue. Members of a share group read partitions cooperatively; every
// record is acquired by one member at a time under a lock, acknowledged
// individually (accept, release, reject) and delivered again when its lock
// expires, up to a delivery limit after which it is archived.
//
// It has two halves, as Kafka's broker has:
//
//   - Groups, the share-group coordinator half: membership, heartbeats and
//     the assignment of partitions to members (ShareGroupHeartbeat,
//     ShareGroupDescribe). It runs on the broker that owns the group's
//     coordinator slot. Several members may share a partition.
//   - Partitions, the share-partition half: the delivery state of one
//     group's records of one partition (Partition) and the share sessions
//     of ShareFetch. It runs on the partition's leader, where ShareFetch
//     and ShareAcknowledge arrive, and every change is written to a Store
//     fenced by the partition's leader epoch before the request that made
//     it is answered, so a leader that crashes loses no acknowledgement and
//     its successor delivers again only what was not acknowledged.
//
// # Concurrency
//
// Groups and Partitions are safe for concurrent use. Groups is low-contention
// and guarded by one mutex; Partitions guards each share-partition by its
// own mutex (the hot path) and serialises its store writes per
// share-partition, so a later state is never overwritten by an earlier
// one. No lock is held across store I/O except the per-share-partition
// write lock. Each half has a Run loop (member expiry, lock expiry) that
// its owner starts and stops; nothing else starts goroutines.
//
// Deviations from Kafka: share-group membership is not persisted (after a
// coordinator move members rejoin with epoch 0; their records' state lives
// with the partitions, so nothing is redelivered that was acknowledged);
// share.auto.offset.reset and the other group configs are broker-wide
// defaults (Config), not per-group configs; group.share.isolation.level is
// read_uncommitted; a group id may name a share group and a consumer group
// at once.
package share

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// Config holds the share-group settings; start from DefaultConfig. The
// defaults are Kafka's.
type Config struct {
	// RecordLockDuration is how long an acquired record stays locked to
	// its member. Kafka: group.share.record.lock.duration.ms (30s).
	RecordLockDuration time.Duration
	// DeliveryCountLimit is how often a record is delivered before it is
	// archived instead of made available again. Kafka:
	// group.share.delivery.count.limit (5).
	DeliveryCountLimit int
	// MaxRecordLocks bounds the in-flight records of a share-partition
	// (SPEO-SPSO); beyond it nothing new is acquired until the start
	// moves. Kafka: group.share.partition.max.record.locks (2000).
	MaxRecordLocks int
	// SessionTimeout removes a member that did not heartbeat for that
	// long; HeartbeatInterval is what members are told. Kafka:
	// group.share.session.timeout.ms (45s),
	// group.share.heartbeat.interval.ms (5s).
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	// AutoOffsetReset is where a share-partition without stored state
	// starts: "latest" (the high watermark) or "earliest" (the log start).
	// Kafka: the group config share.auto.offset.reset (latest).
	AutoOffsetReset string
	// MaxSessions bounds the share sessions of one broker, of which one
	// virtual cluster may hold at most half (at least 1), so one tenant
	// cannot take them all; MaxMembers the
	// members of one share group; MaxGroups the share groups of one virtual
	// cluster a coordinator holds. Kafka: max.share.session.cache.size
	// (derived), group.share.max.size (200) and group.max.count (Eddy
	// bounds share groups per cluster, as every coordinator structure a
	// tenant can grow).
	MaxSessions int
	MaxMembers  int
	MaxGroups   int
	// MaxSessionPartitions bounds the partitions of one share session (0:
	// no bound). It has no flag: the broker passes its fetch sessions'
	// --fetch-session-max-partitions, the same bound for the same memory.
	MaxSessionPartitions int
}

// DefaultConfig returns the defaults: the one place they are written.
func DefaultConfig() Config {
	return Config{
		RecordLockDuration: 30 * time.Second,
		DeliveryCountLimit: 5,
		MaxRecordLocks:     2000,
		SessionTimeout:     45 * time.Second,
		HeartbeatInterval:  5 * time.Second,
		AutoOffsetReset:    "latest",
		MaxSessions:        2000,
		MaxMembers:         200,
		MaxGroups:          10000,
	}
}

// RegisterFlags registers the --share-* flags with DefaultConfig's values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.RecordLockDuration, "share-record-lock-duration", d.RecordLockDuration, "how long a share-group record stays locked to the member that acquired it (Kafka's group.share.record.lock.duration.ms)")
	fs.IntVar(&c.DeliveryCountLimit, "share-delivery-count-limit", d.DeliveryCountLimit, "deliveries of a share-group record before it is archived (Kafka's group.share.delivery.count.limit)")
	fs.IntVar(&c.MaxRecordLocks, "share-max-record-locks", d.MaxRecordLocks, "most in-flight records of one share-partition (Kafka's group.share.partition.max.record.locks)")
	fs.DurationVar(&c.SessionTimeout, "share-session-timeout", d.SessionTimeout, "session timeout of share-group members (Kafka's group.share.session.timeout.ms)")
	fs.DurationVar(&c.HeartbeatInterval, "share-heartbeat-interval", d.HeartbeatInterval, "heartbeat interval of share-group members (Kafka's group.share.heartbeat.interval.ms)")
	fs.StringVar(&c.AutoOffsetReset, "share-auto-offset-reset", d.AutoOffsetReset, "where a share group starts reading a partition it has no state for: latest or earliest (Kafka's share.auto.offset.reset)")
	fs.IntVar(&c.MaxSessions, "share-max-sessions", d.MaxSessions, "most share sessions one broker keeps")
	fs.IntVar(&c.MaxMembers, "share-max-members", d.MaxMembers, "most members of one share group (Kafka's group.share.max.size)")
	fs.IntVar(&c.MaxGroups, "share-max-groups", d.MaxGroups, "most share groups with members of one virtual cluster")
}

// Validate names the flag of each value it rejects.
func (c Config) Validate() error {
	var errs []error
	if c.RecordLockDuration < time.Second {
		errs = append(errs, errors.New("share: --share-record-lock-duration must be at least 1s"))
	}
	if c.DeliveryCountLimit < 2 || c.DeliveryCountLimit > 10 {
		errs = append(errs, errors.New("share: --share-delivery-count-limit must be between 2 and 10, as in Kafka"))
	}
	if c.MaxRecordLocks < 100 || c.MaxRecordLocks > 1<<20 {
		errs = append(errs, errors.New("share: --share-max-record-locks must be between 100 and 1048576"))
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("share: --share-heartbeat-interval %v must be positive and below --share-session-timeout %v", c.HeartbeatInterval, c.SessionTimeout))
	}
	if c.AutoOffsetReset != "latest" && c.AutoOffsetReset != "earliest" {
		errs = append(errs, fmt.Errorf("share: --share-auto-offset-reset must be latest or earliest, got %q", c.AutoOffsetReset))
	}
	if c.MaxSessions < 1 || c.MaxMembers < 1 || c.MaxGroups < 1 {
		errs = append(errs, errors.New("share: --share-max-sessions, --share-max-members and --share-max-groups must be at least 1"))
	}
	return errors.Join(errs...)
}
