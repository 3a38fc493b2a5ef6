package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
)

// This file is the optional backup contract: a store that can take a
// consistent snapshot of its state implements Snapshotter, one that can
// load a snapshot back implements Restorer. store/sqlite implements both;
// other stores (store/redis) opt in later. Callers find them by type
// assertion.

// Snapshot is a store's state at one instant: every key with its account,
// the whole ledger in seq order, admin keys, settings and, when asked
// for, the audit trail. Its ledger reconciles with its accounts:
// Validate checks that, for every key, balance == the sum of its deltas.
type Snapshot struct {
	TakenAt   time.Time
	Keys      []KeyState   // ordered by key id
	Ledger    []Entry      // ordered by Seq
	AdminKeys []*AdminKey  // ordered by creation
	Settings  []Setting    // ordered by name
	Audit     []AuditEvent // nil unless SnapshotOptions.Audit; ordered by Seq
}

// KeyState is one key and its account.
type KeyState struct {
	Key     *Key
	Account Account
}

// Setting is one named settings document.
type Setting struct {
	Name  string
	Value []byte
}

// SnapshotOptions select what a snapshot carries besides keys, accounts,
// the ledger, admin keys and settings.
type SnapshotOptions struct {
	Audit bool // include the audit trail
}

// Snapshotter is implemented by stores that can take a consistent
// snapshot: no money operation is half in it.
type Snapshotter interface {
	Snapshot(ctx context.Context, opts SnapshotOptions) (*Snapshot, error)
}

// RestoreMode says how a snapshot meets the state already in a store.
type RestoreMode string

// Restore modes.
const (
	// RestoreMerge adds what is missing: keys (with their ledger lines and
	// accounts), admin keys and settings whose id or name the store does
	// not have. Existing records are left alone.
	RestoreMerge RestoreMode = "merge"
	// RestoreOverwrite adds what is missing, like merge, and replaces the
	// configuration and account of keys that exist. An overwritten key
	// keeps its ledger history; one adjustment line moves its balance to
	// the snapshot's. It never un-revokes a key nor brings back a secret
	// replaced by a rotation. Existing admin keys are left alone; settings
	// are replaced.
	RestoreOverwrite RestoreMode = "overwrite"
	// RestoreFull replaces everything: keys, accounts, the ledger (with
	// its original seqs), admin keys and settings become the snapshot's.
	// The audit trail is replaced only when the snapshot carries one.
	RestoreFull RestoreMode = "full"
)

// RestoreModes lists the modes in documentation order.
var RestoreModes = []RestoreMode{RestoreMerge, RestoreOverwrite, RestoreFull}

// RestoreOptions configure Restore.
type RestoreOptions struct {
	Mode RestoreMode
	// DryRun plans the restore and reports what it would do, changing
	// nothing.
	DryRun bool
	// KeepAdminKey is the id of an admin key a full restore keeps as it
	// is (the operator running it), so the restore cannot lock them out.
	KeepAdminKey string
	// Meta is recorded on the ledger lines the restore writes
	// (adjustments).
	Meta Meta
	Now  time.Time
}

// RestoreResult reports what a restore did (or, dry, would do).
type RestoreResult struct {
	Mode             RestoreMode
	DryRun           bool
	KeysAdded        int
	KeysOverwritten  int
	KeysSkipped      int
	KeysRemoved      int // full mode: keys the store had that the snapshot has not
	LedgerEntries    int // ledger lines written from the snapshot
	Adjustments      int // adjustment lines written to reach the snapshot's balances
	AdminKeysAdded   int
	AdminKeysSkipped int
	SettingsRestored int
	AuditRestored    int
	// ChangedKeys are the ids of keys added, overwritten or removed, for
	// cache invalidation.
	ChangedKeys []string
	Warnings    []string
}

// Restorer is implemented by stores that can load a snapshot. Restore
// validates the snapshot (Validate) and checks it against the store's
// state before changing anything; a refused restore changes nothing and
// returns an error matching ErrInvalid. The restored state keeps every
// money rule: balance == the sum of ledger deltas for every key.
type Restorer interface {
	Restore(ctx context.Context, snap *Snapshot, opts RestoreOptions) (*RestoreResult, error)
}

// ValidMode reports whether m is a restore mode.
func ValidMode(m RestoreMode) bool {
	for _, x := range RestoreModes {
		if m == x {
			return true
		}
	}
	return false
}

// maxSnapshotProblems bounds the problems Validate reports.
const maxSnapshotProblems = 20

// SnapshotError lists what is wrong with a snapshot. It matches ErrInvalid.
type SnapshotError struct {
	Problems []string
	More     int // problems found beyond those listed
}

