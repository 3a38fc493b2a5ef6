package sqlite

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// rec is one key and its account as the store keeps them in memory, the
// source of truth while the store is open. The layout is compact on
// purpose (160 bytes, TestRecSize): 100,000 keys must fit the gateway's idle
// memory budget, so rarely set fields live behind ext (nil for a plain
// key), the quota counters behind per (nil until they count something), the
// 7+4 character mask is stored inline, the namespace is an index into the
// store's table, times are unix nanoseconds, account locks are striped, and
// the *store.Key handed to callers is built on first use.
type rec struct {
	// Key configuration, guarded by Store.mu.
	hash      store.Hash
	id        string
	name      string
	mask      [maskInline]byte // prefix then suffix, when they fit
	prefixLen uint8
	suffixLen uint8
	revoked   bool
	suspended bool
	stripe    uint8  // which Store.locks entry guards acct
	ns        uint32 // index into Store.namespaces
	created   int64
	expires   int64
	ext       *keyExt
	view      atomic.Pointer[store.Key] // built lazily, dropped on change

	// The account, guarded by Store.locks[stripe]: read and written whole
	// through account and setAccount.
	tot totals
	per *periods // nil while the quota periods and counters are all zero
}

// account returns r's account (the caller holds r's stripe lock).
func (r *rec) account() account {
	a := account{totals: r.tot}
	if r.per != nil {
		a.periods = *r.per
	}
	return a
}

// setAccount replaces r's account (the caller holds r's stripe lock). The
// quota counters take memory only once a key has counted something: most
// of a large store's keys never have, and they are 40 of an account's 72
// bytes.
func (r *rec) setAccount(a account) {
	r.tot = a.totals
	switch {
	case r.per != nil:
		*r.per = a.periods
	case a.periods != periods{}:
		p := a.periods
		r.per = &p
	}
}

// maskInline is how much of prefix+suffix is stored inline: the 7 + 4
// characters paygate shows.
const maskInline = 11

// keyExt holds the fields most keys leave unset.
type keyExt struct {
	prefix, suffix string // only when they do not fit inline
	alias          string
	group          string
	revokedAt      int64
	spendingLimit  credits.Credits
	allowedTools   []string
	deniedTools    []string
	ipAllowlist    []netip.Prefix
	quota          *store.Quota
	rateLimit      *int64
	tags           map[string]string
}

// account is store.Account without time.Time's 24 bytes.
type account struct {
	totals
	periods
}

// totals are an account's balance and lifetime counters.
type totals struct {
	balance, spent, calls int64
	lastUsed              int64
}

// periods are an account's quota counters: the day and month they count.
type periods struct {
	day, month     int32
	dailyCalls     int64
	dailyCredits   int64
	monthlyCalls   int64
	monthlyCredits int64
}

func (a account) public() store.Account {
	return store.Account{
		Balance: a.balance, Spent: a.spent, Calls: a.calls, LastUsedAt: fromNanos(a.lastUsed),
		Day: a.day, DailyCalls: a.dailyCalls, DailyCredits: a.dailyCredits,
		Month: a.month, MonthlyCalls: a.monthlyCalls, MonthlyCredits: a.monthlyCredits,
	}
}

func accountOf(p store.Account) account {
	return account{
		totals{balance: p.Balance, spent: p.Spent, calls: p.Calls, lastUsed: nanos(p.LastUsedAt)},
		periods{day: p.Day, dailyCalls: p.DailyCalls, dailyCredits: p.DailyCredits,
			month: p.Month, monthlyCalls: p.MonthlyCalls, monthlyCredits: p.MonthlyCredits},
	}
}

// roll starts the quota counters of a later day or month from zero. An
// earlier period (a caller's clock behind ours) counts against the current
// one rather than wiping it.
func (a *account) roll(day, month int32) {
	if day > a.day {
		a.day, a.dailyCalls, a.dailyCredits = day, 0, 0
	}
	if month > a.month {
		a.month, a.monthlyCalls, a.monthlyCredits = month, 0, 0
	}
}

