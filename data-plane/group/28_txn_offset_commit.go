package group

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TxnOffsetCommit: versions 0-6, the coordinator's part.
//
// Offsets committed inside a transaction are not the coordinator's until
// the transaction commits: the broker keeps them pending in Postgres
// (txn_offsets) and, when the transaction's group marker is applied,
// moves them into the committed offsets (or drops them) behind the
// coordinator's back, through ApplyOffsets. The coordinator only checks
// the member fields a v3+ request carries (KIP-447), as Kafka's
// validateOffsetCommit does for transactional commits:
//
//   - generation -1, no member id and no instance id (older clients, and
//     producers that commit for a group they are not in): no check;
//   - otherwise the group must exist (ILLEGAL_GENERATION, v6
//     GROUP_ID_NOT_FOUND), the member must be current (UNKNOWN_MEMBER_ID,
//     FENCED_INSTANCE_ID) and of the current generation
//     (ILLEGAL_GENERATION; for a KIP-848 group the member epoch, newer
//     than the member's being ILLEGAL_GENERATION, v6 STALE_MEMBER_EPOCH).
func (c *Coordinator) CheckTxnCommit(ctx context.Context, cluster, groupID string, version int16, generation int32, memberID string, instanceID *string) int16 {
	if groupID == "" {
		return kerr.InvalidGroupID.Code
	}
	if version < 3 || (generation < 0 && memberID == "" && instanceID == nil) {
		return 0
	}
	code := int16(0)
	if err := c.do(ctx, func() {
		g := c.get(key{cluster, groupID})
		switch {
		case g == nil || !g.exists():
			code = kerr.IllegalGeneration.Code
			if version >= 6 {
				code = kerr.GroupIDNotFound.Code
			}
		case g.state == stateDead:
			code = kerr.CoordinatorNotAvailable.Code
		case g.cg != nil:
			v := int16(8) // as OffsetCommit v8: ILLEGAL_GENERATION
			if version >= 6 {
				v = 9 // STALE_MEMBER_EPOCH
			}
			code = c.validateConsumerCommit(g, v, generation, memberID, nil)
		default:
			if code = g.validateMember(memberID, instanceID); code == 0 && generation != g.generation {
				code = kerr.IllegalGeneration.Code
			}
		}
	}); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	return code
}

// ApplyOffsets runs write, which changes the group's committed offsets in
// the OffsetStore without the coordinator (a transaction's group marker),
// under the group's io lock, and then drops the cached offsets, so the
// next read loads what write left. The cache is dropped even if write
// fails: it may have landed.
func (c *Coordinator) ApplyOffsets(ctx context.Context, cluster, groupID string, write func(context.Context) error) error {
	g, release, code := c.acquireIO(ctx, key{cluster, groupID}, true)
	if code != 0 {
		return fmt.Errorf("group: applying offsets of %s: %w", groupID, kerr.ErrorForCode(code))
	}
	defer release()
	err := write(ctx)
	_ = c.do(context.WithoutCancel(ctx), func() {
		if c.live(g) {
			g.offsets = nil
		}
	})
	return err
}
