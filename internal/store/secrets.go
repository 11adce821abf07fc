package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SecretColumn is a column whose secrets are sealed (internal/seal) by
// their owner before they are stored. Rows written before sealing hold
// them in plain; their owners seal them at start with SealSecrets.
type SecretColumn int

const (
	// SigningKeySecrets are signing_keys.private_key (bytea), by kid.
	SigningKeySecrets SecretColumn = iota + 1
	// BudgetAlertSecrets are budget_alerts.secret (text), by id.
	BudgetAlertSecrets
)

// sql returns the column's table, key and value, the value as bytea for
// comparisons, and whether the value is text.
func (c SecretColumn) sql() (table, id, value, asBytes string, text bool) {
	switch c {
	case SigningKeySecrets:
		return "signing_keys", "kid", "private_key", "private_key", false
	case BudgetAlertSecrets:
		return "budget_alerts", "id", "secret", "convert_to(secret, 'UTF8')", true
	}
	panic(fmt.Sprintf("store: unknown secret column %d", c))
}

// SealSecrets replaces every value of c that does not start with
// sealedPrefix by seal(row id, value), one UPDATE per row, and returns how
// many it replaced. A row is replaced only while it still holds the value
// seal was given, so control planes sealing at once replace each row
// once, and a row changed or deleted meanwhile is left alone.
func (s *Store) SealSecrets(ctx context.Context, c SecretColumn, sealedPrefix string, seal func(id string, plain []byte) ([]byte, error)) (int, error) {
	plain, err := s.plainSecrets(ctx, c, sealedPrefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range plain {
		sealed, err := seal(p.id, p.value)
		if err != nil {
			return n, err
		}
		ok, err := s.replaceSecret(ctx, c, p.id, p.value, sealed)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

type secret struct {
	id    string
	value []byte
}

func (s *Store) plainSecrets(ctx context.Context, c SecretColumn, sealedPrefix string) ([]secret, error) {
	table, id, value, asBytes, _ := c.sql()
	rows, _ := s.pool.Query(ctx, `SELECT `+id+`, `+value+` FROM `+table+`
		WHERE substring(`+asBytes+` FROM 1 FOR length($1::bytea)) <> $1::bytea ORDER BY `+id, []byte(sealedPrefix))
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (secret, error) {
		var sc secret
		return sc, r.Scan(&sc.id, &sc.value)
	})
	if err != nil {
		return nil, fmt.Errorf("store: plain secrets of %s: %w", table, err)
	}
	return out, nil
}

func (s *Store) replaceSecret(ctx context.Context, c SecretColumn, id string, old, value []byte) (bool, error) {
	table, idCol, valueCol, _, text := c.sql()
	args := []any{id, old, value}
	if text {
		args = []any{id, string(old), string(value)}
	}
	tag, err := s.pool.Exec(ctx, `UPDATE `+table+` SET `+valueCol+` = $3 WHERE `+idCol+` = $1 AND `+valueCol+` = $2`, args...)
	if err != nil {
		return false, fmt.Errorf("store: replace secret of %s: %w", table, err)
	}
	return tag.RowsAffected() == 1, nil
}
