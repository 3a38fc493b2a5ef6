package redisstore

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// keyDoc is a key's configuration as stored: the JSON after "<version>:"
// in the keys hash, and the payload of a key event.
type keyDoc struct {
	ID              string            `json:"id"`
	Hash            string            `json:"h"`
	Prefix          string            `json:"p,omitempty"`
	Suffix          string            `json:"s,omitempty"`
	Name            string            `json:"n,omitempty"`
	Namespace       string            `json:"ns,omitempty"`
	Alias           string            `json:"al,omitempty"`
	Created         int64             `json:"c,omitempty"`
	Expires         int64             `json:"e,omitempty"`
	Revoked         bool              `json:"rv,omitempty"`
	RevokedAt       int64             `json:"ra,omitempty"`
	Suspended       bool              `json:"su,omitempty"`
	AllowedTools    []string          `json:"at,omitempty"`
	DeniedTools     []string          `json:"dt,omitempty"`
	IPAllowlist     []netip.Prefix    `json:"ip,omitempty"`
	SpendingLimit   int64             `json:"sl,omitempty"`
	Quota           *store.Quota      `json:"q,omitempty"`
	RateLimitPerMin *int64            `json:"rl,omitempty"`
	Tags            map[string]string `json:"tg,omitempty"`
	Group           string            `json:"g,omitempty"`
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func hexHash(h store.Hash) string { return hex.EncodeToString(h[:]) }

func encodeKey(k *store.Key) (string, error) {
	d := keyDoc{
		ID: k.ID, Hash: hexHash(k.Hash), Prefix: k.Prefix, Suffix: k.Suffix, Name: k.Name, Namespace: k.Namespace,
		Alias: k.Alias, Created: nanos(k.CreatedAt), Expires: nanos(k.ExpiresAt), Revoked: k.Revoked,
		RevokedAt: nanos(k.RevokedAt), Suspended: k.Suspended, AllowedTools: k.AllowedTools, DeniedTools: k.DeniedTools,
		IPAllowlist: k.IPAllowlist, SpendingLimit: k.SpendingLimit, Quota: k.Quota, RateLimitPerMin: k.RateLimitPerMin,
		Tags: k.Tags, Group: k.Group,
	}
	b, err := json.Marshal(d)
	return string(b), err
}

// decodeRecord parses "<version>:<JSON>" into a fresh *store.Key.
func decodeRecord(rec string) (int64, *store.Key, error) {
	v, doc, ok := strings.Cut(rec, ":")
	if !ok {
		return 0, nil, fmt.Errorf("malformed key record %.40q", rec)
	}
	ver, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("malformed key record version %q", v)
	}
	var d keyDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return 0, nil, fmt.Errorf("key record: %w", err)
	}
	k := &store.Key{
		ID: d.ID, Prefix: d.Prefix, Suffix: d.Suffix, Name: d.Name, Namespace: d.Namespace, Alias: d.Alias,
		CreatedAt: fromNanos(d.Created), ExpiresAt: fromNanos(d.Expires), Revoked: d.Revoked,
		RevokedAt: fromNanos(d.RevokedAt), Suspended: d.Suspended, AllowedTools: d.AllowedTools,
		DeniedTools: d.DeniedTools, IPAllowlist: d.IPAllowlist, SpendingLimit: d.SpendingLimit, Quota: d.Quota,
		RateLimitPerMin: d.RateLimitPerMin, Tags: d.Tags, Group: d.Group,
	}
	if b, err := hex.DecodeString(d.Hash); err != nil || len(b) != len(k.Hash) {
		return 0, nil, fmt.Errorf("key %s: malformed hash", d.ID)
	} else {
		copy(k.Hash[:], b)
	}
	if k.Namespace == "" {
		k.Namespace = "default"
	}
	return ver, k, nil
}

// normalize is store.NormalizeKey plus the rule of the Redis key names (an
// id without braces, which would break the hash tag); its errors match
// store.ErrInvalid.
func normalize(k *store.Key) error {
	if err := store.NormalizeKey(k); err != nil {
		return fmt.Errorf("%w: %w", err, store.ErrInvalid)
	}
	if k.ID == "" || strings.ContainsAny(k.ID, "{}") {
		return fmt.Errorf("key id %q: %w", k.ID, store.ErrInvalid)
	}
	return nil
}

// CreateKey stores k and grants initial credits in one script.
func (s *Store) CreateKey(ctx context.Context, k *store.Key, initial credits.Credits, m store.Meta) (*store.Key, store.Account, error) {
	return s.createKey(ctx, k, initial, m, store.Account{})
}

