package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/paygate/paygate/internal/store"
)

// Verify recomputes every account from the ledger and compares it with the
// accounts table and with memory: balance must equal the sum of the key's
// deltas, every line's BalanceAfter the running sum, spent and calls the
// opening values plus charges minus refunds. It holds the key lock for its
// whole run, so money operations wait; run it at startup or in tests.
func (s *Store) Verify(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.barrier().wait(ctx); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	type sums struct{ balance, spent, calls int64 }
	ledger := make(map[string]*sums)
	rows, err := s.rdb.QueryContext(ctx, "SELECT seq, key_id, kind, delta, balance_after FROM ledger ORDER BY seq")
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var errs []error
	for rows.Next() {
		var (
			seq, delta, after int64
			keyID, kind       string
		)
		if err := rows.Scan(&seq, &keyID, &kind, &delta, &after); err != nil {
			rows.Close()
			return fmt.Errorf("verify: %w", err)
		}
		sm := ledger[keyID]
		if sm == nil {
			sm = &sums{}
			ledger[keyID] = sm
		}
		sm.balance += delta
		switch store.EntryKind(kind) {
		case store.EntryCharge:
			sm.spent -= delta
			sm.calls++
		case store.EntryRefund:
			sm.spent -= delta
			// A partial refund gives credits back but the call still counts.
		}
		if after != sm.balance && len(errs) < 20 {
			errs = append(errs, fmt.Errorf("ledger seq %d (key %s): balance after %d, running sum %d", seq, keyID, after, sm.balance))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	// Full refunds take the call back; count them apart since a partial one
	// leaves it.
	fullRefunds, err := s.fullRefunds(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	arows, err := s.rdb.QueryContext(ctx, "SELECT key_id, balance, spent, calls, opening_spent, opening_calls FROM accounts")
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer arows.Close()
	seen := 0
	for arows.Next() {
		var (
			id                                          string
			balance, spent, calls, openSpent, openCalls int64
		)
		if err := arows.Scan(&id, &balance, &spent, &calls, &openSpent, &openCalls); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		seen++
		want := ledger[id]
		if want == nil {
			want = &sums{}
		}
		wantCalls := openCalls + want.calls - fullRefunds[id]
		if balance != want.balance || spent != openSpent+want.spent || calls != wantCalls {
			errs = append(errs, fmt.Errorf("key %s: table balance/spent/calls %d/%d/%d, ledger says %d/%d/%d",
				id, balance, spent, calls, want.balance, openSpent+want.spent, wantCalls))
		}
		r := s.keys.byID[id]
		if r == nil {
			errs = append(errs, fmt.Errorf("key %s: in the accounts table, not in memory", id))
			continue
		}
		if m := s.locks.snapshot(r); m.balance != balance || m.spent != spent || m.calls != calls {
			errs = append(errs, fmt.Errorf("key %s: memory balance/spent/calls %d/%d/%d, table %d/%d/%d",
				id, m.balance, m.spent, m.calls, balance, spent, calls))
		}
	}
	if err := arows.Err(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if seen != len(s.keys.byID) {
		errs = append(errs, fmt.Errorf("%d accounts in the table, %d keys in memory", seen, len(s.keys.byID)))
	}
	for id := range ledger {
		if s.keys.byID[id] == nil {
			errs = append(errs, fmt.Errorf("ledger lines for unknown key %s", id))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("verify: %w", errors.Join(errs...))
	}
	return nil
}

// fullRefunds counts, per key, refunds that gave back a whole charge.
func (s *Store) fullRefunds(ctx context.Context) (map[string]int64, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT r.key_id, COUNT(*) FROM ledger r JOIN ledger c
		ON c.call_id = r.call_id AND c.call_id <> '' AND c.item = r.item AND c.kind = 'charge'
		WHERE r.kind = 'refund' AND r.call_id <> '' AND r.delta = -c.delta GROUP BY r.key_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]int64)
	for rows.Next() {
		var (
			id string
			n  int64
		)
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
