package sqlite

import (
	"testing"
	"unsafe"
)

// TestRecSize guards the per-key memory budget: 100,000 keys must stay
// within the gateway's idle memory target (docs/BENCHMARKS.md), and a field
// added to rec costs 100,000 times its size.
func TestRecSize(t *testing.T) {
	if got := unsafe.Sizeof(rec{}); got > 160 {
		t.Errorf("rec is %d bytes, budget 160: put rarely set fields behind ext", got)
	}
}

// TestRecAccount: the quota counters live behind a pointer that stays nil
// until they count something, and an account reads back exactly as set in
// every state.
func TestRecAccount(t *testing.T) {
	var r rec
	if got := r.account(); got != (account{}) {
		t.Fatalf("zero rec: %+v", got)
	}
	plain := account{totals: totals{balance: 500, spent: 20, calls: 3, lastUsed: 1700000000000000000}}
	r.setAccount(plain)
	if r.per != nil {
		t.Error("an account with no quota counts allocated them")
	}
	if got := r.account(); got != plain {
		t.Errorf("plain: got %+v, want %+v", got, plain)
	}
	counted := plain
	counted.periods = periods{day: 20000, month: 657, dailyCalls: 1, dailyCredits: 7, monthlyCalls: 2, monthlyCredits: 9}
	r.setAccount(counted)
	if r.per == nil {
		t.Fatal("quota counts were not kept")
	}
	if got := r.account(); got != counted {
		t.Errorf("counted: got %+v, want %+v", got, counted)
	}
	// A copy handed out earlier does not change with the rec.
	before := r.account()
	next := counted
	next.balance, next.dailyCalls = 400, 5
	r.setAccount(next)
	if before != counted {
		t.Errorf("an earlier account changed with the rec: %+v", before)
	}
	if got := r.account(); got != next {
		t.Errorf("next: got %+v, want %+v", got, next)
	}
	// Back to zero counts (a refund, or a restore) reads back as zero.
	r.setAccount(plain)
	if got := r.account(); got != plain {
		t.Errorf("reset: got %+v, want %+v", got, plain)
	}
}