// ImportKey creates a key carried over from another system with its
// opening counters (spent, calls, last use, quota usage) and no charge
// entries; initial becomes a grant entry. opening.Balance is ignored.
func (s *Store) ImportKey(ctx context.Context, k *store.Key, initial credits.Credits, opening store.Account, m store.Meta) (*store.Key, store.Account, error) {
	if opening.Spent < 0 || opening.Calls < 0 {
		return nil, store.Account{}, fmt.Errorf("import key: opening spent and calls must not be negative: %w", store.ErrInvalid)
	}
	return s.createKey(ctx, k, initial, m, opening)
}

func (s *Store) createKey(ctx context.Context, in *store.Key, initial credits.Credits, m store.Meta, open store.Account) (*store.Key, store.Account, error) {
	if err := s.usable(); err != nil {
		return nil, store.Account{}, err
	}
	if err := credits.Validate(initial); err != nil {
		return nil, store.Account{}, fmt.Errorf("initial credits: %w: %w", store.ErrInvalid, err)
	}
	now := s.now()
	k := store.NewKeyFrom(in, now)
	if err := normalize(k); err != nil {
		return nil, store.Account{}, fmt.Errorf("create key %s: %w", k.ID, err)
	}
	doc, err := encodeKey(k)
	if err != nil {
		return nil, store.Account{}, err
	}
	rv := "0"
	if k.Revoked {
		rv = "1"
	}
	keys := []string{s.k.keys, s.k.hashes, s.k.aliases, s.k.acct(k.ID), s.k.kver, s.k.ledger, s.k.seq, s.k.lk(k.ID)}
	res, waitErr, err := s.run(ctx, scCreateKey, keys, k.ID, hexHash(k.Hash), k.Alias, doc, initial, strconv.FormatInt(nanos(now), 10),
		m.RequestID, m.Actor, m.Note, s.k.events, rv,
		open.Spent, open.Calls, strconv.FormatInt(nanos(open.LastUsedAt), 10), open.Day, open.DailyCalls, open.DailyCredits,
		open.Month, open.MonthlyCalls, open.MonthlyCredits)
	if err != nil {
		return nil, store.Account{}, s.unavailable("create key "+k.ID, err)
	}
	r, err := toReply(res)
	if err != nil {
		return nil, store.Account{}, err
	}
	switch r[0] {
	case "OK":
	case "EXISTS":
		return nil, store.Account{}, fmt.Errorf("create key %s: %s %w", k.ID, r[1], store.ErrAlreadyExists)
	case "CONFLICT":
		return nil, store.Account{}, fmt.Errorf("create key %s: alias %q: %w", k.ID, k.Alias, store.ErrConflict)
	default:
		return nil, store.Account{}, statusErr("create key", r)
	}
	if waitErr != nil {
		return nil, store.Account{}, fmt.Errorf("create key %s: %w", k.ID, waitErr)
	}
	a, _ := parseAccount(r[1:12])
	key, err := s.cache.applyRecord(r[12])
	if err != nil {
		return nil, store.Account{}, err
	}
	return key, a, nil
}

// LookupHash finds a key by the hash of its secret: from the cache, or on
// a miss (a key created on another instance a moment ago) from Redis.
func (s *Store) LookupHash(ctx context.Context, h store.Hash) (*store.Key, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if k := s.cache.byHashOf(h); k != nil {
		return k, nil
	}
	k, err := s.lookup(ctx, s.k.hashes, hexHash(h))
	if err != nil {
		return nil, err
	}
	if k.Hash != h { // rotated away meanwhile
		return nil, store.ErrNotFound
	}
	return k, nil
}

// lookup resolves an index entry to a key in one round trip and refreshes
// the cache with it.
func (s *Store) lookup(ctx context.Context, index, field string) (*store.Key, error) {
	res, _, err := s.run(ctx, scLookup, []string{index, s.k.keys}, field)
	if err != nil {
		return nil, s.unavailable("key lookup", err)
	}
	r, err := toReply(res)
	if err != nil {
		return nil, err
	}
	if r[0] != "OK" {
		return nil, store.ErrNotFound
	}
	return s.cache.applyRecord(r[1])
}

