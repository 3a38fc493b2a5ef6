package storetest

import (
	"errors"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

func items(amounts ...credits.Credits) []store.Item {
	out := make([]store.Item, len(amounts))
	for i, a := range amounts {
		out[i] = store.Item{Tool: []string{"search", "fetch", "summarize", "translate"}[i%4], Amount: a}
	}
	return out
}

func testReserveCharges(f *fixture) {
	t := f.t
	k := f.key(100)
	rc, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "call-1", Now: T0, Items: items(7),
		Meta: store.Meta{RequestID: "req-9", Actor: "gateway", Note: "n"}})
	if err != nil {
		t.Fatal(err)
	}
	f.wait(rc)
	if rc.BalanceAfter != 93 || rc.Account.Balance != 93 || rc.Account.Spent != 7 || rc.Account.Calls != 1 {
		t.Fatalf("receipt %+v", rc)
	}
	a := f.account(k.ID)
	if a != rc.Account {
		t.Fatalf("account %+v, receipt says %+v", a, rc.Account)
	}
	if a.Day != store.DayOf(T0) || a.Month != store.MonthOf(T0) || a.DailyCalls != 1 || a.MonthlyCalls != 1 ||
		a.DailyCredits != 7 || a.MonthlyCredits != 7 || !a.LastUsedAt.Equal(T0) {
		t.Fatalf("counters %+v", a)
	}
	es := f.entries(store.LedgerFilter{KeyID: k.ID, Kinds: []store.EntryKind{store.EntryCharge}})
	if len(es) != 1 {
		t.Fatalf("charges %+v", es)
	}
	e := es[0]
	if e.Seq != rc.Seq || e.Delta != -7 || e.BalanceAfter != 93 || e.Tool != "search" || e.CallID != "call-1" ||
		e.Item != 0 || e.RequestID != "req-9" || e.Actor != "gateway" || e.Note != "n" || !e.Time.Equal(T0) {
		t.Fatalf("charge entry %+v (receipt seq %d)", e, rc.Seq)
	}

	// A batch writes one line per item, all or nothing.
	rc = f.wait(f.must(f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "call-2", Now: T0, Items: items(1, 2, 3)})))
	if rc.BalanceAfter != 87 || rc.Account.Calls != 4 || rc.Account.DailyCalls != 4 || rc.Account.DailyCredits != 13 {
		t.Fatalf("batch receipt %+v", rc)
	}
	es = f.entries(store.LedgerFilter{KeyID: k.ID, Kinds: []store.EntryKind{store.EntryCharge}, AfterSeq: e.Seq})
	if len(es) != 3 {
		t.Fatalf("batch charges %+v", es)
	}
	for i, e := range es {
		if e.Item != i || e.CallID != "call-2" || e.Delta != -credits.Credits(i+1) || e.Tool != items(1, 2, 3)[i].Tool {
			t.Fatalf("batch entry %d: %+v", i, e)
		}
		if i > 0 && e.Seq <= es[i-1].Seq {
			t.Fatalf("seq not increasing: %+v", es)
		}
	}
	if rc.Seq != es[2].Seq {
		t.Fatalf("receipt seq %d, last entry %d", rc.Seq, es[2].Seq)
	}
	// Free items are charged (zero) and counted.
	rc = f.wait(f.must(f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "call-3", Now: T0, Items: items(0)})))
	if rc.BalanceAfter != 87 || rc.Account.Calls != 5 {
		t.Fatalf("free call receipt %+v", rc)
	}
	// Malformed reservations are refused.
	if _, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "call-4", Now: T0}); err == nil {
		t.Fatal("Reserve with no items succeeded")
	}
	if _, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "call-5", Now: T0, Items: items(-1)}); err == nil {
		t.Fatal("Reserve with a negative amount succeeded")
	}
	CheckInvariant(t, f.st, k.ID)
}

// must fails the test unless a money operation succeeded.
func (f *fixture) must(rc *store.Receipt, err error) *store.Receipt {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("money operation: %v", err)
	}
	return rc
}

