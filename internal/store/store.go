// Package store defines paygate's state: API keys, their credit accounts,
// the append-only ledger every credit movement lands in, the usage log of
// every gate decision, the audit trail, and admin keys. Implementations
// (store/sqlite, store/redis) are held to the contract suites in
// store/storetest.
//
// Money rules every implementation keeps:
//   - Every change to a balance is one ledger entry in the same atomic step,
//     so balance == sum of the key's ledger deltas at all times.
//   - Reserve checks and charges in one atomic step: concurrent reservations
//     never overspend a balance, a spending limit or a quota.
//   - A Receipt's Wait returns nil only once the entries are durable; the
//     gateway never answers a charged call before that.
//   - Refunds are idempotent per (call id, item).
package store

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
)

// Sentinel errors. Implementations return them (or errors wrapping them)
// unchanged so callers can match with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("conflict") // e.g. alias already taken
	ErrKeyInactive   = errors.New("key is revoked")
	ErrDuplicateCall = errors.New("call id already reserved")
	ErrUnavailable   = errors.New("store unavailable") // e.g. Redis unreachable, disk failure
	ErrClosed        = errors.New("store closed")
	ErrInvalid       = errors.New("invalid argument") // bad amount, empty call id, self-transfer, ...

	// Limit errors, returned as *LimitError by Reserve.
	ErrInsufficientCredits = errors.New("insufficient credits")
	ErrSpendingLimit       = errors.New("spending limit exceeded")
	ErrQuotaExceeded       = errors.New("quota exceeded")
)

// Hash is the SHA-256 of an API key's secret. Secrets are never stored.
type Hash [32]byte

// Quota caps calls and credits per UTC day and UTC month. Zero means no cap.
type Quota struct {
	DailyCalls     int64           `json:"dailyCallLimit"`
	MonthlyCalls   int64           `json:"monthlyCallLimit"`
	DailyCredits   credits.Credits `json:"dailyCreditLimit"`
	MonthlyCredits credits.Credits `json:"monthlyCreditLimit"`
}

// IsZero reports whether q sets no cap.
func (q Quota) IsZero() bool { return q == Quota{} }

// Key is an API key's configuration: who it is and what it may do. Its money
// lives in Account. A *Key handed out by a store is immutable; updates go
// through UpdateKey and produce a new value.
type Key struct {
	ID        string    // stable id, "key_" + 16 hex; survives rotation
	Hash      Hash      // SHA-256 of the secret
	Prefix    string    // first 7 characters of the secret, for masks
	Suffix    string    // last 4 characters of the secret, for masks
	Name      string    //
	Namespace string    // lower-case, "default" when unset
	Alias     string    // optional unique human name
	CreatedAt time.Time //
	ExpiresAt time.Time // zero: never
	Revoked   bool      // permanent
	RevokedAt time.Time
	Suspended bool // reversible

	AllowedTools    []string          // empty: all tools
	DeniedTools     []string          // always denied, after AllowedTools
	IPAllowlist     []netip.Prefix    // empty: any address; single IPs are /32 or /128
	SpendingLimit   credits.Credits   // 0: unlimited; caps Account.Spent
	Quota           *Quota            // nil: the global default quota applies
	RateLimitPerMin *int64            // nil: the global rate limit applies; 0 = unlimited
	Tags            map[string]string //
	Group           string            // optional policy group id
}

// Mask returns the masked form of the secret shown in listings and logs:
// first 7 + "..." + last 4.
func (k *Key) Mask() string { return k.Prefix + "..." + k.Suffix }

// Active reports whether the key may be used at t (not revoked, not
// suspended, not expired).
func (k *Key) Active(t time.Time) bool {
	return !k.Revoked && !k.Suspended && !k.Expired(t)
}

// Expired reports whether the key's expiry has passed at t.
func (k *Key) Expired(t time.Time) bool { return !k.ExpiresAt.IsZero() && !t.Before(k.ExpiresAt) }

// Clone returns a deep copy, for updaters.
func (k *Key) Clone() *Key {
	c := *k
	c.AllowedTools = append([]string(nil), k.AllowedTools...)
	c.DeniedTools = append([]string(nil), k.DeniedTools...)
	c.IPAllowlist = append([]netip.Prefix(nil), k.IPAllowlist...)
	if k.Quota != nil {
		q := *k.Quota
		c.Quota = &q
	}
	if k.RateLimitPerMin != nil {
		r := *k.RateLimitPerMin
		c.RateLimitPerMin = &r
	}
	if k.Tags != nil {
		c.Tags = make(map[string]string, len(k.Tags))
		for a, b := range k.Tags {
			c.Tags[a] = b
		}
	}
	return &c
}

