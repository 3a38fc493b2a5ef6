package gate

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

var batchSettings = policy.Settings{
	GlobalRateLimitPerMin: ptr[int64](5),
	ToolPricing: map[string]policy.ToolPolicy{
		"search":    {CreditsPerCall: ptr[int64](5), RateLimitPerMin: 2},
		"translate": {CreditsPerCall: ptr[int64](3), RateLimitPerMin: 1},
		"summarize": {CreditsPerCall: ptr[int64](2)},
	},
}

func TestBatch(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(k *store.Key, a *store.Account)
		before    map[string]int64 // rate scope → calls already made (limit 10)
		tools     []string
		want      Reason
		wantCheck string
		wantIndex int
	}{
		{name: "all allowed", tools: []string{"search", "translate", "summarize"}},
		{name: "ACL refuses the third item", mod: func(k *store.Key, _ *store.Account) { k.DeniedTools = []string{"summarize"} },
			tools: []string{"search", "translate", "summarize"}, want: ToolNotAllowed, wantCheck: "acl", wantIndex: 2},
		{name: "ACL reports the first refused item", mod: func(k *store.Key, _ *store.Account) { k.AllowedTools = []string{"search"} },
			tools: []string{"search", "translate", "summarize"}, want: ToolNotAllowed, wantCheck: "acl", wantIndex: 1},
		{name: "key rate counts every item", tools: []string{"summarize", "summarize", "summarize", "summarize", "summarize", "summarize"},
			want: RateLimited, wantCheck: "rate_limit", wantIndex: 0},
		{name: "key rate: batch fits exactly", before: map[string]int64{keyID: 2}, tools: []string{"summarize", "summarize", "summarize"}},
		{name: "key rate: batch one too many", before: map[string]int64{keyID: 3}, tools: []string{"summarize", "summarize", "summarize"},
			want: RateLimited, wantCheck: "rate_limit"},
		{name: "tool rate: same tool counted within the batch", tools: []string{"search", "summarize", "search", "search"},
			want: ToolRateLimited, wantCheck: "tool_rate_limit", wantIndex: 3},
		{name: "tool rate: earlier calls count", before: map[string]int64{keyID + ":search": 1}, tools: []string{"summarize", "search", "search"},
			want: ToolRateLimited, wantCheck: "tool_rate_limit", wantIndex: 2},
		{name: "tool rate: tool already at its limit fails its first item", before: map[string]int64{keyID + ":translate": 1},
			tools: []string{"search", "summarize", "translate"}, want: ToolRateLimited, wantCheck: "tool_rate_limit", wantIndex: 2},
		{name: "spending limit on the total", mod: func(k *store.Key, a *store.Account) { k.SpendingLimit = 20; a.Spent = 11 },
			tools: []string{"search", "translate", "summarize"}, want: SpendingLimitExceeded, wantCheck: "spending_limit"},
		{name: "spending limit reached exactly by the total", mod: func(k *store.Key, a *store.Account) { k.SpendingLimit = 20; a.Spent = 10 },
			tools: []string{"search", "translate", "summarize"}},
		{name: "call quota counts every item", mod: func(k *store.Key, a *store.Account) { k.Quota = &store.Quota{DailyCalls: 5}; a.DailyCalls = 3 },
			tools: []string{"search", "translate", "summarize"}, want: QuotaExceeded, wantCheck: "quota"},
		{name: "credit quota on the total", mod: func(k *store.Key, a *store.Account) { k.Quota = &store.Quota{DailyCredits: 10}; a.DailyCredits = 1 },
			tools: []string{"search", "translate", "summarize"}, want: QuotaExceeded, wantCheck: "quota"},
		{name: "credits on the total: exactly enough", mod: func(_ *store.Key, a *store.Account) { a.Balance = 10 },
			tools: []string{"search", "translate", "summarize"}},
		{name: "credits on the total: one short", mod: func(_ *store.Key, a *store.Account) { a.Balance = 9 },
			tools: []string{"search", "translate", "summarize"}, want: InsufficientCredits, wantCheck: "credits"},
		{name: "missing key fails the batch at 0", mod: nil, tools: []string{"search"}, want: MissingAPIKey, wantCheck: "credential"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, batchSettings, tc.mod)
			for scope, n := range tc.before {
				e.consume(t, scope, n, 10)
			}
			c := batch(tc.tools...)
			if tc.want == MissingAPIKey {
				c.Credential = ""
			}
			d := expect(t, e.chain.Run(bg, c, false), tc.want, tc.wantCheck)
			if d == nil {
				if c.Total == 0 {
					t.Fatal("allowed batch not priced")
				}
				return
			}
			if !d.Batch || d.Index != tc.wantIndex {
				t.Fatalf("Batch=%v Index=%d, want index %d", d.Batch, d.Index, tc.wantIndex)
			}
			we := ErrorFor(d, "/pricing")
			var data map[string]any
			if err := json.Unmarshal(we.Data, &data); err != nil {
				t.Fatal(err)
			}
			if data["failedIndex"] != float64(tc.wantIndex) {
				t.Fatalf("failedIndex = %v", data["failedIndex"])
			}
		})
	}
}

func TestBatchInsufficientDetail(t *testing.T) {
	e := newEnv(t, batchSettings, func(_ *store.Key, a *store.Account) { a.Balance = 9 })
	c := batch("search", "translate", "summarize")
	d := expect(t, e.chain.Run(bg, c, false), InsufficientCredits, "credits")
	if d.Detail != "need 10, have 9" || d.Required != 10 || d.Remaining != 9 {
		t.Fatalf("denial = %+v", d)
	}
	for i, want := range []int64{5, 3, 2} {
		if c.Items[i].Price != want {
			t.Fatalf("item %d price %d", i, c.Items[i].Price)
		}
	}
}

// TestBatchToolRateAllOrNothing checks that a tool whose items do not all
// fit takes none of its slots.
func TestBatchToolRateAllOrNothing(t *testing.T) {
	e := newEnv(t, batchSettings, nil)
	expect(t, e.chain.Run(bg, batch("search", "search", "search"), false), ToolRateLimited, "tool_rate_limit")
	r, _ := e.limiter.Peek(bg, keyID+":search", 2, time.Minute, t0)
	if r.Remaining != 2 {
		t.Fatalf("refused batch took tool slots: %+v", r)
	}
	expect(t, e.chain.Run(bg, batch("search", "search"), false), "", "")
}

func TestBatchRateLimitInfo(t *testing.T) {
	e := newEnv(t, batchSettings, nil)
	c := batch("summarize", "summarize", "summarize")
	expect(t, e.chain.Run(bg, c, false), "", "")
	if c.RateLimit == nil || c.RateLimit.Limit != 5 || c.RateLimit.Remaining != 2 {
		t.Fatalf("RateLimit = %+v", c.RateLimit)
	}
}
