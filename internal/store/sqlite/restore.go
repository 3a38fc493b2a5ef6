package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// restorePlan is everything a restore writes, decided before anything is
// written.
type restorePlan struct {
	res  store.RestoreResult
	full bool

	added       []*restoredKey
	overwritten []*overwrittenKey
	entries     []store.Entry // ledger lines to insert (renumbered unless full)
	maxSeq      int64         // full: the snapshot's last seq

	adminKeys    []*store.AdminKey // to insert (full: the whole new table)
	settings     []store.Setting   // to upsert (full: the whole new table)
	audit        []store.AuditEvent
	replaceAudit bool
	now          int64 // unix ns, for settings rows
}

type restoredKey struct {
	key                       *store.Key
	acct                      account
	openingSpent, openingCall int64
	row                       keyRow
}

type overwrittenKey struct {
	rec  *rec
	key  *store.Key
	acct account
	// how much the opening counters move so spent and calls still
	// reconcile with the key's (unchanged) ledger
	dSpent, dCalls int64
	row            keyRow
}

// Restore loads a snapshot (see store.RestoreMode). It validates the
// snapshot, then, holding the key lock so no money operation runs, checks
// it against the store, writes everything in one transaction and only
// then installs the new keys and accounts in memory. Anything refused
// leaves the store as it was.
func (s *Store) Restore(ctx context.Context, snap *store.Snapshot, opts store.RestoreOptions) (*store.RestoreResult, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if !store.ValidMode(opts.Mode) {
		return nil, fmt.Errorf("restore: mode %q (want merge, overwrite or full): %w", opts.Mode, store.ErrInvalid)
	}
	if err := snap.Validate(); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if opts.Now.IsZero() {
		opts.Now = s.now()
	}
	byKey := make(map[string][]store.Entry, len(snap.Keys))
	for _, e := range snap.Ledger {
		byKey[e.KeyID] = append(byKey[e.KeyID], e)
	}
	if opts.Mode != store.RestoreFull {
		if err := s.checkCallIDs(ctx, snap, byKey); err != nil {
			return nil, err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.barrier().wait(ctx); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	p, err := s.planRestore(ctx, snap, byKey, opts)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if opts.DryRun {
		return &p.res, nil
	}

	op := &execOp{fn: func(x *wtx) error { return savepoint(x, func() error { return p.write(x) }) }}
	b := s.w.lock()
	if p.full {
		s.w.seq = max(s.w.seq, p.maxSeq)
	} else {
		for i := range p.entries {
			p.entries[i].Seq = s.w.nextSeq()
		}
	}
	b.execs = append(b.execs, op)
	t := s.w.unlock(b)
	if err := t.wait(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if op.err != nil {
		return nil, fmt.Errorf("restore: nothing was changed: %w", op.err)
	}
	s.install(p)
	return &p.res, nil
}

// savepoint runs fn inside a savepoint of the writer's transaction: if fn
// fails, its writes are rolled back and only this operation fails, not the
// batch it shares with others.
func savepoint(x *wtx, fn func() error) error {
	if _, err := x.exec("SAVEPOINT restore"); err != nil {
		return err
	}
	if ferr := fn(); ferr != nil {
		if _, err := x.exec("ROLLBACK TO restore"); err != nil {
			return errors.Join(ferr, err)
		}
		if _, err := x.exec("RELEASE restore"); err != nil {
			return errors.Join(ferr, err)
		}
		return refusal{ferr}
	}
	_, err := x.exec("RELEASE restore")
	return err
}

// checkCallIDs refuses a merge or overwrite whose new keys bring ledger
// lines with call ids the store already has: they would break the rule
// that a call is charged once.
func (s *Store) checkCallIDs(ctx context.Context, snap *store.Snapshot, byKey map[string][]store.Entry) error {
	var ids []string
	seen := map[string]bool{}
	s.mu.RLock()
	for _, ks := range snap.Keys {
		if s.keys.byID[ks.Key.ID] != nil {
			continue
		}
		for _, e := range byKey[ks.Key.ID] {
			if e.CallID != "" && !seen[e.CallID] {
				seen[e.CallID] = true
				ids = append(ids, e.CallID)
			}
		}
	}
	s.mu.RUnlock()
	const chunk = 500
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		part := ids[:n]
		ids = ids[n:]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		q := "SELECT call_id FROM ledger WHERE call_id <> '' AND call_id IN (" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ") LIMIT 1"
		var hit string
		err := s.rdb.QueryRowContext(ctx, q, args...).Scan(&hit)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("restore: check call ids: %w", err)
		default:
			return fmt.Errorf("restore: the backup's call %s is already in this store's ledger: %w", hit, store.ErrInvalid)
		}
	}
	return nil
}

// planRestore decides what the restore writes. Called with s.mu held and
// the writer caught up.
func (s *Store) planRestore(ctx context.Context, snap *store.Snapshot, byKey map[string][]store.Entry, opts store.RestoreOptions) (*restorePlan, error) {
	p := &restorePlan{full: opts.Mode == store.RestoreFull, now: opts.Now.UnixNano()}
	p.res.Mode, p.res.DryRun = opts.Mode, opts.DryRun
	var bad []string
	refuse := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	x := s.keys

	if p.full {
		inSnap := make(map[string]bool, len(snap.Keys))
		for _, ks := range snap.Keys {
			inSnap[ks.Key.ID] = true
			if x.byID[ks.Key.ID] != nil {
				p.res.KeysOverwritten++
			} else {
				p.res.KeysAdded++
			}
			p.res.ChangedKeys = append(p.res.ChangedKeys, ks.Key.ID)
			rk, err := newRestoredKey(ks, byKey[ks.Key.ID])
			if err != nil {
				return nil, err
			}
			p.added = append(p.added, rk)
		}
		for id := range x.byID {
			if !inSnap[id] {
				p.res.KeysRemoved++
				p.res.ChangedKeys = append(p.res.ChangedKeys, id)
			}
		}
		p.entries = snap.Ledger
		p.res.LedgerEntries = len(snap.Ledger)
		if n := len(snap.Ledger); n > 0 {
			p.maxSeq = snap.Ledger[n-1].Seq
		}
	} else {
		// Aliases as they will be: those of keys left alone, then the new
		// ones; a clash is refused.
		aliases := make(map[string]string, len(x.byAlias))
		overwriting := map[string]bool{}
		if opts.Mode == store.RestoreOverwrite {
			for _, ks := range snap.Keys {
				if x.byID[ks.Key.ID] != nil {
					overwriting[ks.Key.ID] = true
				}
			}
		}
		for a, r := range x.byAlias {
			if !overwriting[r.id] {
				aliases[a] = r.id
			}
		}
		claim := func(alias, id string) {
			if alias == "" {
				return
			}
			if other, taken := aliases[alias]; taken && other != id {
				refuse("key %s: alias %q belongs to key %s in this store", id, alias, other)
				return
			}
			aliases[alias] = id
		}
		for _, ks := range snap.Keys {
			k := ks.Key
			r := x.byID[k.ID]
			if r == nil {
				if o := x.findHash(k.Hash); o != nil {
					refuse("key %s: its secret belongs to key %s in this store", k.ID, o.id)
					continue
				}
				claim(k.Alias, k.ID)
				rk, err := newRestoredKey(ks, byKey[k.ID])
				if err != nil {
					return nil, err
				}
				p.added = append(p.added, rk)
				p.entries = append(p.entries, byKey[k.ID]...)
				p.res.KeysAdded++
				p.res.ChangedKeys = append(p.res.ChangedKeys, k.ID)
				continue
			}
			if !overwriting[k.ID] {
				p.res.KeysSkipped++
				continue
			}
			claim(k.Alias, k.ID)
			ow, adj, err := s.planOverwrite(r, ks, opts, &p.res)
			if err != nil {
				refuse("%v", err)
				continue
			}
			p.overwritten = append(p.overwritten, ow)
			if adj != nil {
				p.entries = append(p.entries, *adj)
				p.res.Adjustments++
			}
			p.res.KeysOverwritten++
			p.res.ChangedKeys = append(p.res.ChangedKeys, k.ID)
		}
		p.res.LedgerEntries = len(p.entries) - p.res.Adjustments
		// Renumbering keeps each key's lines in their order.
		slices.SortStableFunc(p.entries, func(a, b store.Entry) int { return compareSeq(a.Seq, b.Seq) })
	}
	if len(bad) > 0 {
		return nil, &store.SnapshotError{Problems: bad[:min(len(bad), 20)], More: max(len(bad)-20, 0)}
	}

	current, err := readAdminKeys(ctx, s.rdb)
	if err != nil {
		return nil, fmt.Errorf("admin keys: %w", err)
	}
	s.planAdminKeys(p, snap, current, opts)

	names, err := s.settingNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	switch opts.Mode {
	case store.RestoreMerge:
		for _, st := range snap.Settings {
			if !names[st.Name] {
				p.settings = append(p.settings, st)
			}
		}
	default:
		p.settings = snap.Settings
	}
	p.res.SettingsRestored = len(p.settings)

	if snap.Audit != nil {
		if p.full {
			p.audit, p.replaceAudit = snap.Audit, true
			p.res.AuditRestored = len(snap.Audit)
		} else {
			p.res.Warnings = append(p.res.Warnings, fmt.Sprintf("the backup's %d audit events were not restored: audit events are restored only in full mode", len(snap.Audit)))
		}
	}
	return p, nil
}

func compareSeq(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func newRestoredKey(ks store.KeyState, entries []store.Entry) (*restoredKey, error) {
	k := ks.Key.Clone()
	if err := normalize(k); err != nil {
		return nil, fmt.Errorf("key %s: %w: %w", k.ID, err, store.ErrInvalid)
	}
	row, err := rowOf(k)
	if err != nil {
		return nil, err
	}
	spent, calls := store.Opening(ks.Account, entries)
	return &restoredKey{key: k, acct: accountOf(ks.Account), openingSpent: spent, openingCall: calls, row: row}, nil
}

// planOverwrite builds the new state of an existing key: the snapshot's
// configuration and account, except that a revoked key stays revoked and
// a rotated secret stays the current one. The balance moves by one
// adjustment line (returned when non-zero).
func (s *Store) planOverwrite(r *rec, ks store.KeyState, opts store.RestoreOptions, res *store.RestoreResult) (*overwrittenKey, *store.Entry, error) {
	cur := s.keys.key(r)
	k := ks.Key.Clone()
	if k.Hash != cur.Hash {
		k.Hash, k.Prefix, k.Suffix = cur.Hash, cur.Prefix, cur.Suffix
		res.Warnings = append(res.Warnings, fmt.Sprintf("key %s: its secret was rotated after the backup; the current secret is kept", k.ID))
	}
	if cur.Revoked && !k.Revoked {
		k.Revoked, k.RevokedAt = true, cur.RevokedAt
		res.Warnings = append(res.Warnings, fmt.Sprintf("key %s: revoked after the backup; it stays revoked", k.ID))
	}
	if err := normalize(k); err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", k.ID, err)
	}
	row, err := rowOf(k)
	if err != nil {
		return nil, nil, err
	}
	want := accountOf(ks.Account)
	have := r.account()
	ow := &overwrittenKey{rec: r, key: k, acct: want, dSpent: want.spent - have.spent, dCalls: want.calls - have.calls, row: row}
	delta := want.balance - have.balance
	if delta == 0 {
		return ow, nil, nil
	}
	if delta > credits.Max || delta < -credits.Max {
		return nil, nil, fmt.Errorf("key %s: balance would move by %d, more than %d at once", k.ID, delta, credits.Max)
	}
	note := "restore (overwrite): balance set to the backup's"
	if opts.Meta.Note != "" {
		note = opts.Meta.Note
	}
	adj := &store.Entry{Time: opts.Now, KeyID: k.ID, Kind: store.EntryAdjustment, Delta: delta, BalanceAfter: want.balance,
		RequestID: opts.Meta.RequestID, Actor: opts.Meta.Actor, Note: note}
	return ow, adj, nil
}

// planAdminKeys: merge and overwrite add admin keys whose id and secret
// are both new; full replaces the table but keeps opts.KeepAdminKey (the
// operator running the restore) as it is.
func (s *Store) planAdminKeys(p *restorePlan, snap *store.Snapshot, current []*store.AdminKey, opts store.RestoreOptions) {
	if !p.full {
		ids := map[string]bool{}
		hashes := map[store.Hash]bool{}
		for _, k := range current {
			ids[k.ID], hashes[k.Hash] = true, true
		}
		for _, k := range snap.AdminKeys {
			if ids[k.ID] || hashes[k.Hash] {
				p.res.AdminKeysSkipped++
				continue
			}
			c := *k
			p.adminKeys = append(p.adminKeys, &c)
		}
		p.res.AdminKeysAdded = len(p.adminKeys)
		return
	}
	var keep *store.AdminKey
	for _, k := range current {
		if opts.KeepAdminKey != "" && k.ID == opts.KeepAdminKey {
			keep = k
		}
	}
	for _, k := range snap.AdminKeys {
		if keep != nil && (k.ID == keep.ID || k.Hash == keep.Hash) {
			continue
		}
		c := *k
		p.adminKeys = append(p.adminKeys, &c)
	}
	if keep != nil {
		p.adminKeys = append(p.adminKeys, keep)
		p.res.Warnings = append(p.res.Warnings, fmt.Sprintf("admin key %s (the one running the restore) was kept as it is", keep.ID))
	}
	p.res.AdminKeysAdded = len(p.adminKeys)
}

func (s *Store) settingNames(ctx context.Context) (map[string]bool, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT name FROM settings")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}

// write runs on the writer, inside the restore's savepoint.
func (p *restorePlan) write(x *wtx) error {
	if p.full {
		for _, t := range []string{"keys", "accounts", "ledger", "admin_keys", "settings"} {
			if _, err := x.exec("DELETE FROM " + t); err != nil {
				return fmt.Errorf("clear %s: %w", t, err)
			}
		}
		if p.replaceAudit {
			if _, err := x.exec("DELETE FROM audit"); err != nil {
				return fmt.Errorf("clear audit: %w", err)
			}
		}
	}
	for _, rk := range p.added {
		if err := x.insertKey(&rk.row, rk.acct, rk.openingSpent, rk.openingCall); err != nil {
			return err
		}
	}
	for _, ow := range p.overwritten {
		if err := x.updateKey(&ow.row); err != nil {
			return err
		}
		a := &ow.acct
		if _, err := x.exec(`UPDATE accounts SET balance = ?, spent = ?, calls = ?, last_used_at = ?, day = ?, daily_calls = ?,
			daily_credits = ?, month = ?, monthly_calls = ?, monthly_credits = ?, opening_spent = opening_spent + ?,
			opening_calls = opening_calls + ? WHERE key_id = ?`, a.balance, a.spent, a.calls, a.lastUsed, a.day, a.dailyCalls,
			a.dailyCredits, a.month, a.monthlyCalls, a.monthlyCredits, ow.dSpent, ow.dCalls, ow.rec.id); err != nil {
			return fmt.Errorf("update account %s: %w", ow.rec.id, err)
		}
	}
	if err := x.insertEntries(p.entries); err != nil {
		return err
	}
	for _, k := range p.adminKeys {
		if _, err := x.exec("INSERT INTO admin_keys ("+adminColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", adminArgs(k)...); err != nil {
			return fmt.Errorf("insert admin key %s: %w", k.ID, err)
		}
	}
	for _, st := range p.settings {
		v := append([]byte{}, st.Value...)
		if _, err := x.exec(`INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, st.Name, v, p.now); err != nil {
			return fmt.Errorf("put setting %q: %w", st.Name, err)
		}
	}
	for i := range p.audit {
		a := &p.audit[i]
		var meta any
		if len(a.Metadata) > 0 {
			j, err := json.Marshal(a.Metadata)
			if err != nil {
				return fmt.Errorf("audit event %d metadata: %w", a.Seq, err)
			}
			meta = string(j)
		}
		var seq any
		if a.Seq > 0 {
			seq = a.Seq
		}
		if _, err := x.exec(`INSERT INTO audit (seq, time, type, actor, request_id, key_mask, message, metadata)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, seq, nanos(a.Time), a.Type, a.Actor, a.RequestID, a.KeyMask, a.Message, meta); err != nil {
			return fmt.Errorf("insert audit event: %w", err)
		}
	}
	return nil
}

func (x *wtx) insertEntries(es []store.Entry) error {
	if len(es) == 0 {
		return nil
	}
	st, err := x.tx.PrepareContext(x.ctx, `INSERT INTO ledger (seq, time, key_id, kind, delta, balance_after, tool, call_id,
		item, request_id, counterparty, actor, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range es {
		e := &es[i]
		if _, err := st.ExecContext(x.ctx, e.Seq, nanos(e.Time), e.KeyID, string(e.Kind), e.Delta, e.BalanceAfter,
			e.Tool, e.CallID, e.Item, e.RequestID, e.Counterparty, e.Actor, e.Note); err != nil {
			return fmt.Errorf("insert ledger seq %d: %w", e.Seq, err)
		}
	}
	return nil
}

// install puts the committed restore into memory. Called with s.mu held.
func (s *Store) install(p *restorePlan) {
	x := s.keys
	if p.full {
		x = newKeyIndex(len(p.added))
		s.keys = x
	}
	for _, ow := range p.overwritten {
		if a := ow.rec.alias(); a != "" {
			delete(x.byAlias, a)
		}
	}
	for _, ow := range p.overwritten {
		x.set(ow.rec, ow.key)
		if ow.key.Alias != "" {
			x.byAlias[ow.key.Alias] = ow.rec
		}
		mu := s.locks.of(ow.rec)
		mu.Lock()
		ow.rec.setAccount(ow.acct)
		mu.Unlock()
	}
	for _, rk := range p.added {
		r := &rec{stripe: x.nextStripe()}
		r.setAccount(rk.acct)
		x.set(r, rk.key)
		x.add(r)
	}
	// Call ids the window does not know are in the ledger now: make it ask
	// the database (a restart restores the fast path).
	s.calls.mu.Lock()
	if p.full {
		clear(s.calls.cur)
		clear(s.calls.old)
	}
	if len(p.entries) > 0 || p.full {
		s.calls.complete = false
	}
	s.calls.mu.Unlock()
}
