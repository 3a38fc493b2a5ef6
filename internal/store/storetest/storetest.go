// Package storetest holds the contract suites every store.Store
// implementation runs, in the manner of dex's storage/conformance:
//
//   - Run: keys, money operations, limits, refunds, queries, admin keys and
//     settings, each subtest on a fresh store;
//   - RunConcurrent: many goroutines against one store never overspend and
//     always conserve credits;
//   - RunShared: two handles on one shared database act as two gateway
//     instances and together never overspend;
//   - RunReopen: a durable store keeps everything across Close and Open.
//
// Every subtest that moves money ends with CheckInvariant: for each key,
// balance == grants + top-ups + transfers in - transfers out - charges +
// refunds + adjustments, the sum of its ledger deltas.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// T0 is the suites' reference time: a Friday in mid-March, UTC.
var T0 = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

// HashOf returns the store hash of a secret.
func HashOf(secret string) store.Hash { return sha256.Sum256([]byte(secret)) }

// fixture wraps a store with the helpers a subtest needs.
type fixture struct {
	t   *testing.T
	st  store.Store
	ctx context.Context
	n   int
	tag string // keeps ids unique when two fixtures share a database
}

func newFixture(t *testing.T, st store.Store) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return &fixture{t: t, st: st, ctx: ctx}
}

// secret returns the n-th test secret.
func (f *fixture) secret(n int) string { return fmt.Sprintf("pg_%s%040d", f.tag, n) }

// newKey builds (but does not store) a key with a fresh id and secret.
func (f *fixture) newKey(mods ...func(*store.Key)) *store.Key {
	f.n++
	sec := f.secret(f.n)
	k := &store.Key{
		ID:        fmt.Sprintf("key_%s%016x", f.tag, f.n),
		Hash:      HashOf(sec),
		Prefix:    sec[:7],
		Suffix:    sec[len(sec)-4:],
		Name:      fmt.Sprintf("key-%02d", f.n),
		Namespace: "default",
		CreatedAt: T0.Add(time.Duration(f.n) * time.Minute),
	}
	for _, m := range mods {
		m(k)
	}
	return k
}

// key creates a key with initial credits and returns the stored value.
func (f *fixture) key(initial credits.Credits, mods ...func(*store.Key)) *store.Key {
	f.t.Helper()
	k, a, err := f.st.CreateKey(f.ctx, f.newKey(mods...), initial, store.Meta{Actor: "storetest"})
	if err != nil {
		f.t.Fatalf("CreateKey: %v", err)
	}
	if a.Balance != initial {
		f.t.Fatalf("CreateKey: balance %d, want %d", a.Balance, initial)
	}
	return k
}

// wait waits for a receipt and fails the test on error.
func (f *fixture) wait(rc *store.Receipt) *store.Receipt {
	f.t.Helper()
	if rc == nil || rc.Wait == nil {
		f.t.Fatal("receipt or its Wait is nil")
	}
	if err := rc.Wait(f.ctx); err != nil {
		f.t.Fatalf("Receipt.Wait: %v", err)
	}
	return rc
}

// reserve charges one item of amount at T0 and waits.
func (f *fixture) reserve(keyID, callID string, amount credits.Credits) *store.Receipt {
	f.t.Helper()
	return f.reserveAt(keyID, callID, amount, T0)
}

// reserveAt charges one item of amount at now and waits.
func (f *fixture) reserveAt(keyID, callID string, amount credits.Credits, now time.Time) *store.Receipt {
	f.t.Helper()
	rc, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: keyID, CallID: callID, Now: now,
		Items: []store.Item{{Tool: "search", Amount: amount}}, Meta: store.Meta{Actor: "gateway"}})
	if err != nil {
		f.t.Fatalf("Reserve %s: %v", callID, err)
	}
	return f.wait(rc)
}

func (f *fixture) account(id string) store.Account {
	f.t.Helper()
	a, err := f.st.Account(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Account %s: %v", id, err)
	}
	return a
}

func (f *fixture) entries(flt store.LedgerFilter) []store.Entry {
	f.t.Helper()
	es, err := f.st.Entries(f.ctx, flt)
	if err != nil {
		f.t.Fatalf("Entries: %v", err)
	}
	return es
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// wantLimit fails unless err is a *store.LimitError of kind with need/have.
func wantLimit(t *testing.T, what string, err, kind error, need, have credits.Credits) {
	t.Helper()
	var le *store.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("%s: error %v, want a *store.LimitError", what, err)
	}
	if !errors.Is(err, kind) || le.Need != need || le.Have != have {
		t.Fatalf("%s: got %v (need %d, have %d), want %v need %d have %d", what, err, le.Need, le.Have, kind, need, have)
	}
}

// eventually retries check until it passes or a deadline passes; usage and
// audit appends are asynchronous and a store may make them visible later.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CheckInvariant asserts, for each key, that its balance equals grants +
// top-ups + transfers in - transfers out - charges + refunds + adjustments
// (the sum of its ledger deltas), that each entry's BalanceAfter is the
// running sum, and that Spent equals charges minus refunds.
func CheckInvariant(t *testing.T, st store.Store, keyIDs ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range keyIDs {
		a, err := st.Account(ctx, id)
		if err != nil {
			t.Fatalf("invariant: Account %s: %v", id, err)
		}
		es, err := st.Entries(ctx, store.LedgerFilter{KeyID: id})
		if err != nil {
			t.Fatalf("invariant: Entries %s: %v", id, err)
		}
		var byKind = map[store.EntryKind]credits.Credits{}
		var running, charged, refunded credits.Credits
		for _, e := range es {
			if e.KeyID != id {
				t.Fatalf("invariant: filter KeyID %s returned an entry of %s", id, e.KeyID)
			}
			running += e.Delta
			if e.BalanceAfter != running {
				t.Fatalf("invariant: key %s seq %d: BalanceAfter %d, running sum %d", id, e.Seq, e.BalanceAfter, running)
			}
			switch e.Kind {
			case store.EntryCharge, store.EntryTransferOut:
				if e.Delta > 0 {
					t.Fatalf("invariant: key %s seq %d: %s with positive delta %d", id, e.Seq, e.Kind, e.Delta)
				}
				byKind[e.Kind] -= e.Delta
			case store.EntryRefund, store.EntryTransferIn, store.EntryGrant, store.EntryTopUp:
				if e.Delta < 0 {
					t.Fatalf("invariant: key %s seq %d: %s with negative delta %d", id, e.Seq, e.Kind, e.Delta)
				}
				byKind[e.Kind] += e.Delta
			case store.EntryAdjustment:
				byKind[e.Kind] += e.Delta
			default:
				t.Fatalf("invariant: key %s seq %d: unknown kind %q", id, e.Seq, e.Kind)
			}
			if e.Kind == store.EntryCharge {
				charged -= e.Delta
			}
			if e.Kind == store.EntryRefund {
				refunded += e.Delta
			}
		}
		sum := byKind[store.EntryGrant] + byKind[store.EntryTopUp] + byKind[store.EntryTransferIn] -
			byKind[store.EntryTransferOut] - byKind[store.EntryCharge] + byKind[store.EntryRefund] + byKind[store.EntryAdjustment]
		if a.Balance != sum || a.Balance != running {
			t.Fatalf("invariant: key %s: balance %d, ledger sum %d (running %d)", id, a.Balance, sum, running)
		}
		if a.Spent != charged-refunded {
			t.Fatalf("invariant: key %s: spent %d, charges - refunds = %d", id, a.Spent, charged-refunded)
		}
	}
}