func (e *SnapshotError) Error() string {
	s := "invalid snapshot: " + strings.Join(e.Problems, "; ")
	if e.More > 0 {
		s += fmt.Sprintf("; and %d more", e.More)
	}
	return s
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *SnapshotError) Is(target error) bool { return target == ErrInvalid }

type problems struct{ e SnapshotError }

func (p *problems) addf(format string, args ...any) {
	if len(p.e.Problems) >= maxSnapshotProblems {
		p.e.More++
		return
	}
	p.e.Problems = append(p.e.Problems, fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.e.Problems) == 0 {
		return nil
	}
	e := p.e
	return &e
}

// Validate checks every record of s and that its ledger reconciles: ids,
// hashes and aliases unique; amounts in range; ledger seqs increasing and
// naming known keys; each line's BalanceAfter the running sum of its key's
// deltas and the last one the account's balance; (call id, item, kind)
// unique. It is pure and reports up to 20 problems in a *SnapshotError.
func (s *Snapshot) Validate() error {
	var p problems
	byID := make(map[string]*KeyState, len(s.Keys))
	hashes := make(map[Hash]string, len(s.Keys))
	aliases := make(map[string]string)
	for i := range s.Keys {
		ks := &s.Keys[i]
		k := ks.Key
		where := fmt.Sprintf("keys[%d]", i)
		if k == nil {
			p.addf("%s: missing", where)
			continue
		}
		where += " (" + k.ID + ")"
		validateKey(&p, where, k)
		if k.ID != "" {
			if byID[k.ID] != nil {
				p.addf("%s: id appears twice", where)
			}
			byID[k.ID] = ks
		}
		if k.Hash != (Hash{}) {
			if other, dup := hashes[k.Hash]; dup {
				p.addf("%s: same secret hash as key %s", where, other)
			}
			hashes[k.Hash] = k.ID
		}
		if k.Alias != "" {
			if other, dup := aliases[k.Alias]; dup {
				p.addf("%s: alias %q already belongs to key %s", where, k.Alias, other)
			}
			aliases[k.Alias] = k.ID
		}
		a := &ks.Account
		if a.Balance < -credits.Max || a.Balance > credits.Max {
			p.addf("%s: balance %d out of range", where, a.Balance)
		}
		if a.Spent < 0 || a.Spent > credits.Max || a.Calls < 0 {
			p.addf("%s: spent %d and calls %d must be from 0 to %d", where, a.Spent, a.Calls, credits.Max)
		}
		if a.DailyCalls < 0 || a.MonthlyCalls < 0 || a.DailyCredits < 0 || a.MonthlyCredits < 0 {
			p.addf("%s: quota counters must not be negative", where)
		}
	}

	running := make(map[string]credits.Credits, len(s.Keys))
	type callKey struct {
		id   string
		item int
		kind EntryKind
	}
	calls := make(map[callKey]int64)
	var last int64
	for i := range s.Ledger {
		e := &s.Ledger[i]
		where := fmt.Sprintf("ledger[%d] (seq %d)", i, e.Seq)
		if e.Seq <= last {
			p.addf("%s: seq must be positive and increasing (previous %d)", where, last)
		}
		last = max(last, e.Seq)
		if byID[e.KeyID] == nil {
			p.addf("%s: key %q is not in the snapshot", where, e.KeyID)
		}
		if !validKind(e.Kind) {
			p.addf("%s: unknown kind %q", where, e.Kind)
		}
		if e.Delta < -credits.Max || e.Delta > credits.Max {
			p.addf("%s: delta %d out of range", where, e.Delta)
		}
		if e.Time.IsZero() {
			p.addf("%s: time is missing", where)
		}
		if e.Item < 0 {
			p.addf("%s: item must not be negative", where)
		}
		bal := running[e.KeyID] + e.Delta
		running[e.KeyID] = bal
		if e.BalanceAfter != bal {
			p.addf("%s: balanceAfter %d, but the key's deltas sum to %d", where, e.BalanceAfter, bal)
		}
		if e.CallID != "" {
			ck := callKey{e.CallID, e.Item, e.Kind}
			if prev, dup := calls[ck]; dup {
				p.addf("%s: call %s item %d already has a %s line (seq %d)", where, e.CallID, e.Item, e.Kind, prev)
			}
			calls[ck] = e.Seq
		}
	}
	for i := range s.Keys {
		ks := &s.Keys[i]
		if ks.Key == nil {
			continue
		}
		if sum := running[ks.Key.ID]; sum != ks.Account.Balance {
			p.addf("keys[%d] (%s): balance %d, but its ledger lines sum to %d", i, ks.Key.ID, ks.Account.Balance, sum)
		}
	}

	adminIDs := make(map[string]bool, len(s.AdminKeys))
	adminHashes := make(map[Hash]bool, len(s.AdminKeys))
	for i, k := range s.AdminKeys {
		where := fmt.Sprintf("adminKeys[%d]", i)
		if k == nil {
			p.addf("%s: missing", where)
			continue
		}
		where += " (" + k.ID + ")"
		switch {
		case k.ID == "" || len(k.ID) > 128:
			p.addf("%s: id must be 1 to 128 characters", where)
		case adminIDs[k.ID]:
			p.addf("%s: id appears twice", where)
		}
		adminIDs[k.ID] = true
		switch {
		case k.Hash == (Hash{}):
			p.addf("%s: hash is missing", where)
		case adminHashes[k.Hash]:
			p.addf("%s: same secret hash as another admin key", where)
		}
		adminHashes[k.Hash] = true
		switch k.Role {
		case RoleSuperAdmin, RoleAdmin, RoleViewer:
		default:
			p.addf("%s: unknown role %q", where, k.Role)
		}
		if k.Revoked && k.RevokedAt.IsZero() {
			p.addf("%s: revoked without revokedAt", where)
		}
	}
	names := make(map[string]bool, len(s.Settings))
	for i, st := range s.Settings {
		switch {
		case st.Name == "" || len(st.Name) > 256:
			p.addf("settings[%d]: name must be 1 to 256 characters", i)
		case names[st.Name]:
			p.addf("settings[%d]: %q appears twice", i, st.Name)
		}
		names[st.Name] = true
	}
	for i := range s.Audit {
		if s.Audit[i].Type == "" || s.Audit[i].Time.IsZero() {
			p.addf("audit[%d]: type and time are required", i)
		}
	}
	return p.err()
}

