package leader

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrHandOffRefused: the hand-off's commit did not happen (the move was
// cancelled or retargeted, or the target is gone); the partition stays led
// here and accepts appends again.
var ErrHandOffRefused = errors.New("leader: hand-off refused")

// HandOff gives partition id (led here at epoch) away gracefully, copying
// no data: it stops accepting appends (producers get ErrNotLeader and go
// to the new leader once the metadata says so), flushes until everything
// accepted is committed, then runs commit — the fenced store update that
// names the new leader — and drops the partition. Readers are served
// committed data throughout.
//
// If ctx ends or commit fails or declines, appends resume and the error is
// returned; the partition is still led here.
func (m *Manager) HandOff(ctx context.Context, id int64, epoch int32, commit func(context.Context) (bool, error)) error {
	p := m.Partition(id)
	if p == nil || p.Epoch != epoch {
		return ErrNotLeader
	}
	p.mu.Lock()
	if p.lost || p.releasing {
		p.mu.Unlock()
		return ErrNotLeader
	}
	p.releasing = true
	p.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			p.mu.Lock()
			p.releasing = false
			p.mu.Unlock()
		}
	}()

	// Flush until the high watermark reaches the last offset handed out.
	// Appends are refused, so p.next no longer moves.
	for {
		p.mu.Lock()
		lost, done, ch := p.lost, p.hw >= p.next, p.changed
		p.mu.Unlock()
		if lost {
			return ErrNotLeader
		}
		if done {
			break
		}
		if err := m.Flush(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("hand-off flush failed; retrying", "partition", id, "err", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("leader: hand-off of partition %d: %w", id, ctx.Err())
		case <-time.After(m.cfg.FlushInterval):
		}
	}
	done, err := commit(ctx)
	if err != nil {
		return fmt.Errorf("leader: hand-off of partition %d: %w", id, err)
	}
	if !done {
		return ErrHandOffRefused
	}
	ok = true
	m.mu.Lock()
	if m.parts[id] == p {
		delete(m.parts, id)
	}
	m.mu.Unlock()
	p.lose()
	m.log.Info("partition handed off", "partition", id, "epoch", epoch)
	return nil
}
