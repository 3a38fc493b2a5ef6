package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// where builds a WHERE clause and its arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) time(col string, since, until time.Time) {
	if !since.IsZero() {
		w.add(col+" >= ?", since.UnixNano())
	}
	if !until.IsZero() {
		w.add(col+" < ?", until.UnixNano())
	}
}

func (w *where) in(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	w.add(col+" IN ("+ph+")", args...)
}

// sql returns " WHERE ... ORDER BY seq [DESC] [LIMIT n]".
func (w *where) sql(desc bool, limit int) string {
	var b strings.Builder
	if len(w.conds) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(w.conds, " AND "))
	}
	b.WriteString(" ORDER BY seq")
	if desc {
		b.WriteString(" DESC")
	}
	if limit > 0 {
		fmt.Fprintf(&b, " LIMIT %d", limit)
	}
	return b.String()
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const ledgerColumns = `seq, time, key_id, kind, delta, balance_after, tool, call_id, item, request_id, counterparty, actor, note`

func scanEntry(sc scanner) (store.Entry, error) {
	var (
		e    store.Entry
		t    int64
		kind string
	)
	if err := sc.Scan(&e.Seq, &t, &e.KeyID, &kind, &e.Delta, &e.BalanceAfter, &e.Tool, &e.CallID, &e.Item,
		&e.RequestID, &e.Counterparty, &e.Actor, &e.Note); err != nil {
		return e, err
	}
	e.Time, e.Kind = fromNanos(t), store.EntryKind(kind)
	return e, nil
}

func scanUsage(sc scanner) (store.UsageRecord, error) {
	var (
		u   store.UsageRecord
		t   int64
		rec []byte
	)
	if err := sc.Scan(&u.Seq, &t, &u.KeyID, &rec); err != nil {
		return u, err
	}
	if err := decodeUsageRec(rec, &u); err != nil {
		return u, fmt.Errorf("usage record %d: %w", u.Seq, err)
	}
	u.Time = fromNanos(t)
	return u, nil
}

const auditColumns = `seq, time, type, actor, request_id, key_mask, message, metadata`

func scanAudit(sc scanner) (store.AuditEvent, error) {
	var (
		e    store.AuditEvent
		t    int64
		meta sql.NullString
	)
	if err := sc.Scan(&e.Seq, &t, &e.Type, &e.Actor, &e.RequestID, &e.KeyMask, &e.Message, &meta); err != nil {
		return e, err
	}
	e.Time = fromNanos(t)
	if meta.Valid {
		if err := json.Unmarshal([]byte(meta.String), &e.Metadata); err != nil {
			return e, fmt.Errorf("audit %d metadata: %w", e.Seq, err)
		}
	}
	return e, nil
}

// Entries returns ledger lines, including every line queued before the call.
func (s *Store) Entries(ctx context.Context, f store.LedgerFilter) ([]store.Entry, error) {
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	var w where
	if f.KeyID != "" {
		w.add("key_id = ?", f.KeyID)
	}
	kinds := make([]string, len(f.Kinds))
	for i, k := range f.Kinds {
		kinds[i] = string(k)
	}
	w.in("kind", kinds)
	w.time("time", f.Since, f.Until)
	if f.AfterSeq > 0 {
		w.add("seq > ?", f.AfterSeq)
	}
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+ledgerColumns+" FROM ledger"+w.sql(f.Desc, f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("ledger entries: %w", err)
	}
	return collect(rows, scanEntry)
}

// AppendUsage queues records; they are written within FlushInterval.
func (s *Store) AppendUsage(recs ...store.UsageRecord) {
	if len(recs) == 0 || s.closed.Load() {
		return
	}
	now := s.now()
	for i := range recs {
		if recs[i].Time.IsZero() {
			recs[i].Time = now
		}
	}
	s.w.appendLogs(recs, nil)
}