// Account is a key's money and counters.
type Account struct {
	Balance    credits.Credits // what the key can still spend
	Spent      credits.Credits // total charged minus refunded, for spending limits
	Calls      int64           // charged calls minus refunded ones
	LastUsedAt time.Time

	// Quota usage for the UTC day Day (YYYYMMDD) and month Month (YYYYMM);
	// a reservation in a later period starts the counters from zero.
	Day            int32
	DailyCalls     int64
	DailyCredits   credits.Credits
	Month          int32
	MonthlyCalls   int64
	MonthlyCredits credits.Credits
}

// DayOf and MonthOf return the quota period stamps of t (UTC).
func DayOf(t time.Time) int32 {
	t = t.UTC()
	return int32(t.Year()*10000 + int(t.Month())*100 + t.Day())
}

// MonthOf returns YYYYMM of t in UTC.
func MonthOf(t time.Time) int32 { t = t.UTC(); return int32(t.Year()*100 + int(t.Month())) }

// EntryKind says why a ledger entry moved credits.
type EntryKind string

// Ledger entry kinds.
const (
	EntryGrant       EntryKind = "grant"        // initial credits at key creation or import
	EntryTopUp       EntryKind = "topup"        // admin, Stripe or auto top-up
	EntryCharge      EntryKind = "charge"       // a tool call
	EntryRefund      EntryKind = "refund"       // a charge given back
	EntryTransferIn  EntryKind = "transfer_in"  //
	EntryTransferOut EntryKind = "transfer_out" //
	EntryAdjustment  EntryKind = "adjustment"   // operator correction, may be negative
)

// Entry is one ledger line. Delta is signed: charges and transfers out are
// negative. The ledger is append-only: entries are never changed or deleted.
type Entry struct {
	Seq          int64 // global, increasing
	Time         time.Time
	KeyID        string
	Kind         EntryKind
	Delta        credits.Credits
	BalanceAfter credits.Credits
	Tool         string // charges and refunds
	CallID       string // charges and refunds: the call that caused them
	Item         int    // index within a batch call
	RequestID    string // X-Request-Id of the HTTP request, if any
	Counterparty string // transfers: the other key id
	Actor        string // who caused it: "gateway", an admin key mask, "stripe", ...
	Note         string
}

// Meta is the context recorded on the ledger entries an operation writes.
type Meta struct {
	RequestID string
	Actor     string
	Note      string
}

// Item is one priced tool call within a reservation.
type Item struct {
	Tool   string
	Amount credits.Credits
}

// Reservation asks to charge a key for one call (one item) or a batch (all
// items or none).
type Reservation struct {
	KeyID  string
	CallID string // unique per call; a second Reserve with it fails with ErrDuplicateCall
	// FreshCallID says the caller made CallID up for this reservation (the
	// gateway's ids carry a per-process random prefix and a counter), so
	// the store may skip looking for it among old ledger entries; recent
	// ids are still checked, and the ledger's unique index still refuses a
	// reuse at commit.
	FreshCallID bool
	Items       []Item
	Limits      Limits // effective limits, resolved by the caller from key and config
	Now         time.Time
	Meta        Meta
}

// Total returns the sum of the items' amounts.
func (r *Reservation) Total() (credits.Credits, error) {
	var t credits.Credits
	for _, it := range r.Items {
		var err error
		if t, err = credits.Add(t, it.Amount); err != nil {
			return 0, err
		}
	}
	return t, nil
}

// Limits are checked by Reserve in the same atomic step as the charge.
type Limits struct {
	SpendingLimit credits.Credits // 0: none
	Quota         Quota
}

// LimitError is returned by Reserve when a limit refuses the charge. It
// matches ErrInsufficientCredits, ErrSpendingLimit or ErrQuotaExceeded.
type LimitError struct {
	Kind   error           // one of the three sentinels
	Need   credits.Credits // what the reservation needed
	Have   credits.Credits // balance, remaining budget or remaining quota
	Detail string          // e.g. "daily call quota 10 reached"
	// Period is the quota's period for ErrQuotaExceeded: QuotaDaily or
	// QuotaMonthly (UTC), so a refusal can say when to retry.
	Period string
}

// LimitError periods.
const (
	QuotaDaily   = "day"
	QuotaMonthly = "month"
)

// QuotaPeriod is the period of a quota named "daily …" or "monthly …".
func QuotaPeriod(what string) string {
	if strings.HasPrefix(what, "monthly") {
		return QuotaMonthly
	}
	return QuotaDaily
}

