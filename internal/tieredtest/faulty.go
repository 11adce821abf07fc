package tieredtest

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/eddy-streams/eddy/tiered/bucket"
)

// ErrDown is what a Faulty bucket returns while it is down.
var ErrDown = errors.New("tieredtest: object store unavailable")

// Faulty wraps a bucket and fails every request while down: an object
// store that is stopped, deterministically, in-process.
type Faulty struct {
	bucket.Bucket
	down    atomic.Bool
	refused atomic.Int64
}

// SetDown stops (true) or restarts (false) the store.
func (f *Faulty) SetDown(down bool) { f.down.Store(down) }

func (f *Faulty) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.down.Load() {
		return ErrDown
	}
	return nil
}

// Refused returns how many Puts were refused because the store was down.
// A leader's flushes take turns, so a Put refused after SetDown(true) also
// says that any flush whose Put got in before it has finished its commit.
func (f *Faulty) Refused() int64 { return f.refused.Load() }

func (f *Faulty) Put(ctx context.Context, key string, data []byte) error {
	if err := f.check(ctx); err != nil {
		if errors.Is(err, ErrDown) {
			f.refused.Add(1)
		}
		return err
	}
	return f.Bucket.Put(ctx, key, data)
}

func (f *Faulty) Get(ctx context.Context, key string) ([]byte, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	return f.Bucket.Get(ctx, key)
}

func (f *Faulty) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	return f.Bucket.GetRange(ctx, key, off, n)
}

func (f *Faulty) Delete(ctx context.Context, key string) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	return f.Bucket.Delete(ctx, key)
}

func (f *Faulty) List(ctx context.Context, prefix string, fn func(bucket.Object) error) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	return f.Bucket.List(ctx, prefix, fn)
}