// GetKey returns a key and its account, read from Redis.
func (s *Store) GetKey(ctx context.Context, id string) (*store.Key, store.Account, error) {
	if err := s.usable(); err != nil {
		return nil, store.Account{}, err
	}
	pipe := s.rdb.Pipeline()
	rec := pipe.HGet(ctx, s.k.keys, id)
	acct := pipe.HMGet(ctx, s.k.acct(id), acctFields...)
	_, err := pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		return nil, store.Account{}, fmt.Errorf("key %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, store.Account{}, s.unavailable("get key "+id, err)
	}
	k, err := s.cache.applyRecord(rec.Val())
	if err != nil {
		return nil, store.Account{}, err
	}
	a, ok := accountOf(acct.Val())
	if !ok {
		return nil, store.Account{}, fmt.Errorf("key %s: account %w", id, store.ErrNotFound)
	}
	return k, a, nil
}

// GetKeyByAlias returns a key by its alias, read from Redis.
func (s *Store) GetKeyByAlias(ctx context.Context, alias string) (*store.Key, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if alias == "" {
		return nil, fmt.Errorf("alias %q: %w", alias, store.ErrNotFound)
	}
	k, err := s.lookup(ctx, s.k.aliases, alias)
	if errors.Is(err, store.ErrNotFound) || err == nil && k.Alias != alias {
		return nil, fmt.Errorf("alias %q: %w", alias, store.ErrNotFound)
	}
	return k, err
}

// UpdateKey applies fn to a copy of the current key (read from Redis) and
// stores the result if nobody changed the key meanwhile; otherwise it
// reads again and reruns fn.
func (s *Store) UpdateKey(ctx context.Context, id string, fn func(*store.Key) error) (*store.Key, error) {
	return s.setKey(ctx, "update key", id, func(old *store.Key) (*store.Key, error) {
		k := old.Clone()
		if err := fn(k); err != nil {
			return nil, err
		}
		if err := store.CheckKeyUpdate(old, k, s.now); err != nil {
			return nil, err
		}
		return k, nil
	})
}

// RotateKey gives a key a new secret; the old hash stops resolving on
// every instance (its Reserve keeps working: money goes by key id).
func (s *Store) RotateKey(ctx context.Context, id string, h store.Hash, prefix, suffix string) (*store.Key, error) {
	return s.setKey(ctx, "rotate key", id, func(old *store.Key) (*store.Key, error) {
		if old.Revoked {
			return nil, store.ErrKeyInactive
		}
		k := old.Clone()
		k.Hash, k.Prefix, k.Suffix = h, prefix, suffix
		return k, nil
	})
}

// setKey is the read, change, compare-and-set loop of UpdateKey and
// RotateKey.
func (s *Store) setKey(ctx context.Context, op, id string, change func(old *store.Key) (*store.Key, error)) (*store.Key, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 100; attempt++ {
		cur, err := s.rdb.HGet(ctx, s.k.keys, id).Result()
		if errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("%s %s: %w", op, id, store.ErrNotFound)
		}
		if err != nil {
			return nil, s.unavailable(op+" "+id, err)
		}
		_, old, err := decodeRecord(cur)
		if err != nil {
			return nil, err
		}
		k, err := change(old)
		if err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrKeyInactive) {
				return nil, fmt.Errorf("%s %s: %w", op, id, err)
			}
			return nil, err // the updater's own error, unwrapped
		}
		if err := normalize(k); err != nil {
			return nil, fmt.Errorf("%s %s: %w", op, id, err)
		}
		doc, err := encodeKey(k)
		if err != nil {
			return nil, err
		}
		rv := "0"
		if k.Revoked {
			rv = "1"
		}
		res, waitErr, err := s.run(ctx, scSetKey, []string{s.k.keys, s.k.hashes, s.k.aliases, s.k.acct(id), s.k.kver},
			id, cur, doc, hexHash(old.Hash), hexHash(k.Hash), old.Alias, k.Alias, rv, s.k.events)
		if err != nil {
			return nil, s.unavailable(op+" "+id, err)
		}
		r, err := toReply(res)
		if err != nil {
			return nil, err
		}
		switch r[0] {
		case "OK":
			if waitErr != nil {
				return nil, fmt.Errorf("%s %s: %w", op, id, waitErr)
			}
			return s.cache.applyRecord(r[1])
		case "RETRY":
			continue
		case "NOTFOUND":
			return nil, fmt.Errorf("%s %s: %w", op, id, store.ErrNotFound)
		case "EXISTS":
			return nil, fmt.Errorf("%s %s: hash %w", op, id, store.ErrAlreadyExists)
		case "CONFLICT":
			return nil, fmt.Errorf("%s %s: alias %q: %w", op, id, k.Alias, store.ErrConflict)
		default:
			return nil, statusErr(op, r)
		}
	}
	return nil, fmt.Errorf("%s %s: too many concurrent changes: %w", op, id, store.ErrConflict)
}