func (e *LimitError) Error() string {
	if e.Detail != "" {
		return e.Kind.Error() + ": " + e.Detail
	}
	return e.Kind.Error()
}

// Is makes errors.Is(err, ErrInsufficientCredits) etc. work.
func (e *LimitError) Is(target error) bool { return target == e.Kind }

// Receipt is the result of a money operation.
type Receipt struct {
	Seq          int64           // seq of the last entry written
	BalanceAfter credits.Credits // the key's balance after the operation
	Account      Account         // the key's account after the operation
	// Wait blocks until the entries are durable (or ctx ends) and reports a
	// write failure. Stores that are durable on return use a nil-returning
	// func. Never nil.
	Wait func(ctx context.Context) error
}

// Refund gives back one item of a reserved call. Amount 0 means the whole
// item; more than the item's charge is refused (ErrInvalid). Calls and the
// call quotas are given back only on a full refund.
type Refund struct {
	KeyID  string
	CallID string
	Item   int
	Amount credits.Credits
	Tool   string
	Now    time.Time
	Meta   Meta
}

// KeyFilter selects keys for ListKeys.
type KeyFilter struct {
	Namespace  string
	Status     string // "", "active", "suspended", "expired", "revoked"
	NamePrefix string
	MinCredits *credits.Credits
	MaxCredits *credits.Credits
	Tags       map[string]string // all must match
	Group      string
	SortBy     string // "createdAt" (default), "name", "credits", "totalSpent", "totalCalls", "lastUsedAt"
	Desc       bool
	Limit      int // 0: all
	Offset     int
	Now        time.Time
}

// KeyView is a key with its account, as listings return it.
type KeyView struct {
	Key     *Key
	Account Account
}

// LedgerFilter selects ledger entries.
type LedgerFilter struct {
	KeyID    string
	Kinds    []EntryKind
	Since    time.Time
	Until    time.Time
	AfterSeq int64
	Limit    int  // 0: all
	Desc     bool // newest first
}

// UsageRecord is one gate decision and, for allowed calls, its outcome.
type UsageRecord struct {
	Seq       int64
	Time      time.Time
	KeyID     string // empty when no key was identified
	KeyMask   string
	Namespace string
	Method    string
	Tool      string
	Allowed   bool
	Reason    string          // denial reason, or "" when allowed; "shadow:<reason>" in shadow mode
	Credits   credits.Credits // net charged (0 when refunded or denied)
	Refunded  bool
	Outcome   string // "ok", "tool_error", "rpc_error", "backend_down", "timeout", "cancelled", "" for denials
	Duration  time.Duration
	RequestID string
	CallID    string
	ClientIP  string
}

// UsageFilter selects usage records.
type UsageFilter struct {
	KeyID     string
	Namespace string
	Tool      string
	Allowed   *bool
	Since     time.Time
	Until     time.Time
	AfterSeq  int64
	Limit     int
	Desc      bool
}

// AuditEvent is one entry of the audit trail.
type AuditEvent struct {
	Seq       int64
	Time      time.Time
	Type      string // "key.created", "gate.deny", "admin.auth_failed", ...
	Actor     string // admin key mask, "system", api key mask
	RequestID string
	KeyMask   string
	Message   string
	Metadata  map[string]any
}

// AuditFilter selects audit events.
type AuditFilter struct {
	Types    []string
	Actor    string
	Since    time.Time
	Until    time.Time
	AfterSeq int64
	Limit    int
	Desc     bool
}

// AdminRole is an admin key's permission level.
type AdminRole string

// Admin roles, from most to least privileged.
const (
	RoleSuperAdmin AdminRole = "super_admin"
	RoleAdmin      AdminRole = "admin"
	RoleViewer     AdminRole = "viewer"
)

// AdminKey is an operator credential, stored hashed.
type AdminKey struct {
	ID        string
	Hash      Hash
	Prefix    string
	Suffix    string
	Name      string
	Role      AdminRole
	CreatedAt time.Time
	CreatedBy string
	Revoked   bool
	RevokedAt time.Time
	LastUsed  time.Time
}

