package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/paygate/paygate/internal/store"
)

var _ store.AuditCounter = (*Store)(nil)

// auditWhere is the WHERE clause (with its leading space, or empty) of an
// audit filter.
func auditWhere(f store.AuditFilter) (string, []any) {
	var w where
	w.in("type", f.Types)
	if f.Actor != "" {
		w.add("actor = ?", f.Actor)
	}
	w.time("time", f.Since, f.Until)
	if f.AfterSeq > 0 {
		w.add("seq > ?", f.AfterSeq)
	}
	if len(w.conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(w.conds, " AND "), w.args
}

// CountAudit counts the events matching f, including every event appended
// before the call.
func (s *Store) CountAudit(ctx context.Context, f store.AuditFilter) (int64, error) {
	if err := s.sync(ctx); err != nil {
		return 0, err
	}
	cond, args := auditWhere(f)
	var n int64
	if err := s.rdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM audit"+cond, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count audit: %w", err)
	}
	return n, nil
}

// SummarizeAudit counts the events matching f by type and by actor (the
// most active store.AuditTopActors) and reports the time range. The
// three queries run in one read transaction, so they agree.
func (s *Store) SummarizeAudit(ctx context.Context, f store.AuditFilter) (store.AuditSummary, error) {
	out := store.AuditSummary{ByType: map[string]int64{}}
	if err := s.sync(ctx); err != nil {
		return out, err
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return out, fmt.Errorf("summarize audit: %w", err)
	}
	defer tx.Rollback()
	cond, args := auditWhere(f)
	var oldest, newest int64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(MIN(time), 0), COALESCE(MAX(time), 0) FROM audit"+cond, args...).
		Scan(&out.Total, &oldest, &newest); err != nil {
		return out, fmt.Errorf("summarize audit: %w", err)
	}
	out.Oldest, out.Newest = fromNanos(oldest), fromNanos(newest)
	rows, err := tx.QueryContext(ctx, "SELECT type, COUNT(*) FROM audit"+cond+" GROUP BY type", args...)
	if err != nil {
		return out, fmt.Errorf("summarize audit: %w", err)
	}
	for rows.Next() {
		var (
			typ string
			n   int64
		)
		if err := rows.Scan(&typ, &n); err != nil {
			rows.Close()
			return out, err
		}
		out.ByType[typ] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}
	rows, err = tx.QueryContext(ctx, fmt.Sprintf("SELECT actor, COUNT(*) AS n FROM audit%s GROUP BY actor ORDER BY n DESC, actor LIMIT %d",
		cond, store.AuditTopActors), args...)
	if err != nil {
		return out, fmt.Errorf("summarize audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ac store.ActorCount
		if err := rows.Scan(&ac.Actor, &ac.Count); err != nil {
			return out, err
		}
		out.TopActors = append(out.TopActors, ac)
	}
	return out, rows.Err()
}