// ListKeys filters, sorts and pages the fleet's keys: configurations from
// the cache (brought up to date first when Redis has changes it has not
// seen), accounts read from Redis in one pipeline.
func (s *Store) ListKeys(ctx context.Context, f store.KeyFilter) ([]store.KeyView, int, error) {
	if err := s.usable(); err != nil {
		return nil, 0, err
	}
	switch f.SortBy {
	case "", "createdAt", "name", "credits", "totalSpent", "totalCalls", "lastUsedAt":
	default:
		return nil, 0, fmt.Errorf("list keys: unknown sort %q: %w", f.SortBy, store.ErrInvalid)
	}
	switch f.Status {
	case "", "active", "suspended", "expired", "revoked":
	default:
		return nil, 0, fmt.Errorf("list keys: unknown status %q: %w", f.Status, store.ErrInvalid)
	}
	if err := s.syncIfStale(ctx); err != nil {
		return nil, 0, err
	}
	now := f.Now
	if now.IsZero() {
		now = s.now()
	}
	ns := strings.ToLower(f.Namespace)
	var cand []*store.Key
	for _, k := range s.cache.all() {
		if ns != "" && k.Namespace != ns || f.Group != "" && k.Group != f.Group {
			continue
		}
		if f.NamePrefix != "" && !(len(k.Name) >= len(f.NamePrefix) && strings.EqualFold(k.Name[:len(f.NamePrefix)], f.NamePrefix)) {
			continue
		}
		expired := k.Expired(now)
		switch f.Status {
		case "active":
			if k.Revoked || k.Suspended || expired {
				continue
			}
		case "suspended":
			if k.Revoked || !k.Suspended {
				continue
			}
		case "expired":
			if k.Revoked || !expired {
				continue
			}
		case "revoked":
			if !k.Revoked {
				continue
			}
		}
		if !f.MatchTags(k.Tags) {
			continue
		}
		cand = append(cand, k)
	}
	accts, err := s.accounts(ctx, cand)
	if err != nil {
		return nil, 0, err
	}
	hits := make([]store.KeyView, 0, len(cand))
	for i, k := range cand {
		a := accts[i]
		if f.MinCredits != nil && a.Balance < *f.MinCredits || f.MaxCredits != nil && a.Balance > *f.MaxCredits {
			continue
		}
		hits = append(hits, store.KeyView{Key: k, Account: a})
	}
	var by func(a, b *store.KeyView) int
	switch f.SortBy {
	case "", "createdAt":
		by = func(a, b *store.KeyView) int { return a.Key.CreatedAt.Compare(b.Key.CreatedAt) }
	case "name":
		by = func(a, b *store.KeyView) int { return strings.Compare(a.Key.Name, b.Key.Name) }
	case "credits":
		by = func(a, b *store.KeyView) int { return cmp.Compare(a.Account.Balance, b.Account.Balance) }
	case "totalSpent":
		by = func(a, b *store.KeyView) int { return cmp.Compare(a.Account.Spent, b.Account.Spent) }
	case "totalCalls":
		by = func(a, b *store.KeyView) int { return cmp.Compare(a.Account.Calls, b.Account.Calls) }
	case "lastUsedAt":
		by = func(a, b *store.KeyView) int { return a.Account.LastUsedAt.Compare(b.Account.LastUsedAt) }
	}
	page := store.SortPage(&f, hits, by, func(v *store.KeyView) string { return v.Key.ID })
	return slices.Clone(page), len(hits), nil
}

// accounts reads the accounts of keys in one pipeline.
func (s *Store) accounts(ctx context.Context, keys []*store.Key) ([]store.Account, error) {
	out := make([]store.Account, len(keys))
	for lo := 0; lo < len(keys); lo += 1000 {
		hi := min(lo+1000, len(keys))
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, hi-lo)
		for i, k := range keys[lo:hi] {
			cmds[i] = pipe.HMGet(ctx, s.k.acct(k.ID), acctFields...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, s.unavailable("read accounts", err)
		}
		for i, c := range cmds {
			out[lo+i], _ = accountOf(c.Val())
		}
	}
	return out, nil
}
