package broker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Authorization. Every handler asks, for each resource a request names,
// whether the connection's principal may perform the Kafka operation on it
// (conn.may), and answers the error code Kafka uses when not:
//
//	API                         resource / operation          refused with
//	Produce                     topic WRITE (txn id WRITE)    TOPIC_ / TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//	Fetch                       topic READ                    TOPIC_AUTHORIZATION_FAILED
//	ListOffsets, OffsetForLeaderEpoch  topic DESCRIBE         TOPIC_AUTHORIZATION_FAILED
//	Metadata                    topic DESCRIBE (CREATE to auto-create); listings filtered
//	CreateTopics                cluster or topic CREATE       TOPIC_AUTHORIZATION_FAILED
//	DeleteTopics, DeleteRecords topic DELETE                  TOPIC_AUTHORIZATION_FAILED
//	CreatePartitions            topic ALTER                   TOPIC_AUTHORIZATION_FAILED
//	DescribeConfigs             topic / cluster DESCRIBE_CONFIGS  TOPIC_ / CLUSTER_AUTHORIZATION_FAILED
//	(Incremental)AlterConfigs   topic / cluster ALTER_CONFIGS TOPIC_ / CLUSTER_AUTHORIZATION_FAILED
//	FindCoordinator             group / txn id DESCRIBE       GROUP_ / TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//	Join/Sync/Heartbeat/LeaveGroup, ConsumerGroupHeartbeat  group READ  GROUP_AUTHORIZATION_FAILED
//	OffsetCommit                group READ, topic READ        GROUP_ / TOPIC_AUTHORIZATION_FAILED
//	OffsetFetch                 group DESCRIBE, topic DESCRIBE  GROUP_ / TOPIC_AUTHORIZATION_FAILED
//	DescribeGroups, ConsumerGroupDescribe  group DESCRIBE     GROUP_AUTHORIZATION_FAILED
//	ListGroups                  cluster DESCRIBE, else filtered by group DESCRIBE
//	DeleteGroups                group DELETE                  GROUP_AUTHORIZATION_FAILED
//	OffsetDelete                group DELETE, topic READ      GROUP_ / TOPIC_AUTHORIZATION_FAILED
//	InitProducerId              txn id WRITE; idempotent: cluster IDEMPOTENT_WRITE or WRITE on some topic
//	DescribeAcls                cluster DESCRIBE              CLUSTER_AUTHORIZATION_FAILED
//	CreateAcls, DeleteAcls      cluster ALTER                 CLUSTER_AUTHORIZATION_FAILED
//	DescribeCluster, ApiVersions, SASL   none (nothing of the tenant's)
//
// Decisions come from the principal's grants in its cluster (roles,
// org-admin flag, ACLs; internal/acl decides), cached per principal and
// dropped when Postgres announces a change on eddy_authz, so a revoked
// role stops an open connection within moments. Connections of the
// anonymous development cluster have no principal and may do everything.

// grantsMaxAge bounds how long grants are trusted without a reload, in
// case a notification is lost in a way the listener cannot notice.
const grantsMaxAge = time.Minute

// maxMemo bounds the decisions remembered per principal.
const maxMemo = 4096

// authorizer caches the grants of the principals this broker serves.
type authorizer struct {
	load func(ctx context.Context, cluster, sa string) (acl.Grants, error)

	mu      sync.Mutex
	entries map[string]map[string]*grantsEntry // cluster → service account
}

// grantsEntry is one principal's grants, loaded once (ready closes then);
// decisions made from them are memoised.
type grantsEntry struct {
	ready chan struct{}
	g     acl.Grants
	err   error
	at    time.Time
	stale atomic.Bool // set when invalidated: connections holding it load afresh

	memo  sync.Map // decisionKey → bool
	memoN atomic.Int32
}

type decisionKey struct {
	rt   acl.ResourceType
	name string
	op   acl.Operation
	host string
}

func newAuthorizer(load func(ctx context.Context, cluster, sa string) (acl.Grants, error)) *authorizer {
	return &authorizer{load: load, entries: map[string]map[string]*grantsEntry{}}
}