// Usage queries usage records, including every record appended before it.
func (s *Store) Usage(ctx context.Context, f store.UsageFilter) ([]store.UsageRecord, error) {
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	var w where
	if f.KeyID != "" {
		w.add("key_id = ?", f.KeyID)
	}
	if f.Namespace != "" {
		w.add("json_extract(rec, '$.ns') = ?", f.Namespace)
	}
	if f.Tool != "" {
		w.add("json_extract(rec, '$.tool') = ?", f.Tool)
	}
	if f.Allowed != nil {
		w.add("json_extract(rec, '$.ok') = ?", *f.Allowed)
	}
	w.time("time", f.Since, f.Until)
	if f.AfterSeq > 0 {
		w.add("seq > ?", f.AfterSeq)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT seq, time, key_id, rec FROM usage`+w.sql(f.Desc, f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	return collect(rows, scanUsage)
}

// pruneStep is how many usage rows one PruneUsage transaction deletes: a
// few milliseconds of the writer, so charges queued behind it barely wait.
const pruneStep = 2000

// PruneUsage deletes usage rows older than before, then all but the
// newest keep, pruneStep rows per commit. The newest row always stays:
// usage seqs are rowids, and an empty table would hand them out again.
func (s *Store) PruneUsage(ctx context.Context, before time.Time, keep int) (int, error) {
	if err := s.sync(ctx); err != nil { // records appended earlier are prunable too
		return 0, err
	}
	var maxSeq, cutoff int64
	err := s.rdb.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM usage").Scan(&maxSeq)
	if err == nil && keep > 0 {
		cutoff, err = s.keepCutoff(ctx, "usage", keep)
	}
	if err != nil {
		return 0, fmt.Errorf("prune usage: %w", err)
	}
	total := 0
	step := func(query string, args ...any) error {
		for {
			n, err := s.deleteWhere(ctx, query, args...)
			if err != nil {
				return fmt.Errorf("prune usage: %w", err)
			}
			total += n
			if n < pruneStep {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if !before.IsZero() && maxSeq > 0 {
		if err := step("DELETE FROM usage WHERE seq IN (SELECT seq FROM usage WHERE time < ? AND seq < ? LIMIT ?)",
			before.UnixNano(), maxSeq, pruneStep); err != nil {
			return total, err
		}
	}
	if cutoff > 0 {
		if err := step("DELETE FROM usage WHERE seq IN (SELECT seq FROM usage WHERE seq <= ? ORDER BY seq LIMIT ?)",
			cutoff, pruneStep); err != nil {
			return total, err
		}
	}
	return total, nil
}

// AppendAudit queues events; they are written within FlushInterval.
func (s *Store) AppendAudit(evs ...store.AuditEvent) {
	if len(evs) == 0 || s.closed.Load() {
		return
	}
	now := s.now()
	for i := range evs {
		if evs[i].Time.IsZero() {
			evs[i].Time = now
		}
	}
	s.w.appendLogs(nil, evs)
}

// Audit queries the audit trail, including every event appended before it.
// Metadata numbers come back as float64 (JSON).
func (s *Store) Audit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	var w where
	w.in("type", f.Types)
	if f.Actor != "" {
		w.add("actor = ?", f.Actor)
	}
	w.time("time", f.Since, f.Until)
	if f.AfterSeq > 0 {
		w.add("seq > ?", f.AfterSeq)
	}
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+auditColumns+" FROM audit"+w.sql(f.Desc, f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return collect(rows, scanAudit)
}

// PruneAudit deletes events older than before, then all but the newest
// keep (0: no count limit).
func (s *Store) PruneAudit(ctx context.Context, before time.Time, keep int) (n int, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("prune audit: %w", err)
		}
	}()
	if err := s.sync(ctx); err != nil { // events appended earlier are prunable too
		return 0, err
	}
	if !before.IsZero() {
		if n, err = s.deleteWhere(ctx, "DELETE FROM audit WHERE time < ?", before.UnixNano()); err != nil {
			return n, err
		}
	}
	if keep <= 0 {
		return n, nil
	}
	cutoff, err := s.keepCutoff(ctx, "audit", keep)
	if err != nil || cutoff == 0 {
		return n, err
	}
	d, err := s.deleteWhere(ctx, "DELETE FROM audit WHERE seq <= ?", cutoff)
	return n + d, err
}

// deleteWhere runs one DELETE on the writer and reports the rows it
// removed.
func (s *Store) deleteWhere(ctx context.Context, query string, args ...any) (int, error) {
	var n int64
	err := s.w.exec(ctx, func(x *wtx) error {
		res, err := x.exec(query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// keepCutoff returns the highest seq of table that is not among its newest
// keep rows (0: none). Finding it walks keep rows, so the walk goes through
// a scan connection and not the writer's: it would fill the writer's page
// cache with pages no write needs. Rows appended meanwhile only make the
// cutoff keep a few more.
func (s *Store) keepCutoff(ctx context.Context, table string, keep int) (int64, error) {
	var minSeq, maxSeq, cutoff int64
	err := s.rdb.QueryRowContext(ctx, "SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM "+table).Scan(&minSeq, &maxSeq)
	// Fewer seqs than keep in the whole range: no walk needed.
	if err != nil || maxSeq-minSeq+1 <= int64(keep) {
		return 0, err
	}
	err = s.scan(ctx, "", func(db *sql.DB) error {
		return db.QueryRowContext(ctx, "SELECT COALESCE((SELECT seq FROM "+table+" ORDER BY seq DESC LIMIT 1 OFFSET ?), 0)", keep).Scan(&cutoff)
	})
	return cutoff, err
}
