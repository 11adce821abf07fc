package store

// The audit log (migrations/0021_audit_log.sql): rows are appended by
// internal/audit's writer, listed per organisation by REST, and deleted
// by age.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID           int64
	At           time.Time
	OrgID        string
	ClusterID    string
	Principal    string
	Source       string // the client's IP address
	Channel      string // AuditREST or AuditKafka
	Action       string // "topic.create", "acl.delete", "Produce" (a denial), ...
	ResourceType string
	ResourceName string
	Result       string // AuditOK, AuditFailed or AuditDenied
	Detail       string // an error code or reason; never a secret
	Count        int    // how many occurrences the row stands for (denials are aggregated)
}

// Audit channels and results, as the table's checks allow them.
const (
	AuditREST   = "rest"
	AuditKafka  = "kafka"
	AuditOK     = "ok"
	AuditFailed = "failed"
	AuditDenied = "denied"
)

// AuditFilter narrows an audit listing; empty fields match everything.
type AuditFilter struct {
	ClusterID, Principal, Action, Result string
	Since, Until                         time.Time
}

// maxAuditText bounds each text column of a row: a long resource name or
// error message is cut rather than fail the row.
const maxAuditText = 512

// clip makes s fit a text column: valid UTF-8 without NUL (which
// Postgres text refuses, failing the whole batch), at most maxAuditText
// bytes, cut at a rune boundary.
func clip(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= maxAuditText {
		return s
	}
	s = s[:maxAuditText]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// AppendAudit writes entries in one round trip. At and ID are assigned
// by Postgres; a zero Count counts as 1.
func (s *Store) AppendAudit(ctx context.Context, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(entries))
	for _, e := range entries {
		n := max(e.Count, 1)
		at := e.At
		if at.IsZero() {
			at = time.Now()
		}
		rows = append(rows, []any{at, clip(e.OrgID), clip(e.ClusterID), clip(e.Principal), clip(e.Source), e.Channel,
			clip(e.Action), clip(e.ResourceType), clip(e.ResourceName), e.Result, clip(e.Detail), int32(min(n, 1<<31-1))})
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"audit_log"},
		[]string{"at", "org_id", "cluster_id", "principal", "source", "channel", "action", "resource_type", "resource_name", "result", "detail", "count"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("store: append audit: %w", err)
	}
	return nil
}

// AuditLog lists orgID's audit rows newest first, a page at a time; the
// cursor is the last row's id.
func (s *Store) AuditLog(ctx context.Context, orgID string, f AuditFilter, p Page) ([]AuditEntry, string, error) {
	var before int64
	if p.After != "" {
		n, err := strconv.ParseInt(p.After, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", fmt.Errorf("%w: bad cursor", ErrInvalid)
		}
		before = n
	}
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	rows, _ := s.pool.Query(ctx, `SELECT id, at, org_id, cluster_id, principal, source, channel, action,
			resource_type, resource_name, result, detail, count
		FROM audit_log
		WHERE org_id = $1 AND ($2 = 0 OR id < $2)
		  AND ($3 = '' OR cluster_id = $3) AND ($4 = '' OR principal = $4)
		  AND ($5 = '' OR action = $5) AND ($6 = '' OR result = $6)
		  AND ($7::timestamptz IS NULL OR at >= $7) AND ($8::timestamptz IS NULL OR at < $8)
		ORDER BY id DESC LIMIT $9`,
		orgID, before, f.ClusterID, f.Principal, f.Action, f.Result, since, until, p.limit()+1)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		return e, r.Scan(&e.ID, &e.At, &e.OrgID, &e.ClusterID, &e.Principal, &e.Source, &e.Channel, &e.Action,
			&e.ResourceType, &e.ResourceName, &e.Result, &e.Detail, &e.Count)
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: audit log: %w", err)
	}
	out, next := page(out, p.limit(), func(e AuditEntry) string { return strconv.FormatInt(e.ID, 10) })
	return out, next, nil
}

// PruneAudit deletes audit rows older than before, at most limit of them
// (oldest first, so a large backlog is deleted over several calls without
// one long transaction), and returns how many it deleted.
func (s *Store) PruneAudit(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit_log WHERE id IN (
		SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("store: prune audit: %w", err)
	}
	return tag.RowsAffected(), nil
}
