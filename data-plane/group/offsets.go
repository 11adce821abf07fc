package group

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Offset is a committed offset of one partition.
type Offset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32 // -1 when unknown
	Metadata    string
}

// ErrNotCoordinator is returned (wrapped) by an OffsetStore whose write was
// refused because this broker no longer coordinates the group; the request
// fails with NOT_COORDINATOR so the client finds the new coordinator.
var ErrNotCoordinator = errors.New("group: not the group's coordinator")

// OffsetStore persists committed offsets; the broker implements it over
// Postgres. Implementations must be safe for concurrent use. The coordinator
// serialises calls for any one group (so writes to a group land in the order
// the coordinator acknowledges them), but calls for different groups run
// concurrently. Every call runs on a request's goroutine with that request's
// ctx; an error fails the request with a retriable error
// (COORDINATOR_NOT_AVAILABLE) and is logged.
type OffsetStore interface {
	// CommitOffsets upserts offs, which are for distinct partitions, in one
	// atomic write.
	CommitOffsets(ctx context.Context, cluster, group string, offs []Offset) error
	// FetchOffsets returns every committed offset of the group.
	FetchOffsets(ctx context.Context, cluster, group string) ([]Offset, error)
	// DeleteGroupOffsets deletes the group's offsets of the listed topics
	// and partitions, or all of them when topics is nil.
	DeleteGroupOffsets(ctx context.Context, cluster, group string, topics map[string][]int32) error
	// ListGroupsWithOffsets returns the ids of the cluster's groups that have
	// committed offsets.
	ListGroupsWithOffsets(ctx context.Context, cluster string) ([]string, error)
	// ExpireGroupOffsets deletes every offset of the group, in one atomic
	// write, unless one was committed at or after before; it returns how
	// many it deleted.
	ExpireGroupOffsets(ctx context.Context, cluster, group string, before time.Time) (int64, error)
}

// Offsets are cached per group, topic → partition → offset. The cache is
// loaded on first use and kept equal to the store: every store call for a
// group happens under the group's io lock, and the cache is updated on the
// loop after a successful write, still under the lock. Forget drops the
// cache with the group.
type offsetCache = map[string]map[int32]Offset

// acquireIO takes the io lock of group k, creating the group (Empty) when it
// is not in memory and create is set. The group stays in memory until
// release. It returns a nil group, and no error, when the group does not
// exist and create is unset.
func (c *Coordinator) acquireIO(ctx context.Context, k key, create bool) (g *group, release func(), code int16) {
	var io chan struct{}
	if err := c.do(ctx, func() {
		g = c.get(k)
		if g == nil {
			if !create {
				return
			}
			g = c.newGroup(k)
		}
		g.ioRefs++
		io = g.io
	}); err != nil {
		return nil, nil, kerr.CoordinatorNotAvailable.Code
	}
	if g == nil {
		return nil, nil, 0
	}
	unref := func() {
		_ = c.do(context.Background(), func() {
			g.ioRefs--
			c.gc(g)
		})
	}
	select {
	case io <- struct{}{}:
	case <-ctx.Done():
		unref()
		return nil, nil, kerr.CoordinatorNotAvailable.Code
	case <-c.quit:
		unref()
		return nil, nil, kerr.CoordinatorNotAvailable.Code
	}
	return g, func() { <-io; unref() }, 0
}

// withOffsets runs fn on the loop with group k's committed offsets, loading
// them from the store first if they are not cached. fn must not retain the
// map. g is nil when the group is not in memory; it may also be a group that
// is no longer live (forgotten while loading).
func (c *Coordinator) withOffsets(ctx context.Context, k key, fn func(g *group, offs offsetCache)) int16 {
	hit := false
	if err := c.do(ctx, func() {
		if g := c.get(k); g != nil && g.offsets != nil {
			hit = true
			fn(g, g.offsets)
		}
	}); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	if hit {
		return 0
	}
	g, release, code := c.acquireIO(ctx, k, true)
	if code != 0 {
		return code
	}
	defer release()
	return c.loadOffsets(ctx, g, fn)
}

// loadOffsets makes sure g's offsets are cached and runs fn (if not nil) on
// the loop with them. The caller holds g's io lock.
func (c *Coordinator) loadOffsets(ctx context.Context, g *group, fn func(*group, offsetCache)) int16 {
	loaded := false
	if err := c.do(ctx, func() {
		if g.offsets != nil {
			loaded = true
			if fn != nil {
				fn(g, g.offsets)
			}
		}
	}); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	if loaded {
		return 0
	}
	list, err := c.store.FetchOffsets(ctx, g.cluster, g.group)
	if err != nil {
		c.logger(g).Error("loading committed offsets", "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	offs := make(offsetCache)
	for _, o := range list {
		putOffset(offs, o)
	}
	if err := c.do(ctx, func() {
		if c.live(g) && g.offsets == nil {
			g.offsets = offs
		}
		if fn != nil {
			fn(g, offs)
		}
	}); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

func putOffset(offs offsetCache, o Offset) {
	parts := offs[o.Topic]
	if parts == nil {
		parts = make(map[int32]Offset)
		offs[o.Topic] = parts
	}
	parts[o.Partition] = o
}

// cloneOffset copies the strings of an offset taken from a request.
func cloneOffset(o Offset) Offset {
	o.Topic = strings.Clone(o.Topic)
	o.Metadata = strings.Clone(o.Metadata)
	return o
}