func testReserveInsufficient(f *fixture) {
	t := f.t
	k := f.key(10)
	_, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "c1", Now: T0, Items: items(4, 4, 4)})
	wantLimit(t, "batch over balance", err, store.ErrInsufficientCredits, 12, 10)
	a := f.account(k.ID)
	if a.Balance != 10 || a.Spent != 0 || a.Calls != 0 || a.DailyCalls != 0 {
		t.Fatalf("refused reserve changed the account: %+v", a)
	}
	if es := f.entries(store.LedgerFilter{KeyID: k.ID, Kinds: []store.EntryKind{store.EntryCharge}}); len(es) != 0 {
		t.Fatalf("refused reserve wrote %+v", es)
	}
	// A refused call id was never reserved: it may be retried.
	f.wait(f.must(f.st.TopUp(f.ctx, k.ID, 2, store.EntryTopUp, store.Meta{})))
	f.wait(f.must(f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "c1", Now: T0, Items: items(4, 4, 4)})))
	_, err = f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "c2", Now: T0, Items: items(1)})
	wantLimit(t, "empty balance", err, store.ErrInsufficientCredits, 1, 0)
	CheckInvariant(t, f.st, k.ID)
}

func testReserveSpendingLimit(f *fixture) {
	t := f.t
	k := f.key(1000)
	lim := store.Limits{SpendingLimit: 25}
	f.wait(f.must(f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "c1", Now: T0, Items: items(20), Limits: lim})))
	_, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "c2", Now: T0, Items: items(6), Limits: lim})
	wantLimit(t, "over spending limit", err, store.ErrSpendingLimit, 6, 5)
	f.wait(f.must(f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "c3", Now: T0, Items: items(5), Limits: lim})))
	_, err = f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "c4", Now: T0, Items: items(1), Limits: lim})
	wantLimit(t, "at spending limit", err, store.ErrSpendingLimit, 1, 0)
	// A refund gives budget back.
	f.wait(f.must(f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "c3", Item: 0, Amount: 5, Now: T0})))
	f.wait(f.must(f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "c4", Now: T0, Items: items(5), Limits: lim})))
	if a := f.account(k.ID); a.Spent != 25 || a.Balance != 975 {
		t.Fatalf("account %+v", a)
	}
	CheckInvariant(t, f.st, k.ID)
}

func testReserveQuotas(f *fixture) {
	cases := []struct {
		name       string
		quota      store.Quota
		first      []credits.Credits // succeeds
		second     []credits.Credits // refused
		need, have credits.Credits
		period     string
	}{
		{"daily calls", store.Quota{DailyCalls: 3}, []credits.Credits{1, 1}, []credits.Credits{1, 1}, 2, 1, store.QuotaDaily},
		{"monthly calls", store.Quota{MonthlyCalls: 2, DailyCalls: 10}, []credits.Credits{1, 1}, []credits.Credits{1}, 1, 0, store.QuotaMonthly},
		{"daily credits", store.Quota{DailyCredits: 10}, []credits.Credits{4, 4}, []credits.Credits{3}, 3, 2, store.QuotaDaily},
		{"monthly credits", store.Quota{MonthlyCredits: 10, DailyCredits: 100}, []credits.Credits{9}, []credits.Credits{2}, 2, 1, store.QuotaMonthly},
	}
	for _, tc := range cases {
		k := f.key(1000)
		lim := store.Limits{Quota: tc.quota}
		f.wait(f.must(f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: k.ID + "-1", Now: T0, Items: items(tc.first...), Limits: lim})))
		_, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: k.ID + "-2", Now: T0, Items: items(tc.second...), Limits: lim})
		wantLimit(f.t, tc.name, err, store.ErrQuotaExceeded, tc.need, tc.have)
		if le := (*store.LimitError)(nil); errors.As(err, &le) && le.Period != tc.period {
			f.t.Fatalf("%s: period %q, want %q", tc.name, le.Period, tc.period)
		}
		if a := f.account(k.ID); a.Calls != int64(len(tc.first)) {
			f.t.Fatalf("%s: refused reserve counted: %+v", tc.name, a)
		}
		CheckInvariant(f.t, f.st, k.ID)
	}
}

