package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
)

// TestLeaseTerms: one holder at a time, including among replicas that
// acquire at once; the lease passes on only after it expired (or was
// released), at the next epoch; a holder that resumes after its term
// expired cannot renew it, and its fenced writes fail even before anyone
// else took the lease.
func TestLeaseTerms(t *testing.T) {
	st := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ttl = 600 * time.Millisecond

	// Racing acquirers: exactly one wins.
	var (
		mu  sync.Mutex
		won []store.Lease
		wg  sync.WaitGroup
	)
	for _, h := range []string{"a", "b", "c", "d"} {
		wg.Go(func() {
			l, ok, err := st.AcquireLease(ctx, "cp", h, ttl)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				won = append(won, l)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || won[0].Epoch != 1 {
		t.Fatalf("acquirers that won: %+v, want one at epoch 1", won)
	}
	first := won[0]
	other := "b"
	if first.Holder == other {
		other = "a"
	}
	if _, ok, err := st.AcquireLease(ctx, "cp", first.Holder, ttl); err != nil || ok {
		t.Fatalf("the holder acquired its own live lease again: %v %v", ok, err)
	}
	if err := st.RenewLease(ctx, first, ttl); err != nil {
		t.Fatal(err)
	}
	if h, ok, err := st.LeaseHolder(ctx, "cp"); err != nil || !ok || h != first {
		t.Fatalf("holder %+v %v %v, want %+v", h, ok, err, first)
	}

	// A fenced write under the live term commits.
	fenced := store.WithLease(ctx, first)
	if _, _, err := st.PlaceRound(fenced, func([]store.BrokerLoad, []store.Item) []store.Assignment { return nil }); err != nil {
		t.Fatalf("place round under the live lease: %v", err)
	}

	// The holder pauses past its TTL: its term is over even though
	// nobody took the lease yet.
	time.Sleep(ttl + 100*time.Millisecond)
	if _, _, err := st.PlaceRound(fenced, func([]store.BrokerLoad, []store.Item) []store.Assignment { return nil }); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("place round under an expired lease: %v, want ErrNotLeader", err)
	}
	if _, err := st.RequestMoves(fenced, []store.Move{{PartitionID: 1, To: 1}}); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("moves under an expired lease: %v, want ErrNotLeader", err)
	}
	if _, ok, _ := st.LeaseHolder(ctx, "cp"); ok {
		t.Fatal("an expired lease has a holder")
	}

	second, ok, err := st.AcquireLease(ctx, "cp", other, ttl)
	if err != nil || !ok || second.Epoch != 2 {
		t.Fatalf("takeover after expiry: %+v %v %v, want epoch 2", second, ok, err)
	}
	// The paused holder resumes: its renewal fails, it cannot take the
	// lease back, and its writes stay fenced.
	if err := st.RenewLease(ctx, first, ttl); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("renewal by the deposed holder: %v, want ErrNotLeader", err)
	}
	if _, ok, err := st.AcquireLease(ctx, "cp", first.Holder, ttl); err != nil || ok {
		t.Fatalf("the deposed holder took a live lease: %v %v", ok, err)
	}
	if _, _, err := st.ExpireMoves(fenced, time.Minute); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("expire moves under a deposed lease: %v, want ErrNotLeader", err)
	}

	// Released, the lease passes on at once, at the next epoch; writes
	// without a lease in their context are not fenced.
	if err := st.ReleaseLease(ctx, second); err != nil {
		t.Fatal(err)
	}
	third, ok, err := st.AcquireLease(ctx, "cp", first.Holder, ttl)
	if err != nil || !ok || third.Epoch != 3 {
		t.Fatalf("acquire after release: %+v %v %v, want epoch 3", third, ok, err)
	}
	if _, _, err := st.ExpireMoves(ctx, time.Minute); err != nil {
		t.Fatalf("unfenced write: %v", err)
	}
}
