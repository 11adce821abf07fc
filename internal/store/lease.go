package store

// Leases: one holder at a time for a named singleton (the control plane's
// leader), with an epoch that fences the writes of a holder that lost it.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotLeader: the write was made under a lease (WithLease) that is no
// longer held by the caller at its epoch: it expired or another replica
// took it over. Nothing was written.
var ErrNotLeader = errors.New("store: lease lost")

// Lease is one term of a holder: the lease's name, who holds it and the
// epoch Postgres gave the term.
type Lease struct {
	Name   string
	Holder string
	Epoch  int64
}

// AcquireLease takes the lease name for holder for ttl if nobody holds it
// or its holder let it expire, starting a new term (the epoch after the
// last one). ok is false, without an error, while someone holds it
// (holder itself included: a holder renews its term with RenewLease).
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (l Lease, ok bool, err error) {
	l = Lease{Name: name, Holder: holder}
	// The conditional upsert locks the row, so of two replicas acquiring
	// at once the second re-reads the first's expires_at and gets nothing.
	err = s.pool.QueryRow(ctx, `
		INSERT INTO leases (name, holder, epoch, expires_at)
		VALUES ($1, $2, 1, now() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE
		   SET holder = excluded.holder, epoch = leases.epoch + 1, expires_at = excluded.expires_at
		 WHERE leases.expires_at <= now()
		RETURNING epoch`, name, holder, ttl.Microseconds()).Scan(&l.Epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("store: acquire lease %s: %w", name, err)
	}
	return l, true, nil
}

// RenewLease extends l's term to ttl from now. It fails with ErrNotLeader
// if the term ended: the lease expired (even if nobody took it: a holder
// that missed its renewals must not act on as if it had not) or it has
// another holder or epoch.
func (s *Store) RenewLease(ctx context.Context, l Lease, ttl time.Duration) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE leases SET expires_at = now() + $4 * interval '1 microsecond'
		 WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()`,
		l.Name, l.Holder, l.Epoch, ttl.Microseconds())
	if err != nil {
		return fmt.Errorf("store: renew lease %s: %w", l.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: renew lease %s epoch %d: %w", l.Name, l.Epoch, ErrNotLeader)
	}
	return nil
}

// ReleaseLease ends l's term now, so another replica need not wait for it
// to expire (a clean shutdown). Releasing a term already over does nothing.
func (s *Store) ReleaseLease(ctx context.Context, l Lease) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE leases SET expires_at = now()
		 WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()`,
		l.Name, l.Holder, l.Epoch)
	if err != nil {
		return fmt.Errorf("store: release lease %s: %w", l.Name, err)
	}
	return nil
}

// LeaseHolder returns the current term of the lease name; ok is false if
// nobody holds it (never taken, expired or released).
func (s *Store) LeaseHolder(ctx context.Context, name string) (l Lease, ok bool, err error) {
	l.Name = name
	err = s.pool.QueryRow(ctx, `
		SELECT holder, epoch FROM leases WHERE name = $1 AND expires_at > now()`, name).Scan(&l.Holder, &l.Epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("store: lease %s: %w", name, err)
	}
	return l, true, nil
}

type leaseKey struct{}

// WithLease returns a context whose fenced writes (placement rounds,
// graceful moves) commit only while l's term lasts; see checkLease. The
// control plane gives it to its singleton loops.
func WithLease(ctx context.Context, l Lease) context.Context {
	return context.WithValue(ctx, leaseKey{}, l)
}

// checkLease fails with ErrNotLeader, inside tx, if ctx carries a lease
// whose term is over. It takes the lease row FOR SHARE: a takeover (an
// UPDATE of that row) waits until tx ends, so a write that passed the
// check commits before any other holder's term begins. Without a lease in
// ctx (REST, tests) it checks nothing.
func checkLease(ctx context.Context, tx pgx.Tx) error {
	l, ok := ctx.Value(leaseKey{}).(Lease)
	if !ok {
		return nil
	}
	var held bool
	err := tx.QueryRow(ctx, `
		SELECT true FROM leases
		 WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()
		   FOR SHARE`, l.Name, l.Holder, l.Epoch).Scan(&held)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store: %s epoch %d: %w", l.Name, l.Epoch, ErrNotLeader)
	}
	if err != nil {
		return fmt.Errorf("store: check lease %s: %w", l.Name, err)
	}
	return nil
}
