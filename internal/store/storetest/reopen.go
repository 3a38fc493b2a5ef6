package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// RunReopen runs the durability contract for stores that persist: newOpen
// returns, for a fresh empty location, a function that opens a handle on
// it (registering nothing; the suite closes each handle before opening the
// next).
func RunReopen(t *testing.T, newOpen func(t *testing.T) func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"Everything", testReopenEverything},
		{"DuplicateCall", testReopenDuplicate},
		{"RefundIdempotent", testReopenRefund},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newOpen(t)) })
	}
}

func closeStore(t *testing.T, st store.Store) {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testReopenEverything(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open(t))
	a := f.key(100, fullKey)
	b := f.key(50)
	f.wait(f.must(f.st.Reserve(f.ctx, store.Reservation{KeyID: a.ID, CallID: "c1", Now: T0, Items: items(3, 4),
		Limits: store.Limits{Quota: store.Quota{DailyCalls: 10}}})))
	f.wait(f.must(f.st.Refund(f.ctx, store.Refund{KeyID: a.ID, CallID: "c1", Item: 1, Amount: 4, Now: T0})))
	f.wait(f.must(f.st.TopUp(f.ctx, b.ID, 7, store.EntryTopUp, store.Meta{Actor: "stripe"})))
	out, _, err := f.st.Transfer(f.ctx, b.ID, a.ID, 5, store.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	f.wait(out)
	newSecret := "pg_reopened_rotated_secret_000000000000"
	if _, err := f.st.RotateKey(f.ctx, b.ID, HashOf(newSecret), newSecret[:7], newSecret[len(newSecret)-4:]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.UpdateKey(f.ctx, b.ID, func(k *store.Key) error { k.Alias = "bee"; k.Name = "renamed"; return nil }); err != nil {
		t.Fatal(err)
	}
	f.st.AppendUsage(store.UsageRecord{Time: T0, KeyID: a.ID, Tool: "search", Allowed: true, Credits: 3})
	f.st.AppendAudit(store.AuditEvent{Time: T0, Type: "key.created", Actor: "admin"})
	if err := f.st.CreateAdminKey(f.ctx, &store.AdminKey{ID: "adm", Hash: HashOf("adm"), Role: store.RoleAdmin, CreatedAt: T0}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutSetting(f.ctx, "maintenance", []byte(`{"on":true}`)); err != nil {
		t.Fatal(err)
	}
	ka, aa, _ := f.st.GetKey(f.ctx, a.ID)
	kb, ab, _ := f.st.GetKey(f.ctx, b.ID)
	entries := f.entries(store.LedgerFilter{})
	closeStore(t, f.st) // usage and audit were only queued: Close must flush them

	f2 := newFixture(t, open(t))
	defer closeStore(t, f2.st)
	ka2, aa2, err := f2.st.GetKey(f2.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, "key a after reopen", ka2, ka)
	if aa2 != aa {
		t.Fatalf("account a after reopen %+v, before %+v", aa2, aa)
	}
	kb2, ab2, _ := f2.st.GetKey(f2.ctx, b.ID)
	sameKey(t, "key b after reopen", kb2, kb)
	if ab2 != ab {
		t.Fatalf("account b after reopen %+v, before %+v", ab2, ab)
	}
	if _, err := f2.st.LookupHash(f2.ctx, b.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rotated-away hash resolves after reopen: %v", err)
	}
	if got, err := f2.st.LookupHash(f2.ctx, HashOf(newSecret)); err != nil || got.ID != b.ID {
		t.Fatalf("rotated hash after reopen: %v %v", got, err)
	}
	if got, err := f2.st.GetKeyByAlias(f2.ctx, "bee"); err != nil || got.ID != b.ID {
		t.Fatalf("alias after reopen: %v %v", got, err)
	}
	if got := f2.entries(store.LedgerFilter{}); len(got) != len(entries) {
		t.Fatalf("%d entries after reopen, %d before", len(got), len(entries))
	}
	if u, err := f2.st.Usage(f2.ctx, store.UsageFilter{}); err != nil || len(u) != 1 || u[0].Credits != 3 {
		t.Fatalf("usage after reopen: %+v %v", u, err)
	}
	if ev, err := f2.st.Audit(f2.ctx, store.AuditFilter{}); err != nil || len(ev) != 1 || ev[0].Type != "key.created" {
		t.Fatalf("audit after reopen: %+v %v", ev, err)
	}
	if ak, err := f2.st.LookupAdminHash(f2.ctx, HashOf("adm")); err != nil || ak.ID != "adm" {
		t.Fatalf("admin key after reopen: %+v %v", ak, err)
	}
	if v, err := f2.st.GetSetting(f2.ctx, "maintenance"); err != nil || !bytes.Equal(v, []byte(`{"on":true}`)) {
		t.Fatalf("setting after reopen: %q %v", v, err)
	}
	// Counters keep counting in the same period.
	rc2 := f2.wait(f2.must(f2.st.Reserve(f2.ctx, store.Reservation{KeyID: a.ID, CallID: "c2", Now: T0.Add(time.Minute), Items: items(1)})))
	if rc2.Account.DailyCalls != aa.DailyCalls+1 || rc2.Account.Calls != aa.Calls+1 {
		t.Fatalf("counters after reopen %+v (before %+v)", rc2.Account, aa)
	}
	CheckInvariant(t, f2.st, a.ID, b.ID)
}

func testReopenDuplicate(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open(t))
	k := f.key(100)
	f.reserve(k.ID, "once", 5)
	closeStore(t, f.st)

	f2 := newFixture(t, open(t))
	defer closeStore(t, f2.st)
	_, err := f2.st.Reserve(f2.ctx, store.Reservation{KeyID: k.ID, CallID: "once", Now: T0, Items: items(5)})
	wantErr(t, "call id reused after reopen", err, store.ErrDuplicateCall)
	f2.reserve(k.ID, "twice", 5)
	CheckInvariant(t, f2.st, k.ID)
}

func testReopenRefund(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open(t))
	k := f.key(100)
	f.wait(f.must(f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "rf", Now: T0, Items: items(10, 20)})))
	f.wait(f.must(f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "rf", Item: 0, Amount: 10, Now: T0})))
	closeStore(t, f.st)

	for round := range 2 {
		f := newFixture(t, open(t))
		// Item 0 was refunded before: a no-op. Item 1 refunds once.
		f.wait(f.must(f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "rf", Item: 0, Amount: 10, Now: T0})))
		f.wait(f.must(f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "rf", Item: 1, Amount: 20, Now: T0})))
		if a := f.account(k.ID); a.Balance != 100 || a.Spent != 0 || a.Calls != 0 {
			t.Fatalf("round %d: account %+v", round, a)
		}
		if es := f.entries(store.LedgerFilter{KeyID: k.ID, Kinds: []store.EntryKind{store.EntryRefund}}); len(es) != 2 {
			t.Fatalf("round %d: %d refund entries, want 2", round, len(es))
		}
		CheckInvariant(t, f.st, k.ID)
		closeStore(t, f.st)
	}
}