// grants returns sa's grants in cluster, loading them if they are not
// cached (concurrent callers share one load).
func (a *authorizer) grants(ctx context.Context, cluster, sa string) (*grantsEntry, error) {
	a.mu.Lock()
	byCluster := a.entries[cluster]
	if byCluster == nil {
		byCluster = map[string]*grantsEntry{}
		a.entries[cluster] = byCluster
	}
	e := byCluster[sa]
	if e != nil {
		select {
		case <-e.ready:
			if e.err != nil || time.Since(e.at) > grantsMaxAge {
				e = nil
			}
		default:
		}
	}
	if e == nil {
		e = &grantsEntry{ready: make(chan struct{})}
		byCluster[sa] = e
		a.mu.Unlock()
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		e.g, e.err = a.load(lctx, cluster, sa)
		cancel()
		e.at = time.Now()
		close(e.ready)
		return e, e.err
	}
	a.mu.Unlock()
	select {
	case <-e.ready:
		return e, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// invalidate forgets the grants of cluster's principals ("*": of all).
// A load in flight finishes for the requests that wait on it; later
// requests load afresh.
func (a *authorizer) invalidate(cluster string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for cl, byCluster := range a.entries {
		if cluster != "*" && cl != cluster {
			continue
		}
		for _, e := range byCluster {
			e.stale.Store(true)
		}
		delete(a.entries, cl)
	}
}

// usable reports whether a connection may keep deciding with e without
// asking the authorizer again.
func (e *grantsEntry) usable() bool {
	return e != nil && !e.stale.Load() && e.err == nil && time.Since(e.at) <= grantsMaxAge
}

// allowed decides with memoisation.
func (e *grantsEntry) allowed(host string, rt acl.ResourceType, name string, op acl.Operation) bool {
	k := decisionKey{rt, name, op, host}
	if v, ok := e.memo.Load(k); ok {
		return v.(bool)
	}
	ok := e.g.Allowed(host, rt, name, op)
	if e.memoN.Add(1) <= maxMemo {
		e.memo.Store(k, ok)
	}
	return ok
}

// authzLoop drops cached grants whenever Postgres announces a change of
// role bindings, ACLs or service accounts (channel eddy_authz; payload:
// the cluster, or "*"). After (re)connecting it drops everything, since
// notifications sent while it was away are lost.
func (s *Server) authzLoop(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.store.Listen(ctx, "eddy_authz", func(wait func(context.Context) (string, error)) error {
			s.authz.invalidate("*")
			for {
				cluster, err := wait(ctx)
				if err != nil {
					return err
				}
				s.authz.invalidate(cluster)
			}
		})
		s.authz.invalidate("*")
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("authorization listener failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// may reports whether the connection may perform op on the resource, and
// audits a refusal (log and eddy_broker_authz_denials_total).
func (c *conn) may(rt acl.ResourceType, name string, op acl.Operation) bool {
	if c.decide(rt, name, op) {
		return true
	}
	c.denied(rt, name, op)
	return false
}

// sees reports whether the connection may describe the resource, without
// auditing: listings leave out what a principal may not see, as Kafka's
// do, which is not worth a log line.
func (c *conn) sees(rt acl.ResourceType, name string) bool {
	return c.decide(rt, name, acl.Describe)
}

// mayCreateTopic: CREATE on the cluster or on the topic.
func (c *conn) mayCreateTopic(name string) bool {
	if c.decide(acl.Cluster, acl.ClusterName, acl.Create) {
		return true
	}
	return c.may(acl.Topic, name, acl.Create)
}

func (c *conn) decide(rt acl.ResourceType, name string, op acl.Operation) bool {
	if c.principal == nil {
		return true // the anonymous development cluster
	}
	e, err := c.grants()
	if err != nil {
		// Refuse rather than guess; the next request tries again.
		if c.ctx.Err() == nil {
			c.s.log.Warn("authorization: loading grants failed", "cluster", c.cluster, "principal", c.principal.ServiceAccount, "err", err)
		}
		return false
	}
	return e.allowed(c.host, rt, name, op)
}

// mayAny: op on at least one resource of type rt (idempotent producers).
func (c *conn) mayAny(rt acl.ResourceType, op acl.Operation) bool {
	if c.principal == nil {
		return true
	}
	e, err := c.grants()
	return err == nil && e.g.AllowedAny(c.host, rt, op)
}

// grants returns the principal's grants, from the connection's own
// reference while it is valid (no lock on the request path), else from
// the authorizer.
func (c *conn) grants() (*grantsEntry, error) {
	if c.grantsRef.usable() && c.grantsFor == c.principal.ServiceAccount {
		return c.grantsRef, nil
	}
	e, err := c.s.authz.grants(c.ctx, c.cluster, c.principal.ServiceAccount)
	if err != nil {
		return nil, err
	}
	c.grantsRef, c.grantsFor = e, c.principal.ServiceAccount
	return e, nil
}

// denialLogBurst is how many denials a connection logs per second: a
// client retrying a forbidden request in a loop would flood the log. The
// metric counts every one, and the next line logged says how many went
// unlogged.
const denialLogBurst = 10

// denied audits a refusal.
func (c *conn) denied(rt acl.ResourceType, name string, op acl.Operation) {
	c.s.met.authzDenials.WithLabelValues(string(rt), string(op)).Inc()
	c.auditDenial(rt, name, op)
	if now := time.Now(); now.Sub(c.denialWindow) >= time.Second {
		c.denialWindow, c.denialsLogged = now, 0
	}
	if c.denialsLogged >= denialLogBurst {
		c.denialsUnlogged++
		return
	}
	c.denialsLogged++
	args := []any{"remote", c.host, "cluster", c.cluster, "principal", c.principalName(),
		"api", kmsg.NameForKey(c.reqKey), "resource_type", string(rt), "resource", name, "operation", string(op)}
	if c.denialsUnlogged > 0 {
		args = append(args, "unlogged_before", c.denialsUnlogged)
		c.denialsUnlogged = 0
	}
	c.s.log.Info("authorization denied", args...)
}

func (c *conn) principalName() string {
	if c.principal == nil {
		return "ANONYMOUS"
	}
	return acl.Principal(c.principal.ServiceAccount)
}

// kafkaOps lists the operations Kafka reports in authorized-operations
// bit fields, by resource type.
var kafkaOps = map[acl.ResourceType][]acl.Operation{
	acl.Topic:   {acl.Read, acl.Write, acl.Create, acl.Delete, acl.Alter, acl.Describe, acl.DescribeConfigs, acl.AlterConfigs},
	acl.Group:   {acl.Read, acl.Delete, acl.Describe},
	acl.Cluster: {acl.Create, acl.Alter, acl.Describe, acl.ClusterAction, acl.DescribeConfigs, acl.AlterConfigs, acl.IdempotentWrite},
}

// authorizedOps is the bit field (1 << kmsg.ACLOperation) of what the
// connection may do to a resource, for responses that report it.
func (c *conn) authorizedOps(rt acl.ResourceType, name string) int32 {
	var bits int32
	for _, op := range kafkaOps[rt] {
		if c.decide(rt, name, op) {
			a := acl.ACL{ResourceType: rt, Operation: op}
			_, _, kop, _ := a.Kafka()
			bits |= 1 << kop
		}
	}
	return bits
}
