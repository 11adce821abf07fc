package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SecretColumn is a column whose secrets are sealed (internal/seal) by
// their owner before they are stored. Rows written before sealing hold
// them in plain; their owners seal them at start with PlainSecrets and
// ReplaceSecret.
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

// Secret is one row's secret as stored.
type Secret struct {
	ID    string
	Value []byte
}

// PlainSecrets returns the rows of c whose value does not start with
// sealedPrefix.
func (s *Store) PlainSecrets(ctx context.Context, c SecretColumn, sealedPrefix string) ([]Secret, error) {
	table, id, value, asBytes, _ := c.sql()
	rows, _ := s.pool.Query(ctx, `SELECT `+id+`, `+value+` FROM `+table+`
		WHERE substring(`+asBytes+` FROM 1 FOR length($1::bytea)) <> $1::bytea ORDER BY `+id, []byte(sealedPrefix))
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Secret, error) {
		var sc Secret
		return sc, r.Scan(&sc.ID, &sc.Value)
	})
	if err != nil {
		return nil, fmt.Errorf("store: plain secrets of %s: %w", table, err)
	}
	return out, nil
}

// ReplaceSecret sets the secret of row id of c to value if it still holds
// old, and reports whether it did: control planes sealing the same rows
// at once each replace a row at most once, and a row changed or deleted
// meanwhile is left alone.
func (s *Store) ReplaceSecret(ctx context.Context, c SecretColumn, id string, old, value []byte) (bool, error) {
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