func testQuotaRollover(f *fixture) {
	t := f.t
	k := f.key(1000)
	lim := store.Limits{Quota: store.Quota{DailyCalls: 2, MonthlyCalls: 3}}
	day1 := time.Date(2025, 3, 30, 23, 0, 0, 0, time.UTC)
	day2 := day1.Add(2 * time.Hour) // 2025-03-31 01:00
	day3 := day2.Add(24 * time.Hour)
	n := 0
	res := func(now time.Time) (*store.Receipt, error) {
		n++
		return f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "roll-" + string(rune('a'+n)), Now: now, Items: items(1), Limits: lim})
	}
	f.wait(f.must(res(day1)))
	f.wait(f.must(res(day1)))
	_, err := res(day1)
	wantLimit(t, "third call on day 1", err, store.ErrQuotaExceeded, 1, 0)
	// The next UTC day resets the daily counter; the month keeps counting.
	rc := f.wait(f.must(res(day2)))
	if rc.Account.Day != store.DayOf(day2) || rc.Account.DailyCalls != 1 || rc.Account.MonthlyCalls != 3 {
		t.Fatalf("after day rollover %+v", rc.Account)
	}
	_, err = res(day2)
	wantLimit(t, "monthly call quota", err, store.ErrQuotaExceeded, 1, 0)
	// A new month resets both.
	rc = f.wait(f.must(res(day3)))
	if rc.Account.Month != store.MonthOf(day3) || rc.Account.MonthlyCalls != 1 || rc.Account.DailyCalls != 1 ||
		rc.Account.Day != 20250401 || rc.Account.Month != 202504 {
		t.Fatalf("after month rollover %+v", rc.Account)
	}
	if rc.Account.Calls != 4 {
		t.Fatalf("lifetime calls %d, want 4", rc.Account.Calls)
	}
	CheckInvariant(t, f.st, k.ID)
}

func testDuplicateCall(f *fixture) {
	t := f.t
	a, b := f.key(100), f.key(100)
	f.reserve(a.ID, "dup", 5)
	_, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: a.ID, CallID: "dup", Now: T0, Items: items(5)})
	wantErr(t, "same key", err, store.ErrDuplicateCall)
	_, err = f.st.Reserve(f.ctx, store.Reservation{KeyID: b.ID, CallID: "dup", Now: T0, Items: items(5)})
	wantErr(t, "other key", err, store.ErrDuplicateCall)
	// Refunding does not free the call id.
	f.wait(f.must(f.st.Refund(f.ctx, store.Refund{KeyID: a.ID, CallID: "dup", Item: 0, Amount: 5, Now: T0})))
	_, err = f.st.Reserve(f.ctx, store.Reservation{KeyID: a.ID, CallID: "dup", Now: T0, Items: items(5)})
	wantErr(t, "after refund", err, store.ErrDuplicateCall)
	if x, y := f.account(a.ID), f.account(b.ID); x.Balance != 100 || y.Balance != 100 {
		t.Fatalf("balances %d %d", x.Balance, y.Balance)
	}
	CheckInvariant(t, f.st, a.ID, b.ID)
}

func testRevokedKey(f *fixture) {
	t := f.t
	k := f.key(100)
	f.reserve(k.ID, "c1", 10)
	if _, err := f.st.UpdateKey(f.ctx, k.ID, func(k *store.Key) error { k.Revoked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "c2", Now: T0, Items: items(1)})
	wantErr(t, "reserve on revoked", err, store.ErrKeyInactive)
	_, err = f.st.TopUp(f.ctx, k.ID, 5, store.EntryTopUp, store.Meta{})
	wantErr(t, "top up revoked", err, store.ErrKeyInactive)
	// Money already charged can still be given back.
	f.wait(f.must(f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "c1", Item: 0, Amount: 10, Now: T0})))
	if a := f.account(k.ID); a.Balance != 100 {
		t.Fatalf("balance %d", a.Balance)
	}
	// Revoked keys still resolve (the gate answers "revoked", not "unknown").
	if got, err := f.st.LookupHash(f.ctx, k.Hash); err != nil || !got.Revoked {
		t.Fatalf("LookupHash of revoked key: %+v %v", got, err)
	}
	CheckInvariant(t, f.st, k.ID)
}

