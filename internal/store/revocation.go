package store

import (
	"context"
	"fmt"
)

// CredentialsGone returns those of keys (API key ids) and accounts
// (service account ids) that no longer exist, in one round trip: brokers
// re-check the credentials of their open connections with it, in case a
// notification on eddy_revoke was lost.
func (s *Store) CredentialsGone(ctx context.Context, keys, accounts []string) (goneKeys, goneAccounts []string, err error) {
	if len(keys) == 0 && len(accounts) == 0 {
		return nil, nil, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT 'key', k.id FROM unnest($1::text[]) AS k(id)
			WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE id = k.id)
		UNION ALL
		SELECT 'account', a.id FROM unnest($2::text[]) AS a(id)
			WHERE NOT EXISTS (SELECT 1 FROM service_accounts WHERE id = a.id)`, keys, accounts)
	if err != nil {
		return nil, nil, fmt.Errorf("store: credentials gone: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, id string
		if err := rows.Scan(&kind, &id); err != nil {
			return nil, nil, fmt.Errorf("store: credentials gone: %w", err)
		}
		if kind == "key" {
			goneKeys = append(goneKeys, id)
		} else {
			goneAccounts = append(goneAccounts, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: credentials gone: %w", err)
	}
	return goneKeys, goneAccounts, nil
}
