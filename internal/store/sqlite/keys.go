package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// policy is the JSON form of the key fields most keys leave unset.
type policy struct {
	AllowedTools    []string          `json:"allowedTools,omitempty"`
	DeniedTools     []string          `json:"deniedTools,omitempty"`
	IPAllowlist     []netip.Prefix    `json:"ipAllowlist,omitempty"`
	Quota           *store.Quota      `json:"quota,omitempty"`
	RateLimitPerMin *int64            `json:"rateLimitPerMin,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
}

// keyRow is a key's row as written; built under Store.mu so the writer
// never reads live state.
type keyRow struct {
	id, prefix, suffix, name, namespace, group string
	hash                                       []byte
	alias                                      any // nil for NULL
	created, expires, revokedAt                int64
	revoked, suspended                         bool
	spendingLimit                              int64
	policy                                     any // nil or JSON text
}

func rowOf(k *store.Key) (keyRow, error) {
	r := keyRow{
		id: k.ID, prefix: k.Prefix, suffix: k.Suffix, name: k.Name, namespace: k.Namespace, group: k.Group,
		hash: append([]byte(nil), k.Hash[:]...), created: nanos(k.CreatedAt), expires: nanos(k.ExpiresAt),
		revokedAt: nanos(k.RevokedAt), revoked: k.Revoked, suspended: k.Suspended, spendingLimit: k.SpendingLimit,
	}
	if k.Alias != "" {
		r.alias = k.Alias
	}
	p := policy{k.AllowedTools, k.DeniedTools, k.IPAllowlist, k.Quota, k.RateLimitPerMin, k.Tags}
	if len(p.AllowedTools)+len(p.DeniedTools)+len(p.IPAllowlist)+len(p.Tags) > 0 || p.Quota != nil || p.RateLimitPerMin != nil {
		j, err := json.Marshal(p)
		if err != nil {
			return r, err
		}
		r.policy = string(j)
	}
	return r, nil
}

const keyColumns = `id, hash, prefix, suffix, name, namespace, alias, created_at, expires_at, revoked, revoked_at, suspended, spending_limit, group_id, policy`

func (r *keyRow) args() []any {
	return []any{r.id, r.hash, r.prefix, r.suffix, r.name, r.namespace, r.alias, r.created, r.expires,
		r.revoked, r.revokedAt, r.suspended, r.spendingLimit, r.group, r.policy}
}

func (x *wtx) insertKey(r *keyRow, opening account, openingSpent, openingCalls int64) error {
	if _, err := x.exec(`INSERT INTO keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.args()...); err != nil {
		return fmt.Errorf("insert key %s: %w", r.id, err)
	}
	a := &opening
	if _, err := x.exec(`INSERT INTO accounts (key_id, balance, spent, calls, last_used_at, day, daily_calls, daily_credits,
		month, monthly_calls, monthly_credits, opening_spent, opening_calls) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.id, a.balance, a.spent, a.calls, a.lastUsed, a.day, a.dailyCalls, a.dailyCredits, a.month, a.monthlyCalls,
		a.monthlyCredits, openingSpent, openingCalls); err != nil {
		return fmt.Errorf("insert account %s: %w", r.id, err)
	}
	return nil
}

func (x *wtx) updateKey(r *keyRow) error {
	_, err := x.exec(`UPDATE keys SET hash = ?, prefix = ?, suffix = ?, name = ?, namespace = ?, alias = ?, created_at = ?,
		expires_at = ?, revoked = ?, revoked_at = ?, suspended = ?, spending_limit = ?, group_id = ?, policy = ? WHERE id = ?`,
		r.hash, r.prefix, r.suffix, r.name, r.namespace, r.alias, r.created, r.expires, r.revoked, r.revokedAt,
		r.suspended, r.spendingLimit, r.group, r.policy, r.id)
	if err != nil {
		return fmt.Errorf("update key %s: %w", r.id, err)
	}
	return nil
}

// loadKeys reads every key and then every account into memory: two plain
// scans into pre-sized maps, cheaper than a join.
func (s *Store) loadKeys(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM keys").Scan(&n); err != nil {
		return err
	}
	x := newKeyIndex(n)
	s.keys = x
	recs := make([]rec, n) // one allocation for all keys loaded at Open
	rows, err := db.QueryContext(ctx, `SELECT id, hash, prefix, suffix, name, namespace, COALESCE(alias, ''),
		created_at, expires_at, revoked, revoked_at, suspended, spending_limit, group_id, policy FROM keys`)
	if err != nil {
		return err
	}
	defer rows.Close()
	// Every id and name goes into one buffer, turned into one string at the
	// end and sliced: no small allocation per key, none interleaved with
	// the scan's garbage (that leaves the heap's small spans fragmented
	// for as long as the keys live).
	type loaded struct {
		r              *rec
		idEnd, nameEnd int
	}
	var (
		text = make([]byte, 0, n*32) // "key_" + 16 hex, and a short name
		all  = make([]loaded, 0, n)
	)
	i := 0
	for rows.Next() {
		var (
			id, hash, prefix, suffix, name, ns, alias, group, pol sql.RawBytes
			revokedAt, spendingLimit                              int64
			r                                                     *rec
		)
		if i < len(recs) {
			r = &recs[i]
		} else {
			r = new(rec)
		}
		i++
		if err := rows.Scan(&id, &hash, &prefix, &suffix, &name, &ns, &alias, &r.created, &r.expires, &r.revoked, &revokedAt,
			&r.suspended, &spendingLimit, &group, &pol); err != nil {
			return err
		}
		if len(hash) != len(r.hash) {
			return fmt.Errorf("key %s: hash has %d bytes", id, len(hash))
		}
		copy(r.hash[:], hash)
		text = append(text, id...)
		idEnd := len(text)
		text = append(text, name...)
		all = append(all, loaded{r, idEnd, len(text)})
		r.ns = x.namespace(string(ns))
		r.stripe = x.nextStripe()
		var e keyExt
		if len(prefix)+len(suffix) <= maskInline {
			r.prefixLen, r.suffixLen = uint8(len(prefix)), uint8(len(suffix))
			copy(r.mask[copy(r.mask[:], prefix):], suffix)
		} else {
			e.prefix, e.suffix = string(prefix), string(suffix)
		}
		if e.prefix != "" || len(alias)+len(group)+len(pol) > 0 || revokedAt != 0 || spendingLimit != 0 {
			e.alias, e.group, e.revokedAt, e.spendingLimit = string(alias), x.group(string(group)), revokedAt, spendingLimit
			if len(pol) > 0 {
				var p policy
				if err := json.Unmarshal(pol, &p); err != nil {
					return fmt.Errorf("key %s: policy: %w", id, err)
				}
				e.allowedTools, e.deniedTools, e.ipAllowlist = p.AllowedTools, p.DeniedTools, p.IPAllowlist
				e.quota, e.rateLimit, e.tags = p.Quota, p.RateLimitPerMin, p.Tags
			}
			r.ext = &e
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	str, start := string(text), 0
	for _, l := range all {
		l.r.id, l.r.name = str[start:l.idEnd], str[l.idEnd:l.nameEnd]
		start = l.nameEnd
		x.add(l.r)
	}
	arows, err := db.QueryContext(ctx, `SELECT key_id, balance, spent, calls, last_used_at, day, daily_calls, daily_credits,
		month, monthly_calls, monthly_credits FROM accounts`)
	if err != nil {
		return err
	}
	defer arows.Close()
	for arows.Next() {
		var (
			id sql.RawBytes
			a  account
		)
		if err := arows.Scan(&id, &a.balance, &a.spent, &a.calls, &a.lastUsed, &a.day, &a.dailyCalls, &a.dailyCredits,
			&a.month, &a.monthlyCalls, &a.monthlyCredits); err != nil {
			return err
		}
		r := x.byID[string(id)]
		if r == nil {
			return fmt.Errorf("account %s has no key", id)
		}
		r.setAccount(a)
	}
	return arows.Err()
}

// normalize is store.NormalizeKey with the bound of the mask a key row
// keeps inline.
func normalize(k *store.Key) error {
	if len(k.Prefix) > 255 {
		return errors.New("key prefix longer than 255 bytes")
	}
	return store.NormalizeKey(k)
}

// CreateKey stores k and grants initial credits in one commit.
func (s *Store) CreateKey(ctx context.Context, k *store.Key, initial credits.Credits, m store.Meta) (*store.Key, store.Account, error) {
	return s.createKey(ctx, k, initial, m, account{}, 0, 0)
}

// createKey is CreateKey with an opening account (see ImportKey).
func (s *Store) createKey(ctx context.Context, in *store.Key, initial credits.Credits, m store.Meta, opening account, openSpent, openCalls int64) (*store.Key, store.Account, error) {
	if err := s.usable(); err != nil {
		return nil, store.Account{}, err
	}
	if err := credits.Validate(initial); err != nil {
		return nil, store.Account{}, fmt.Errorf("initial credits: %w", err)
	}
	now := s.now()
	k := store.NewKeyFrom(in, now)
	if err := normalize(k); err != nil {
		return nil, store.Account{}, fmt.Errorf("create key %s: %w", k.ID, err)
	}
	row, err := rowOf(k)
	if err != nil {
		return nil, store.Account{}, err
	}

	s.mu.Lock()
	x := s.keys
	switch {
	case x.byID[k.ID] != nil:
		s.mu.Unlock()
		return nil, store.Account{}, fmt.Errorf("create key %s: id %w", k.ID, store.ErrAlreadyExists)
	case x.findHash(k.Hash) != nil:
		s.mu.Unlock()
		return nil, store.Account{}, fmt.Errorf("create key %s: hash %w", k.ID, store.ErrAlreadyExists)
	case k.Alias != "" && x.byAlias[k.Alias] != nil:
		s.mu.Unlock()
		return nil, store.Account{}, fmt.Errorf("create key %s: alias %q: %w", k.ID, k.Alias, store.ErrConflict)
	}
	// Not yet indexed, so nobody else can see r: its account needs no lock.
	r := &rec{stripe: x.nextStripe()}
	r.setAccount(opening)
	x.set(r, k)
	x.add(r)
	view := x.peek(r)

	// The key row, the grant line and the account row go in one batch,
	// in that order.
	op := &execOp{fn: func(x *wtx) error { return x.insertKey(&row, opening, openSpent, openCalls) }}
	b := s.w.lock()
	b.execs = append(b.execs, op)
	acct := opening
	if initial > 0 {
		acct.balance += initial
		r.setAccount(acct)
		b.entries = append(b.entries, store.Entry{
			Seq: s.w.nextSeq(), Time: now, KeyID: k.ID, Kind: store.EntryGrant, Delta: initial, BalanceAfter: acct.balance,
			RequestID: m.RequestID, Actor: m.Actor, Note: m.Note,
		})
	}
	b.accts = append(b.accts, acctRow{k.ID, acct})
	a := acct.public()
	t := s.w.unlock(b)
	s.mu.Unlock()
	if err := t.wait(ctx); err != nil {
		return nil, store.Account{}, err
	}
	if op.err != nil {
		return nil, store.Account{}, op.err
	}
	return view, a, nil
}

// LookupHash finds a key by the hash of its secret, from memory.
func (s *Store) LookupHash(_ context.Context, h store.Hash) (*store.Key, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	s.mu.RLock()
	var k *store.Key
	if r := s.keys.findHash(h); r != nil {
		k = s.keys.key(r)
	}
	s.mu.RUnlock()
	if k == nil {
		return nil, store.ErrNotFound
	}
	return k, nil
}

// GetKey returns a key and its account.
func (s *Store) GetKey(_ context.Context, id string) (*store.Key, store.Account, error) {
	if s.closed.Load() {
		return nil, store.Account{}, store.ErrClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.keys.byID[id]
	if r == nil {
		return nil, store.Account{}, fmt.Errorf("key %s: %w", id, store.ErrNotFound)
	}
	a := s.locks.snapshot(r)
	return s.keys.key(r), a.public(), nil
}

// GetKeyByAlias returns a key by its alias.
func (s *Store) GetKeyByAlias(_ context.Context, alias string) (*store.Key, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.keys.byAlias[alias]
	if r == nil || alias == "" {
		return nil, fmt.Errorf("alias %q: %w", alias, store.ErrNotFound)
	}
	return s.keys.key(r), nil
}

// UpdateKey applies fn to a copy of the key and stores the result. fn runs
// once, under the store's key lock: keep it short and never call the store
// from it.
func (s *Store) UpdateKey(ctx context.Context, id string, fn func(*store.Key) error) (*store.Key, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	r := s.keys.byID[id]
	if r == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("update key %s: %w", id, store.ErrNotFound)
	}
	old := s.keys.key(r)
	k := old.Clone()
	if err := fn(k); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if err := s.checkUpdate(old, k); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("update key %s: %w", id, err)
	}
	return s.storeKey(ctx, r, old, k)
}

// RotateKey gives a key a new secret; the old hash stops resolving at once.
func (s *Store) RotateKey(ctx context.Context, id string, h store.Hash, prefix, suffix string) (*store.Key, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	r := s.keys.byID[id]
	switch {
	case r == nil:
		s.mu.Unlock()
		return nil, fmt.Errorf("rotate key %s: %w", id, store.ErrNotFound)
	case r.revoked:
		s.mu.Unlock()
		return nil, fmt.Errorf("rotate key %s: %w", id, store.ErrKeyInactive)
	case s.keys.findHash(h) != nil:
		s.mu.Unlock()
		return nil, fmt.Errorf("rotate key %s: hash %w", id, store.ErrAlreadyExists)
	}
	old := s.keys.key(r)
	k := old.Clone()
	k.Hash, k.Prefix, k.Suffix = h, prefix, suffix
	if err := normalize(k); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("rotate key %s: %w", id, err)
	}
	return s.storeKey(ctx, r, old, k)
}

// checkUpdate refuses what UpdateKey may not change. Called with s.mu held.
func (s *Store) checkUpdate(old, k *store.Key) error {
	if err := store.CheckKeyUpdate(old, k, s.now); err != nil {
		return err
	}
	if k.Alias != "" && k.Alias != old.Alias {
		if o := s.keys.byAlias[k.Alias]; o != nil && o.id != k.ID {
			return fmt.Errorf("alias %q: %w", k.Alias, store.ErrConflict)
		}
	}
	return normalize(k)
}

// storeKey installs k as r's configuration and writes it. Called with s.mu
// held for writing; releases it.
func (s *Store) storeKey(ctx context.Context, r *rec, old, k *store.Key) (*store.Key, error) {
	row, err := rowOf(k)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	x := s.keys
	if old.Alias != "" {
		delete(x.byAlias, old.Alias)
	}
	if k.Hash != old.Hash {
		x.removeHash(r)
	}
	x.set(r, k)
	if k.Hash != old.Hash {
		x.addHash(r)
	}
	if k.Alias != "" {
		x.byAlias[k.Alias] = r
	}
	view := x.peek(r)
	op := &execOp{fn: func(x *wtx) error { return x.updateKey(&row) }}
	b := s.w.lock()
	b.execs = append(b.execs, op)
	t := s.w.unlock(b)
	s.mu.Unlock()
	if err := t.wait(ctx); err != nil {
		return nil, err
	}
	return view, op.err
}

// ListKeys filters, sorts and pages the keys in memory.
func (s *Store) ListKeys(_ context.Context, f store.KeyFilter) ([]store.KeyView, int, error) {
	if s.closed.Load() {
		return nil, 0, store.ErrClosed
	}
	now := f.Now
	if now.IsZero() {
		now = s.now()
	}
	nowNs := now.UnixNano()
	ns := strings.ToLower(f.Namespace)
	prefix := strings.ToLower(f.NamePrefix)
	type hit struct {
		r *rec
		a account
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	x := s.keys
	hits := make([]hit, 0, 64)
	for _, r := range x.byID {
		if ns != "" && x.namespaces[r.ns] != ns || f.Group != "" && r.group() != f.Group {
			continue
		}
		if prefix != "" && !hasPrefixFold(r.name, prefix) {
			continue
		}
		expired := r.expires != 0 && nowNs >= r.expires
		switch f.Status {
		case "":
		case "active":
			if r.revoked || r.suspended || expired {
				continue
			}
		case "suspended":
			if r.revoked || !r.suspended {
				continue
			}
		case "expired":
			if r.revoked || !expired {
				continue
			}
		case "revoked":
			if !r.revoked {
				continue
			}
		default:
			return nil, 0, fmt.Errorf("list keys: unknown status %q", f.Status)
		}
		if len(f.Tags) > 0 && !f.MatchTags(r.tags()) {
			continue
		}
		a := s.locks.snapshot(r)
		if f.MinCredits != nil && a.balance < *f.MinCredits || f.MaxCredits != nil && a.balance > *f.MaxCredits {
			continue
		}
		hits = append(hits, hit{r, a})
	}
	var by func(a, b *hit) int
	switch f.SortBy {
	case "", "createdAt":
		by = func(a, b *hit) int { return cmp.Compare(a.r.created, b.r.created) }
	case "name":
		by = func(a, b *hit) int { return strings.Compare(a.r.name, b.r.name) }
	case "credits":
		by = func(a, b *hit) int { return cmp.Compare(a.a.balance, b.a.balance) }
	case "totalSpent":
		by = func(a, b *hit) int { return cmp.Compare(a.a.spent, b.a.spent) }
	case "totalCalls":
		by = func(a, b *hit) int { return cmp.Compare(a.a.calls, b.a.calls) }
	case "lastUsedAt":
		by = func(a, b *hit) int { return cmp.Compare(a.a.lastUsed, b.a.lastUsed) }
	default:
		return nil, 0, fmt.Errorf("list keys: unknown sort %q", f.SortBy)
	}
	page := store.SortPage(&f, hits, by, func(h *hit) string { return h.r.id })
	out := make([]store.KeyView, 0, len(page))
	for _, h := range page {
		out = append(out, store.KeyView{Key: x.peek(h.r), Account: h.a.public()})
	}
	return out, len(hits), nil
}

func hasPrefixFold(s, lowerPrefix string) bool {
	return len(s) >= len(lowerPrefix) && strings.EqualFold(s[:len(lowerPrefix)], lowerPrefix)
}
