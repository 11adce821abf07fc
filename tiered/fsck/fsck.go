// Package fsck checks the index in Postgres against the bucket: every
// object an index row references must exist and be long enough for every
// row that points into it, and every object Eddy wrote must be known to
// the objects table. Check only reads; it reports, and deleting orphans is
// garbage collection's job.
//
// It also checks the aborted-transaction index (aborted_txns) at or above
// each partition's log start: every row's marker must be below the high
// watermark and be a control batch of the row's producer at that offset in
// the object the index points to (one ranged GET per index row holding
// markers). A row whose marker is gone would make read_committed clients
// drop its producer's later batches.
package fsck

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/gc"
)

// Problem is one inconsistency.
type Problem struct {
	Key    string
	Detail string
}

// Report is the outcome of a check. Missing, Short and Unregistered are
// errors (a read would fail, or garbage collection could never account
// for the bytes); Orphans and Unreferenced are garbage, normal until
// garbage collection has run.
type Report struct {
	Objects    int // objects in the bucket
	Referenced int // keys referenced by index rows
	IndexRows  int64

	Missing      []Problem // referenced, not in the bucket
	Short        []Problem // referenced past the object's end
	Unregistered []Problem // referenced, but no objects row
	SizeMismatch []Problem // objects row size differs from the bucket
	Orphans      []Problem // in the bucket, no objects row
	Unreferenced []Problem // objects row and blob, no index row (awaiting GC)
	// Aborted are aborted transactions whose marker is not in the log.
	Aborted []Problem
}

// OK reports whether nothing referenced is damaged.
func (r *Report) OK() bool {
	return len(r.Missing) == 0 && len(r.Short) == 0 && len(r.Unregistered) == 0 && len(r.SizeMismatch) == 0 &&
		len(r.Aborted) == 0
}

// Clean reports OK and no garbage either.
func (r *Report) Clean() bool { return r.OK() && len(r.Orphans) == 0 && len(r.Unreferenced) == 0 }

// Check compares the index with the bucket. Objects written while it runs
// may be reported as orphans (a flush PUTs before it commits); pass
// minOrphanAge to ignore blobs younger than that.
func Check(ctx context.Context, st *store.Store, b bucket.Bucket, minOrphanAge time.Duration) (*Report, error) {
	// Read the index first: anything referenced then and collected before
	// the listing would need a grace period shorter than this check.
	refs, err := st.ObjectRefs(ctx)
	if err != nil {
		return nil, err
	}
	listed := map[string]bucket.Object{}
	for _, p := range gc.Prefixes {
		if err := b.List(ctx, p, func(o bucket.Object) error {
			listed[o.Key] = o
			return nil
		}); err != nil {
			return nil, fmt.Errorf("fsck: list %s: %w", p, err)
		}
	}
	r := &Report{Objects: len(listed)}
	known := make(map[string]bool, len(refs))
	for _, ref := range refs {
		known[ref.Key] = true
		o, inBucket := listed[ref.Key]
		if ref.Rows > 0 {
			r.Referenced++
			r.IndexRows += ref.Rows
			switch {
			case !inBucket:
				r.Missing = append(r.Missing, Problem{ref.Key, fmt.Sprintf("%d index rows reference a missing object", ref.Rows)})
			case o.Size < ref.MaxEnd:
				r.Short = append(r.Short, Problem{ref.Key, fmt.Sprintf("index rows reach byte %d of a %d-byte object", ref.MaxEnd, o.Size)})
			}
			if !ref.Registered {
				r.Unregistered = append(r.Unregistered, Problem{ref.Key, "referenced by index rows but has no objects row"})
			}
		} else if inBucket {
			r.Unreferenced = append(r.Unreferenced, Problem{ref.Key, fmt.Sprintf("%d bytes, marked for collection: %v", o.Size, ref.Marked)})
		}
		if ref.Registered && inBucket && ref.Size != o.Size {
			r.SizeMismatch = append(r.SizeMismatch, Problem{ref.Key, fmt.Sprintf("objects row says %d bytes, bucket %d", ref.Size, o.Size)})
		}
	}
	cutoff := time.Now().Add(-minOrphanAge)
	for k, o := range listed {
		if !known[k] && o.Modified.Before(cutoff) {
			r.Orphans = append(r.Orphans, Problem{k, fmt.Sprintf("%d bytes, modified %s", o.Size, o.Modified.UTC().Format(time.RFC3339))})
		}
	}
	if err := checkAborted(ctx, st, b, listed, r); err != nil {
		return nil, err
	}
	return r, nil
}

// checkAborted finds the aborted transactions whose marker is not where
// the index says; see the package doc.
func checkAborted(ctx context.Context, st *store.Store, b bucket.Bucket, listed map[string]bucket.Object, r *Report) error {
	refs, err := st.AbortedRefs(ctx)
	if err != nil {
		return err
	}
	type rowKey struct {
		key string
		pos int64
	}
	read := map[rowKey][]byte{}
	for _, a := range refs {
		bad := func(detail string) {
			r.Aborted = append(r.Aborted, Problem{fmt.Sprintf("partition %d", a.PartitionID),
				fmt.Sprintf("aborted transaction of producer %d [%d, %d]: %s", a.ProducerID, a.FirstOffset, a.LastOffset, detail)})
		}
		switch {
		case a.LastOffset >= a.HighWatermark:
			bad(fmt.Sprintf("marker at or above the high watermark %d", a.HighWatermark))
			continue
		case !a.InRow:
			bad("no index row holds the marker's offset")
			continue
		}
		if o, ok := listed[a.Row.ObjectKey]; !ok || o.Size < a.Row.Position+int64(a.Row.Length) {
			continue // reported above as missing or short
		}
		k := rowKey{a.Row.ObjectKey, a.Row.Position}
		data, ok := read[k]
		if !ok {
			if data, err = b.GetRange(ctx, a.Row.ObjectKey, a.Row.Position, int64(a.Row.Length)); err != nil {
				return fmt.Errorf("fsck: read %s: %w", a.Row.ObjectKey, err)
			}
			read[k] = data
		}
		found := false
		batch.Each(data, func(h batch.Header, raw []byte) bool {
			if h.BaseOffset == a.LastOffset && h.Control() && h.ProducerID == a.ProducerID {
				commit, _, err := batch.ParseControl(raw)
				found = err == nil && !commit
			}
			return !found && h.BaseOffset < a.LastOffset
		})
		if !found {
			bad(fmt.Sprintf("no abort marker of the producer at %d in %s", a.LastOffset, a.Row.ObjectKey))
		}
	}
	return nil
}

// Print writes a human-readable report.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "objects in bucket: %d, referenced: %d, index rows: %d\n", r.Objects, r.Referenced, r.IndexRows)
	for _, g := range []struct {
		name string
		ps   []Problem
	}{
		{"MISSING", r.Missing}, {"SHORT", r.Short}, {"UNREGISTERED", r.Unregistered},
		{"SIZE MISMATCH", r.SizeMismatch}, {"ABORTED", r.Aborted}, {"orphan", r.Orphans}, {"unreferenced", r.Unreferenced},
	} {
		for _, p := range g.ps {
			fmt.Fprintf(w, "%s %s: %s\n", g.name, p.Key, p.Detail)
		}
	}
	switch {
	case !r.OK():
		fmt.Fprintln(w, "index and bucket are INCONSISTENT")
	case !r.Clean():
		fmt.Fprintf(w, "consistent; %d orphans and %d unreferenced objects await garbage collection\n", len(r.Orphans), len(r.Unreferenced))
	default:
		fmt.Fprintln(w, "consistent")
	}
}