func testRefund(f *fixture) {
	t := f.t
	k, other := f.key(100), f.key(100)
	f.wait(f.must(f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "batch", Now: T0, Items: items(5, 7, 9)})))
	before := f.account(k.ID)
	rc, err := f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "batch", Item: 1, Amount: 7, Tool: "fetch", Now: T0,
		Meta: store.Meta{Actor: "gateway", Note: "backend_down"}})
	if err != nil {
		t.Fatal(err)
	}
	f.wait(rc)
	a := f.account(k.ID)
	if a.Balance != before.Balance+7 || a.Spent != before.Spent-7 || a.Calls != before.Calls-1 ||
		a.DailyCalls != before.DailyCalls-1 || a.DailyCredits != before.DailyCredits-7 ||
		a.MonthlyCalls != before.MonthlyCalls-1 || a.MonthlyCredits != before.MonthlyCredits-7 {
		t.Fatalf("after refund %+v, before %+v", a, before)
	}
	if rc.BalanceAfter != a.Balance || rc.Account != a {
		t.Fatalf("refund receipt %+v, account %+v", rc, a)
	}
	es := f.entries(store.LedgerFilter{KeyID: k.ID, Kinds: []store.EntryKind{store.EntryRefund}})
	if len(es) != 1 || es[0].Delta != 7 || es[0].CallID != "batch" || es[0].Item != 1 || es[0].Tool != "fetch" ||
		es[0].Seq != rc.Seq || es[0].Note != "backend_down" {
		t.Fatalf("refund entries %+v", es)
	}
	// Idempotent: a second refund of the item is a no-op reporting the balance.
	rc2, err := f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "batch", Item: 1, Amount: 7, Now: T0})
	if err != nil {
		t.Fatalf("second refund: %v", err)
	}
	f.wait(rc2)
	if rc2.BalanceAfter != a.Balance || f.account(k.ID) != a {
		t.Fatalf("second refund moved money: %+v", rc2)
	}
	if es := f.entries(store.LedgerFilter{KeyID: k.ID, Kinds: []store.EntryKind{store.EntryRefund}}); len(es) != 1 {
		t.Fatalf("second refund wrote a line: %+v", es)
	}
	// Refunds match the charge: other items, other keys, other calls.
	_, err = f.st.Refund(f.ctx, store.Refund{KeyID: other.ID, CallID: "batch", Item: 0, Amount: 5, Now: T0})
	wantErr(t, "refund on another key", err, store.ErrNotFound)
	_, err = f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "batch", Item: 3, Amount: 1, Now: T0})
	wantErr(t, "refund of a missing item", err, store.ErrNotFound)
	_, err = f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "nope", Item: 0, Amount: 1, Now: T0})
	wantErr(t, "refund of an unknown call", err, store.ErrNotFound)
	if _, err := f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "batch", Item: 0, Amount: 6, Now: T0}); err == nil ||
		errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refund above the charge: %v, want a refusal", err)
	}
	// The other items are still refundable.
	f.wait(f.must(f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "batch", Item: 0, Amount: 5, Now: T0})))
	f.wait(f.must(f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "batch", Item: 2, Amount: 9, Now: T0})))
	if a := f.account(k.ID); a.Balance != 100 || a.Spent != 0 || a.Calls != 0 || a.DailyCalls != 0 || a.DailyCredits != 0 {
		t.Fatalf("after refunding everything %+v", a)
	}
	CheckInvariant(t, f.st, k.ID, other.ID)
}

