package gate

import (
	"encoding/json"
	"testing"

	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// TestLimitDenialMatchesPrecheck: when a concurrent call makes the atomic
// charge refuse a call the pre-check let through, the client gets the same
// error data as if the pre-check had refused it: the call's price (not a
// call count), the key's balance (not 0, not a remaining budget), and
// failedIndex for batches, and a quota's retryAfter.
func TestLimitDenialMatchesPrecheck(t *testing.T) {
	price := policy.Settings{DefaultPrice: ptr[int64](3)}
	for _, tc := range []struct {
		name  string
		batch bool
		// at makes the account snapshot sit at the limit (pre-check
		// refuses); without it the chain passes.
		at  func(k *store.Key, a *store.Account)
		err *store.LimitError // what the store returns when it refuses (as store/sqlite's checkLimits does)
	}{
		{"spending_limit", false,
			func(k *store.Key, a *store.Account) { k.SpendingLimit = 10; a.Spent = 9 },
			&store.LimitError{Kind: store.ErrSpendingLimit, Need: 3, Have: 1, Detail: "spending limit 10, spent 9"}},
		{"daily_call_quota", false,
			func(k *store.Key, a *store.Account) { k.Quota = &store.Quota{DailyCalls: 2}; a.DailyCalls = 2 },
			&store.LimitError{Kind: store.ErrQuotaExceeded, Need: 1, Have: 0, Detail: "daily call quota 2 reached", Period: store.QuotaDaily}},
		{"monthly_credit_quota", false,
			func(k *store.Key, a *store.Account) { k.Quota = &store.Quota{MonthlyCredits: 5}; a.MonthlyCredits = 4 },
			&store.LimitError{Kind: store.ErrQuotaExceeded, Need: 3, Have: 1, Detail: "monthly credit quota 5 reached", Period: store.QuotaMonthly}},
		{"insufficient", false,
			func(_ *store.Key, a *store.Account) { a.Balance = 2 },
			&store.LimitError{Kind: store.ErrInsufficientCredits, Need: 3, Have: 2}},
		{"batch_spending_limit", true,
			func(k *store.Key, a *store.Account) { k.SpendingLimit = 10; a.Spent = 9 },
			&store.LimitError{Kind: store.ErrSpendingLimit, Need: 6, Have: 1, Detail: "spending limit 10, spent 9"}},
		{"batch_insufficient", true,
			func(_ *store.Key, a *store.Account) { a.Balance = 2 },
			&store.LimitError{Kind: store.ErrInsufficientCredits, Need: 6, Have: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newCall := func() *Call {
				if tc.batch {
					return batch("search", "search")
				}
				return call("search")
			}
			// The pre-check refuses when the snapshot is at the limit.
			pre := newEnv(t, price, tc.at)
			c := newCall()
			d := denial(t, pre.chain.Run(bg, c, false))
			if d == nil {
				t.Fatal("pre-check allowed the call")
			}
			// The same call, authenticated before the concurrent charge,
			// passes the checks; then the store refuses it.
			post := newEnv(t, price, func(k *store.Key, _ *store.Account) { tc.at(k, &store.Account{}) })
			c2 := newCall()
			if err := post.chain.Run(bg, c2, false); err != nil {
				t.Fatalf("the fresh call was refused: %v", err)
			}
			got := c2.LimitDenial(tc.err)
			want, have := dataOf(t, ErrorFor(d, "/pricing").Data), dataOf(t, ErrorFor(got, "/pricing").Data)
			if len(want) != len(have) {
				t.Fatalf("pre-check data %v\nreserve data   %v", want, have)
			}
			for k, v := range want {
				if have[k] != v {
					t.Fatalf("%s: pre-check %s, reserve %s\npre-check data %v\nreserve data   %v", k, v, have[k], want, have)
				}
			}
		})
	}
	if (&Call{}).LimitDenial(&store.LimitError{Kind: store.ErrConflict}) != nil {
		t.Error("LimitDenial of an unknown kind is not nil")
	}
}

// dataOf returns each member of an error's data as its JSON text.
func dataOf(t *testing.T, b []byte) map[string]string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}
