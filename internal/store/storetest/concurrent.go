package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// RunConcurrent runs the concurrency contract: each subtest gets a fresh
// store from newStore.
func RunConcurrent(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(f *fixture)
	}{
		{"LastCredits", testLastCredits},
		{"DuplicateCallRace", testDuplicateCallRace},
		{"RefundRace", testRefundRace},
		{"OppositeTransfers", testOppositeTransfers},
		{"Mixed", testMixed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(newFixture(t, newStore(t)))
		})
	}
}

// race runs fn(i) on n goroutines started together and returns the errors
// by goroutine. fn must not call t.Fatal.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = fn(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

// spend reserves amount on key with callID and waits for durability.
func (f *fixture) spend(key, callID string, amounts ...credits.Credits) error {
	rc, err := f.st.Reserve(f.ctx, store.Reservation{KeyID: key, CallID: callID, Now: T0, Items: items(amounts...)})
	if err != nil {
		return err
	}
	return rc.Wait(f.ctx)
}

func testLastCredits(f *fixture) {
	t := f.t
	k := f.key(50)
	errs := race(200, func(i int) error { return f.spend(k.ID, fmt.Sprintf("last-%d", i), 1) })
	ok, short := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrInsufficientCredits):
			short++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 50 || short != 150 {
		t.Fatalf("%d reservations succeeded and %d were refused, want 50 and 150", ok, short)
	}
	if a := f.account(k.ID); a.Balance != 0 || a.Spent != 50 || a.Calls != 50 {
		t.Fatalf("account %+v", a)
	}
	if es := f.entries(store.LedgerFilter{KeyID: k.ID, Kinds: []store.EntryKind{store.EntryCharge}}); len(es) != 50 {
		t.Fatalf("%d charge entries, want 50", len(es))
	}
	CheckInvariant(t, f.st, k.ID)
}

func testDuplicateCallRace(f *fixture) {
	t := f.t
	keys := []string{f.key(100).ID, f.key(100).ID}
	errs := race(50, func(i int) error { return f.spend(keys[i%2], "same-call", 3) })
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrDuplicateCall):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d reservations of one call id succeeded, want 1", ok)
	}
	if total := f.account(keys[0]).Balance + f.account(keys[1]).Balance; total != 197 {
		t.Fatalf("balances sum to %d, want 197", total)
	}
	CheckInvariant(t, f.st, keys...)
}

func testRefundRace(f *fixture) {
	t := f.t
	k := f.key(100)
	if err := f.spend(k.ID, "r", 10, 20); err != nil {
		t.Fatal(err)
	}
	errs := race(40, func(i int) error {
		rc, err := f.st.Refund(f.ctx, store.Refund{KeyID: k.ID, CallID: "r", Item: i % 2, Amount: credits.Credits(10 * (i%2 + 1)), Now: T0})
		if err != nil {
			return err
		}
		return rc.Wait(f.ctx)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("refund: %v", err)
		}
	}
	if a := f.account(k.ID); a.Balance != 100 || a.Spent != 0 || a.Calls != 0 {
		t.Fatalf("after racing refunds %+v", a)
	}
	if es := f.entries(store.LedgerFilter{KeyID: k.ID, Kinds: []store.EntryKind{store.EntryRefund}}); len(es) != 2 {
		t.Fatalf("%d refund entries, want 2", len(es))
	}
	CheckInvariant(t, f.st, k.ID)
}

func testOppositeTransfers(f *fixture) {
	t := f.t
	a, b := f.key(1000).ID, f.key(1000).ID
	errs := race(100, func(i int) error {
		from, to := a, b
		if i%2 == 1 {
			from, to = b, a
		}
		out, in, err := f.st.Transfer(f.ctx, from, to, credits.Credits(i%7+1), store.Meta{})
		if err != nil {
			return err
		}
		if err := out.Wait(f.ctx); err != nil {
			return err
		}
		return in.Wait(f.ctx)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("transfer: %v", err)
		}
	}
	if sum := f.account(a).Balance + f.account(b).Balance; sum != 2000 {
		t.Fatalf("balances sum to %d after transfers, want 2000", sum)
	}
	CheckInvariant(t, f.st, a, b)
}