func testRefundAfterRollover(f *fixture) {
	t := f.t
	k := f.key(100)
	day1 := T0
	day2 := T0.Add(24 * time.Hour)
	f.reserveAt(k.ID, "old", 10, day1)
	f.reserveAt(k.ID, "new", 3, day2)
	f.wait(f.must(f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "old", Item: 0, Amount: 10, Now: day2})))
	a := f.account(k.ID)
	// The refund of day 1's charge leaves day 2's daily counters alone but
	// gives back within the month both counted in.
	if a.DailyCalls != 1 || a.DailyCredits != 3 || a.MonthlyCalls != 1 || a.MonthlyCredits != 3 || a.Calls != 1 || a.Spent != 3 {
		t.Fatalf("after refund across days %+v", a)
	}
	CheckInvariant(t, f.st, k.ID)
}

func testTopUpKinds(f *fixture) {
	t := f.t
	k := f.key(10)
	rc := f.wait(f.must(f.st.TopUp(f.ctx, k.ID, 15, "", store.Meta{Actor: "stripe", Note: "inv_1"})))
	if rc.BalanceAfter != 25 {
		t.Fatalf("top-up receipt %+v", rc)
	}
	f.wait(f.must(f.st.TopUp(f.ctx, k.ID, 5, store.EntryGrant, store.Meta{})))
	f.wait(f.must(f.st.TopUp(f.ctx, k.ID, -40, store.EntryAdjustment, store.Meta{Note: "chargeback"})))
	if a := f.account(k.ID); a.Balance != -10 {
		t.Fatalf("balance after negative adjustment %d, want -10", a.Balance)
	}
	_, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: k.ID, CallID: "c1", Now: T0, Items: items(1)})
	wantLimit(t, "reserve on negative balance", err, store.ErrInsufficientCredits, 1, -10)
	for _, bad := range []struct {
		amount credits.Credits
		kind   store.EntryKind
	}{{-5, store.EntryTopUp}, {-5, store.EntryGrant}, {0, store.EntryTopUp}, {5, store.EntryCharge}, {5, store.EntryRefund},
		{credits.Max + 1, store.EntryTopUp}} {
		if _, err := f.st.TopUp(f.ctx, k.ID, bad.amount, bad.kind, store.Meta{}); err == nil {
			t.Fatalf("TopUp %d %q succeeded", bad.amount, bad.kind)
		}
	}
	es := f.entries(store.LedgerFilter{KeyID: k.ID})
	kinds := []store.EntryKind{store.EntryGrant, store.EntryTopUp, store.EntryGrant, store.EntryAdjustment}
	if len(es) != len(kinds) {
		t.Fatalf("entries %+v", es)
	}
	for i, e := range es {
		if e.Kind != kinds[i] {
			t.Fatalf("entry %d kind %q, want %q", i, e.Kind, kinds[i])
		}
	}
	if es[1].Actor != "stripe" || es[1].Note != "inv_1" || es[3].Delta != -40 {
		t.Fatalf("entries %+v", es)
	}
	CheckInvariant(t, f.st, k.ID)
}

