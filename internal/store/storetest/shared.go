package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/paygate/paygate/internal/store"
)

// RunShared runs the multi-instance contract: newPair returns two handles
// on one fresh shared database (two gateway instances), registering their
// cleanup. Together they must never overspend, and each must see the
// other's keys, charges and refunds.
func RunShared(t *testing.T, newPair func(t *testing.T) (a, b store.Store)) {
	tests := []struct {
		name string
		fn   func(fa, fb *fixture)
	}{
		{"SeeEachOther", testSeeEachOther},
		{"NoOverspend", testNoOverspend},
		{"DuplicateAcross", testDuplicateAcross},
		{"RefundAcross", testRefundAcross},
		{"Mixed", func(fa, fb *fixture) { mixed(fa, []store.Store{fa.st, fb.st}, 8, 100) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t)
			fa, fb := newFixture(t, a), newFixture(t, b)
			fa.tag, fb.tag = "a", "b"
			tc.fn(fa, fb)
		})
	}
}

func testSeeEachOther(fa, fb *fixture) {
	t := fa.t
	k := fa.key(30, func(k *store.Key) { k.Alias = "shared" })
	got, err := fb.st.LookupHash(fb.ctx, k.Hash)
	if err != nil || got.ID != k.ID {
		t.Fatalf("b LookupHash: %+v %v", got, err)
	}
	if got, err := fb.st.GetKeyByAlias(fb.ctx, "shared"); err != nil || got.ID != k.ID {
		t.Fatalf("b GetKeyByAlias: %+v %v", got, err)
	}
	fb.reserve(k.ID, "see-1", 5)
	if a := fa.account(k.ID); a.Balance != 25 || a.Calls != 1 {
		t.Fatalf("a sees %+v after b charged", a)
	}
	if _, err := fb.st.UpdateKey(fb.ctx, k.ID, func(k *store.Key) error { k.Revoked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = fa.st.Reserve(fa.ctx, store.Reservation{KeyID: k.ID, CallID: "see-2", Now: T0, Items: items(1)})
	wantErr(t, "a reserves on a key b revoked", err, store.ErrKeyInactive)
	// A key created on b conflicts on a.
	kb := fb.key(1, func(k *store.Key) { k.Alias = "bee" })
	dup := fa.newKey(func(k *store.Key) { k.Alias = "bee" })
	_, _, err = fa.st.CreateKey(fa.ctx, dup, 1, store.Meta{})
	wantErr(t, "alias taken on the other handle", err, store.ErrConflict)
	dup = fa.newKey()
	dup.Hash = kb.Hash
	_, _, err = fa.st.CreateKey(fa.ctx, dup, 1, store.Meta{})
	wantErr(t, "hash taken on the other handle", err, store.ErrAlreadyExists)
	CheckInvariant(t, fa.st, k.ID, kb.ID)
	CheckInvariant(t, fb.st, k.ID, kb.ID)
}

func testNoOverspend(fa, fb *fixture) {
	t := fa.t
	k := fa.key(100)
	errs := race(300, func(i int) error {
		f := fa
		if i%2 == 1 {
			f = fb
		}
		return f.spend(k.ID, fmt.Sprintf("ovr-%d", i), 1)
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrInsufficientCredits):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 100 {
		t.Fatalf("%d reservations succeeded across two handles, want exactly 100", ok)
	}
	for _, f := range []*fixture{fa, fb} {
		if a := f.account(k.ID); a.Balance != 0 || a.Calls != 100 {
			t.Fatalf("account %+v", a)
		}
		CheckInvariant(t, f.st, k.ID)
	}
}

func testDuplicateAcross(fa, fb *fixture) {
	t := fa.t
	k := fa.key(100)
	fa.reserve(k.ID, "dup-x", 1)
	_, err := fb.st.Reserve(fb.ctx, store.Reservation{KeyID: k.ID, CallID: "dup-x", Now: T0, Items: items(1)})
	wantErr(t, "duplicate on the other handle", err, store.ErrDuplicateCall)
	errs := race(20, func(i int) error {
		f := fa
		if i%2 == 1 {
			f = fb
		}
		return f.spend(k.ID, "dup-y", 1)
	})
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, store.ErrDuplicateCall) {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d handles reserved one call id, want 1", ok)
	}
	CheckInvariant(t, fa.st, k.ID)
}

func testRefundAcross(fa, fb *fixture) {
	t := fa.t
	k := fa.key(100)
	fa.reserve(k.ID, "ra", 10)
	fb.wait(fb.must(fb.st.Refund(fb.ctx, store.Refund{KeyID: k.ID, CallID: "ra", Item: 0, Amount: 10, Now: T0})))
	rc, err := fa.st.Refund(fa.ctx, store.Refund{KeyID: k.ID, CallID: "ra", Item: 0, Amount: 10, Now: T0})
	if err != nil {
		t.Fatalf("second refund on the other handle: %v", err)
	}
	fa.wait(rc)
	if a := fa.account(k.ID); a.Balance != 100 || a.Spent != 0 {
		t.Fatalf("account %+v", a)
	}
	if es := fa.entries(store.LedgerFilter{KeyID: k.ID, Kinds: []store.EntryKind{store.EntryRefund}}); len(es) != 1 {
		t.Fatalf("%d refund entries, want 1", len(es))
	}
	CheckInvariant(t, fb.st, k.ID)
}