// testMixed runs reserves, refunds, top-ups and transfers between a few
// keys at once; every key's invariant must hold and credits are conserved:
// the sum of balances plus the sum of spent equals grants plus top-ups.
func testMixed(f *fixture) {
	mixed(f, []store.Store{f.st}, 8, 150)
}

func mixed(f *fixture, handles []store.Store, workers, ops int) {
	t := f.t
	var ids []string
	var granted credits.Credits
	for range 4 {
		ids = append(ids, f.key(500).ID)
		granted += 500
	}
	var toppedUp atomic.Int64
	errs := race(workers, func(w int) error {
		st := handles[w%len(handles)]
		rng := rand.New(rand.NewPCG(uint64(w), 42))
		type charge struct {
			key, call string
			amounts   []credits.Credits
		}
		var mine []charge
		for i := range ops {
			key := ids[rng.IntN(len(ids))]
			switch op := rng.IntN(10); {
			case op < 5: // reserve 1-3 items of 1-5 credits
				n := rng.IntN(3) + 1
				amounts := make([]credits.Credits, n)
				for j := range amounts {
					amounts[j] = credits.Credits(rng.IntN(5) + 1)
				}
				call := fmt.Sprintf("%s-w%d-%d", f.tag, w, i)
				rc, err := st.Reserve(f.ctx, store.Reservation{KeyID: key, CallID: call, Now: T0, Items: items(amounts...)})
				if errors.Is(err, store.ErrInsufficientCredits) {
					continue
				}
				if err != nil {
					return err
				}
				if err := rc.Wait(f.ctx); err != nil {
					return err
				}
				mine = append(mine, charge{key, call, amounts})
			case op < 7: // refund one item of an earlier charge (maybe again)
				if len(mine) == 0 {
					continue
				}
				c := mine[rng.IntN(len(mine))]
				item := rng.IntN(len(c.amounts))
				rc, err := st.Refund(f.ctx, store.Refund{KeyID: c.key, CallID: c.call, Item: item, Amount: c.amounts[item], Now: T0})
				if err != nil {
					return err
				}
				if err := rc.Wait(f.ctx); err != nil {
					return err
				}
			case op < 8:
				amt := credits.Credits(rng.IntN(20) + 1)
				rc, err := st.TopUp(f.ctx, key, amt, store.EntryTopUp, store.Meta{})
				if err != nil {
					return err
				}
				if err := rc.Wait(f.ctx); err != nil {
					return err
				}
				toppedUp.Add(amt)
			default:
				to := ids[rng.IntN(len(ids))]
				if to == key {
					continue
				}
				out, in, err := st.Transfer(f.ctx, key, to, credits.Credits(rng.IntN(30)+1), store.Meta{})
				if errors.Is(err, store.ErrInsufficientCredits) {
					continue
				}
				if err != nil {
					return err
				}
				if err := errors.Join(out.Wait(f.ctx), in.Wait(f.ctx)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("worker: %v", err)
		}
	}
	var balances, spent credits.Credits
	for _, id := range ids {
		a := f.account(id)
		if a.Balance < 0 {
			t.Fatalf("key %s went negative: %+v", id, a)
		}
		balances += a.Balance
		spent += a.Spent
	}
	if want := granted + toppedUp.Load(); balances+spent != want {
		t.Fatalf("credits not conserved: balances %d + spent %d = %d, want grants + top-ups = %d",
			balances, spent, balances+spent, want)
	}
	CheckInvariant(t, f.st, ids...)
	for _, h := range handles[1:] {
		CheckInvariant(t, h, ids...)
	}
}
