package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// A transaction Postgres aborted to break a deadlock is run again, a few
// times; other errors are returned at once.
func TestRetryDeadlock(t *testing.T) {
	deadlock := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40P01", Message: "deadlock detected"})
	for _, tc := range []struct {
		name      string
		fails     int
		err       error
		wantCalls int
		wantErr   bool
	}{
		{"deadlock once", 1, deadlock, 2, false},
		{"deadlock always", 100, deadlock, 4, true},
		{"other error", 100, errors.New("boom"), 1, true},
		{"other Postgres error", 100, &pgconn.PgError{Code: "23505"}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := retryDeadlock(context.Background(), func() error {
				calls++
				if calls <= tc.fails {
					return tc.err
				}
				return nil
			})
			if calls != tc.wantCalls || (err != nil) != tc.wantErr {
				t.Errorf("%d calls, err %v; want %d calls, an error: %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}
