package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/paygate/paygate/internal/store"
)

var (
	_ store.Snapshotter = (*Store)(nil)
	_ store.Restorer    = (*Store)(nil)
)

// Snapshot returns a consistent copy of the store. It holds the key lock
// (which every money operation takes) only while it copies the keys and
// accounts from memory and pins a read transaction on a database that
// has caught up with memory; the ledger, admin keys, settings and audit
// events are then read from that transaction while the gateway carries
// on. So the snapshot's accounts and ledger describe the same instant.
func (s *Store) Snapshot(ctx context.Context, opts store.SnapshotOptions) (*store.Snapshot, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	snap, tx, lastSeq, err := s.pinSnapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer tx.Rollback()
	if snap.Ledger, err = readLedger(ctx, tx, lastSeq); err != nil {
		return nil, fmt.Errorf("snapshot: ledger: %w", err)
	}
	if snap.AdminKeys, err = readAdminKeys(ctx, tx); err != nil {
		return nil, fmt.Errorf("snapshot: admin keys: %w", err)
	}
	if snap.Settings, err = readSettings(ctx, tx); err != nil {
		return nil, fmt.Errorf("snapshot: settings: %w", err)
	}
	if opts.Audit {
		if snap.Audit, err = readAudit(ctx, tx); err != nil {
			return nil, fmt.Errorf("snapshot: audit: %w", err)
		}
	}
	return snap, nil
}

// pinSnapshot copies keys and accounts under the key lock, once every
// queued write is committed, and opens the read transaction the rest of
// the snapshot comes from. The first read inside it (the last ledger seq)
// fixes the database state it sees.
func (s *Store) pinSnapshot(ctx context.Context) (*store.Snapshot, *sql.Tx, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.barrier().wait(ctx); err != nil {
		return nil, nil, 0, err
	}
	if err := s.usable(); err != nil {
		return nil, nil, 0, err
	}
	snap := &store.Snapshot{TakenAt: s.now().UTC(), Keys: make([]store.KeyState, 0, len(s.keys.byID))}
	for _, r := range s.keys.byID {
		snap.Keys = append(snap.Keys, store.KeyState{Key: s.keys.peek(r), Account: r.account().public()})
	}
	slices.SortFunc(snap.Keys, func(a, b store.KeyState) int { return strings.Compare(a.Key.ID, b.Key.ID) })
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, 0, err
	}
	var lastSeq int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM ledger").Scan(&lastSeq); err != nil {
		tx.Rollback()
		return nil, nil, 0, err
	}
	return snap, tx, lastSeq, nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryAll runs query on q and scans every row with scan.
func queryAll[T any](ctx context.Context, q queryer, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scan)
}

func readLedger(ctx context.Context, q queryer, lastSeq int64) ([]store.Entry, error) {
	return queryAll(ctx, q, scanEntry, "SELECT "+ledgerColumns+" FROM ledger WHERE seq <= ? ORDER BY seq", lastSeq)
}

func readAdminKeys(ctx context.Context, q queryer) ([]*store.AdminKey, error) {
	return queryAll(ctx, q, scanAdmin, "SELECT "+adminColumns+" FROM admin_keys ORDER BY created_at, id")
}

func readSettings(ctx context.Context, q queryer) ([]store.Setting, error) {
	return queryAll(ctx, q, scanSetting, "SELECT name, value FROM settings ORDER BY name")
}

func scanSetting(sc scanner) (store.Setting, error) {
	var st store.Setting
	err := sc.Scan(&st.Name, &st.Value)
	return st, err
}

func readAudit(ctx context.Context, q queryer) ([]store.AuditEvent, error) {
	return queryAll(ctx, q, scanAudit, "SELECT "+auditColumns+" FROM audit ORDER BY seq")
}