// nanos and fromNanos map times to the stored form; the zero time is 0.
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

// hashIndex is the index key of a hash. SHA-256 output is uniform, so its
// first 8 bytes index as well as all 32 at a third of the map's memory; the
// full hash is compared on lookup and the rare collision goes to an
// overflow map.
func hashIndex(h store.Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// keyIndex is the in-memory index of keys, guarded by Store.mu.
type keyIndex struct {
	byHash     map[uint64]*rec
	overflow   map[store.Hash]*rec // hashes whose index key is taken; almost always empty
	byID       map[string]*rec
	byAlias    map[string]*rec
	namespaces []string
	nsIndex    map[string]uint32
	groups     map[string]string // interned group ids
	stripes    uint8             // round-robin account lock stripe
}

func newKeyIndex(n int) *keyIndex {
	return &keyIndex{
		byHash:     make(map[uint64]*rec, n),
		byID:       make(map[string]*rec, n),
		byAlias:    make(map[string]*rec),
		namespaces: []string{"default"},
		nsIndex:    map[string]uint32{"default": 0},
		groups:     make(map[string]string),
	}
}

func (x *keyIndex) namespace(ns string) uint32 {
	if i, ok := x.nsIndex[ns]; ok {
		return i
	}
	i := uint32(len(x.namespaces))
	x.namespaces = append(x.namespaces, ns)
	x.nsIndex[ns] = i
	return i
}

func (x *keyIndex) group(g string) string {
	if g == "" {
		return ""
	}
	if i, ok := x.groups[g]; ok {
		return i
	}
	x.groups[g] = g
	return g
}

func (x *keyIndex) add(r *rec) {
	x.addHash(r)
	x.byID[r.id] = r
	if a := r.alias(); a != "" {
		x.byAlias[a] = r
	}
}

func (x *keyIndex) addHash(r *rec) {
	i := hashIndex(r.hash)
	if o := x.byHash[i]; o != nil && o != r {
		if x.overflow == nil {
			x.overflow = make(map[store.Hash]*rec)
		}
		x.overflow[r.hash] = r
		return
	}
	x.byHash[i] = r
}

func (x *keyIndex) findHash(h store.Hash) *rec {
	if r := x.byHash[hashIndex(h)]; r != nil && r.hash == h {
		return r
	}
	if x.overflow != nil {
		return x.overflow[h]
	}
	return nil
}

func (x *keyIndex) removeHash(r *rec) {
	i := hashIndex(r.hash)
	if x.byHash[i] != r {
		delete(x.overflow, r.hash)
		return
	}
	delete(x.byHash, i)
	for h, o := range x.overflow { // promote a collided key, if any
		if hashIndex(h) == i {
			delete(x.overflow, h)
			x.byHash[i] = o
			return
		}
	}
}

// key returns the immutable view of r, building it on first use. Callers
// hold Store.mu (read or write).
func (x *keyIndex) key(r *rec) *store.Key {
	if k := r.view.Load(); k != nil {
		return k
	}
	k := x.build(r)
	if r.view.CompareAndSwap(nil, k) {
		return k
	}
	return r.view.Load()
}

// peek is key without caching: admin paths (create, update, listings,
// snapshots) touch every key, and caching each view would keep a full
// store.Key per key alive (measured: ~100 MB after creating 100,000 keys).
// Only keys that authenticate calls keep a view.
func (x *keyIndex) peek(r *rec) *store.Key {
	if k := r.view.Load(); k != nil {
		return k
	}
	return x.build(r)
}

func (x *keyIndex) build(r *rec) *store.Key {
	k := &store.Key{
		ID: r.id, Hash: r.hash, Name: r.name, Namespace: x.namespaces[r.ns],
		CreatedAt: fromNanos(r.created), ExpiresAt: fromNanos(r.expires),
		Revoked: r.revoked, Suspended: r.suspended,
	}
	if e := r.ext; e != nil && (e.prefix != "" || e.suffix != "") {
		k.Prefix, k.Suffix = e.prefix, e.suffix
	} else {
		m := string(r.mask[:r.prefixLen+r.suffixLen])
		k.Prefix, k.Suffix = m[:r.prefixLen], m[r.prefixLen:]
	}
	if e := r.ext; e != nil {
		// Shared with ext: both are immutable once built.
		k.Alias, k.Group = e.alias, e.group
		k.RevokedAt = fromNanos(e.revokedAt)
		k.SpendingLimit = e.spendingLimit
		k.AllowedTools, k.DeniedTools, k.IPAllowlist = e.allowedTools, e.deniedTools, e.ipAllowlist
		k.Quota, k.RateLimitPerMin, k.Tags = e.quota, e.rateLimit, e.tags
	}
	return k
}

// set copies k's configuration into r (k is already a private copy).
func (x *keyIndex) set(r *rec, k *store.Key) {
	r.hash = k.Hash
	r.id = k.ID
	r.name = k.Name
	r.ns = x.namespace(k.Namespace)
	r.revoked, r.suspended = k.Revoked, k.Suspended
	r.created, r.expires = nanos(k.CreatedAt), nanos(k.ExpiresAt)
	e := keyExt{
		alias: k.Alias, group: x.group(k.Group), revokedAt: nanos(k.RevokedAt), spendingLimit: k.SpendingLimit,
		quota: k.Quota, rateLimit: k.RateLimitPerMin,
	}
	r.mask = [maskInline]byte{}
	if len(k.Prefix)+len(k.Suffix) <= maskInline {
		r.prefixLen, r.suffixLen = uint8(len(k.Prefix)), uint8(len(k.Suffix))
		copy(r.mask[copy(r.mask[:], k.Prefix):], k.Suffix)
	} else {
		r.prefixLen, r.suffixLen = 0, 0
		e.prefix, e.suffix = k.Prefix, k.Suffix
	}
	if len(k.AllowedTools) > 0 {
		e.allowedTools = k.AllowedTools
	}
	if len(k.DeniedTools) > 0 {
		e.deniedTools = k.DeniedTools
	}
	if len(k.IPAllowlist) > 0 {
		e.ipAllowlist = k.IPAllowlist
	}
	if len(k.Tags) > 0 {
		e.tags = k.Tags
	}
	r.ext = nil
	if e.prefix != "" || e.suffix != "" || e.alias != "" || e.group != "" || e.revokedAt != 0 || e.spendingLimit != 0 ||
		e.quota != nil || e.rateLimit != nil || e.allowedTools != nil || e.deniedTools != nil || e.ipAllowlist != nil || e.tags != nil {
		r.ext = &e
	}
	r.view.Store(nil)
}

func (x *keyIndex) nextStripe() uint8 {
	x.stripes++
	return x.stripes
}

func (r *rec) alias() string {
	if r.ext == nil {
		return ""
	}
	return r.ext.alias
}

func (r *rec) group() string {
	if r.ext == nil {
		return ""
	}
	return r.ext.group
}

func (r *rec) tags() map[string]string {
	if r.ext == nil {
		return nil
	}
	return r.ext.tags
}

// acctLocks stripe the account locks: a mutex per key would cost 8 bytes
// on each of 100,000 keys for no gain on a 2-core machine.
type acctLocks [256]sync.Mutex

func (l *acctLocks) of(r *rec) *sync.Mutex { return &l[r.stripe] }

// snapshot returns r's account under its lock.
func (l *acctLocks) snapshot(r *rec) account {
	m := l.of(r)
	m.Lock()
	a := r.account()
	m.Unlock()
	return a
}

// lockPair locks the accounts of a and b in stripe order (once when they
// share a stripe) and returns the unlock.
func (l *acctLocks) lockPair(a, b *rec) func() {
	i, j := a.stripe, b.stripe
	if i == j {
		l[i].Lock()
		return l[i].Unlock
	}
	if i > j {
		i, j = j, i
	}
	l[i].Lock()
	l[j].Lock()
	return func() { l[j].Unlock(); l[i].Unlock() }
}