func testTransfer(f *fixture) {
	t := f.t
	a, b := f.key(50), f.key(5)
	out, in, err := f.st.Transfer(f.ctx, a.ID, b.ID, 20, store.Meta{Actor: "admin", Note: "rebalance"})
	if err != nil {
		t.Fatal(err)
	}
	f.wait(out)
	f.wait(in)
	if out.BalanceAfter != 30 || in.BalanceAfter != 25 || f.account(a.ID).Balance != 30 || f.account(b.ID).Balance != 25 {
		t.Fatalf("receipts %+v %+v", out, in)
	}
	ea := f.entries(store.LedgerFilter{KeyID: a.ID, Kinds: []store.EntryKind{store.EntryTransferOut}})
	eb := f.entries(store.LedgerFilter{KeyID: b.ID, Kinds: []store.EntryKind{store.EntryTransferIn}})
	if len(ea) != 1 || len(eb) != 1 || ea[0].Delta != -20 || eb[0].Delta != 20 || ea[0].Counterparty != b.ID ||
		eb[0].Counterparty != a.ID || ea[0].Seq != out.Seq || eb[0].Seq != in.Seq || ea[0].Note != "rebalance" {
		t.Fatalf("transfer entries %+v %+v", ea, eb)
	}
	_, _, err = f.st.Transfer(f.ctx, b.ID, a.ID, 26, store.Meta{})
	wantLimit(t, "transfer over balance", err, store.ErrInsufficientCredits, 26, 25)
	if _, _, err := f.st.Transfer(f.ctx, a.ID, a.ID, 1, store.Meta{}); err == nil {
		t.Fatal("transfer to self succeeded")
	}
	for _, amt := range []credits.Credits{0, -1} {
		if _, _, err := f.st.Transfer(f.ctx, a.ID, b.ID, amt, store.Meta{}); err == nil {
			t.Fatalf("transfer of %d succeeded", amt)
		}
	}
	// Nothing changed after the refusals.
	if f.account(a.ID).Balance != 30 || f.account(b.ID).Balance != 25 {
		t.Fatal("a refused transfer moved credits")
	}
	CheckInvariant(t, f.st, a.ID, b.ID)
}

func testEntriesFilters(f *fixture) {
	t := f.t
	a, b := f.key(100), f.key(100)
	for i := range 5 {
		f.reserveAt(a.ID, "a"+string(rune('0'+i)), 1, T0.Add(time.Duration(i)*time.Hour))
	}
	f.reserveAt(b.ID, "b0", 2, T0.Add(2*time.Hour))
	all := f.entries(store.LedgerFilter{})
	if len(all) != 8 {
		t.Fatalf("all entries: %d", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("entries not in seq order: %+v", all)
		}
	}
	count := func(name string, fl store.LedgerFilter, want int) []store.Entry {
		t.Helper()
		es := f.entries(fl)
		if len(es) != want {
			t.Fatalf("%s: %d entries, want %d: %+v", name, len(es), want, es)
		}
		return es
	}
	count("key", store.LedgerFilter{KeyID: a.ID}, 6)
	count("kinds", store.LedgerFilter{Kinds: []store.EntryKind{store.EntryCharge}}, 6)
	count("kinds grant+charge on b", store.LedgerFilter{KeyID: b.ID, Kinds: []store.EntryKind{store.EntryGrant, store.EntryCharge}}, 2)
	count("since", store.LedgerFilter{KeyID: a.ID, Kinds: []store.EntryKind{store.EntryCharge}, Since: T0.Add(2 * time.Hour)}, 3)
	count("until (exclusive)", store.LedgerFilter{KeyID: a.ID, Kinds: []store.EntryKind{store.EntryCharge}, Until: T0.Add(2 * time.Hour)}, 2)
	count("window", store.LedgerFilter{Kinds: []store.EntryKind{store.EntryCharge}, Since: T0.Add(time.Hour), Until: T0.Add(3 * time.Hour)}, 3)
	es := count("after seq", store.LedgerFilter{AfterSeq: all[5].Seq}, 2)
	if es[0].Seq != all[6].Seq {
		t.Fatalf("after seq starts at %d, want %d", es[0].Seq, all[6].Seq)
	}
	es = count("limit", store.LedgerFilter{Limit: 3}, 3)
	if es[0].Seq != all[0].Seq {
		t.Fatal("limit without desc must return the oldest")
	}
	es = count("desc limit", store.LedgerFilter{Limit: 2, Desc: true}, 2)
	if es[0].Seq != all[7].Seq || es[1].Seq != all[6].Seq {
		t.Fatalf("desc: %+v", es)
	}
	es = count("desc after seq", store.LedgerFilter{Desc: true, AfterSeq: all[4].Seq, KeyID: a.ID}, 2)
	if es[0].Seq <= es[1].Seq {
		t.Fatalf("desc order: %+v", es)
	}
	CheckInvariant(t, f.st, a.ID, b.ID)
}

func testPing(f *fixture) {
	if err := f.st.Ping(f.ctx); err != nil {
		f.t.Fatalf("Ping: %v", err)
	}
}