// Keys stores API keys. Lookups by hash are the gateway's hot path and are
// served from memory.
type Keys interface {
	// CreateKey stores k and writes a grant entry for initial credits, in one
	// atomic step. ErrAlreadyExists if the hash or id exists; ErrConflict if
	// the alias is taken.
	CreateKey(ctx context.Context, k *Key, initial credits.Credits, m Meta) (*Key, Account, error)
	// LookupHash finds the key whose secret hashes to h. ErrNotFound if none.
	LookupHash(ctx context.Context, h Hash) (*Key, error)
	// GetKey returns a key and its account by id. ErrNotFound if none.
	GetKey(ctx context.Context, id string) (*Key, Account, error)
	// GetKeyByAlias returns a key by alias. ErrNotFound if none.
	GetKeyByAlias(ctx context.Context, alias string) (*Key, error)
	// UpdateKey applies fn to a copy of the key and stores the result. fn
	// must be pure: it may run more than once. Changing ID or Hash through
	// fn is refused; use RotateKey.
	UpdateKey(ctx context.Context, id string, fn func(*Key) error) (*Key, error)
	// RotateKey replaces a key's secret; the old secret stops working at once.
	RotateKey(ctx context.Context, id string, h Hash, prefix, suffix string) (*Key, error)
	// ListKeys returns the keys matching f and the total before paging.
	ListKeys(ctx context.Context, f KeyFilter) ([]KeyView, int, error)
}

// Ledger moves credits. Each method writes its entries and updates the
// balance in one atomic step.
type Ledger interface {
	// Reserve charges every item of r or none. It checks, in this order:
	// revoked (ErrKeyInactive), duplicate call id, spending limit, quotas,
	// balance. Suspension and expiry are the gate's checks, not Reserve's.
	// It fails with a *LimitError
	// when the balance, the spending limit or a quota refuses it,
	// ErrKeyInactive for a revoked key, ErrDuplicateCall for a reused call id.
	Reserve(ctx context.Context, r Reservation) (*Receipt, error)
	// Refund gives back one item of a call. A second refund of the same item
	// is a no-op returning the current balance.
	Refund(ctx context.Context, r Refund) (*Receipt, error)
	// TopUp adds credits (kind EntryTopUp, or EntryGrant/EntryAdjustment when
	// given) to a key.
	TopUp(ctx context.Context, keyID string, amount credits.Credits, kind EntryKind, m Meta) (*Receipt, error)
	// Transfer moves credits between two keys atomically.
	Transfer(ctx context.Context, from, to string, amount credits.Credits, m Meta) (fromAfter, toAfter *Receipt, err error)
	// Account returns a key's account.
	Account(ctx context.Context, keyID string) (Account, error)
	// Entries returns ledger entries.
	Entries(ctx context.Context, f LedgerFilter) ([]Entry, error)
}

// Usage stores gate decisions. Append is asynchronous and never blocks the
// request path for long; records become durable within a short interval and
// are flushed by Close. A query sees every record this process appended
// before it (stores flush pending records first).
type Usage interface {
	AppendUsage(recs ...UsageRecord)
	Usage(ctx context.Context, f UsageFilter) ([]UsageRecord, error)
	// PruneUsage deletes records older than before and keeps at most keep
	// newest (0: no count limit), in small steps that never hold money
	// writes up for long. Returns how many were deleted. Seqs of later
	// records keep increasing. The ledger is never pruned: it is the money.
	PruneUsage(ctx context.Context, before time.Time, keep int) (int, error)
}

// Audit stores the audit trail (asynchronous append, like Usage).
type Audit interface {
	AppendAudit(evs ...AuditEvent)
	Audit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// PruneAudit deletes events older than before and keeps at most keep
	// newest (0: no count limit). Returns how many were deleted.
	PruneAudit(ctx context.Context, before time.Time, keep int) (int, error)
}

// AdminKeys stores operator credentials.
type AdminKeys interface {
	CreateAdminKey(ctx context.Context, k *AdminKey) error
	LookupAdminHash(ctx context.Context, h Hash) (*AdminKey, error)
	ListAdminKeys(ctx context.Context) ([]*AdminKey, error)
	UpdateAdminKey(ctx context.Context, id string, fn func(*AdminKey) error) (*AdminKey, error)
}

// Settings stores small named JSON documents (maintenance state, templates,
// groups, ...).
type Settings interface {
	GetSetting(ctx context.Context, name string) ([]byte, error) // ErrNotFound if unset
	PutSetting(ctx context.Context, name string, value []byte) error
}

// KeyImporter is implemented by stores that can create a key carried over
// from another system with its opening counters (spent, calls, last use,
// quota usage) without fabricating charge entries. initial becomes a grant
// entry as in CreateKey; opening.Balance is ignored.
type KeyImporter interface {
	ImportKey(ctx context.Context, k *Key, initial credits.Credits, opening Account, m Meta) (*Key, Account, error)
}

// Store is everything paygate keeps.
type Store interface {
	Keys
	Ledger
	Usage
	Audit
	AdminKeys
	Settings
	// Ping reports whether the store can serve writes now.
	Ping(ctx context.Context) error
	// Close flushes pending records and releases resources. Safe to call
	// more than once and after a partial open.
	Close() error
}