func validateKey(p *problems, where string, k *Key) {
	if k.ID == "" || len(k.ID) > 128 {
		p.addf("%s: id must be 1 to 128 characters", where)
	}
	if k.Hash == (Hash{}) {
		p.addf("%s: hash is missing", where)
	}
	if len(k.Prefix) > 255 || len(k.Suffix) > 255 {
		p.addf("%s: mask parts longer than 255 bytes", where)
	}
	if k.Namespace == "" || k.Namespace != strings.ToLower(strings.TrimSpace(k.Namespace)) {
		p.addf("%s: namespace %q must be set, lower-case and trimmed", where, k.Namespace)
	}
	if k.CreatedAt.IsZero() {
		p.addf("%s: createdAt is missing", where)
	}
	if k.Revoked && k.RevokedAt.IsZero() {
		p.addf("%s: revoked without revokedAt", where)
	}
	if err := credits.Validate(k.SpendingLimit); err != nil {
		p.addf("%s: spendingLimit %v", where, err)
	}
	if k.RateLimitPerMin != nil && *k.RateLimitPerMin < 0 {
		p.addf("%s: rateLimitPerMin must not be negative", where)
	}
	if q := k.Quota; q != nil {
		if q.DailyCalls < 0 || q.MonthlyCalls < 0 || credits.Validate(q.DailyCredits) != nil || credits.Validate(q.MonthlyCredits) != nil {
			p.addf("%s: quota limits must be from 0 to %d", where, credits.Max)
		}
	}
}

func validKind(k EntryKind) bool {
	switch k {
	case EntryGrant, EntryTopUp, EntryCharge, EntryRefund, EntryTransferIn, EntryTransferOut, EntryAdjustment:
		return true
	}
	return false
}

// Opening returns the part of a key's spent and calls that its ledger
// lines do not explain: counters carried over from another system (see
// KeyImporter) without charge lines. Restorers record it so the restored
// account still reconciles: spent == opening spent + charges - refunds,
// calls == opening calls + charges - full refunds. entries are the key's
// ledger lines.
func Opening(a Account, entries []Entry) (spent credits.Credits, calls int64) {
	charged := make(map[string]credits.Credits) // call id/item -> charge
	var ledgerSpent credits.Credits
	var ledgerCalls int64
	for i := range entries {
		e := &entries[i]
		switch e.Kind {
		case EntryCharge:
			ledgerSpent -= e.Delta
			ledgerCalls++
			if e.CallID != "" {
				charged[e.CallID+"\x00"+fmt.Sprint(e.Item)] = -e.Delta
			}
		case EntryRefund:
			ledgerSpent -= e.Delta
			if c, ok := charged[e.CallID+"\x00"+fmt.Sprint(e.Item)]; ok && e.CallID != "" && e.Delta == c {
				ledgerCalls--
			}
		}
	}
	return a.Spent - ledgerSpent, a.Calls - ledgerCalls
}

// ErrRestoreUnsupported is returned by callers when a store implements
// neither Snapshotter nor Restorer.
var ErrRestoreUnsupported = errors.New("this store does not support backup and restore")
