package gate

import (
	"testing"
	"time"

	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// passEnv is a realistic passing setup: global rate limit, a global quota,
// a spending limit, an IP allowlist and an ACL, so every check does work.
func passEnv(tb testing.TB, toolLimit int64) *env {
	allow, _ := ParseIPAllowlist([]string{"192.168.0.0/16", "10.0.0.0/8"})
	return newEnv(tb, policy.Settings{
		GlobalQuota: store.Quota{DailyCalls: 1 << 40, MonthlyCredits: 1 << 50},
		ToolPricing: map[string]policy.ToolPolicy{"search": {CreditsPerCall: ptr[int64](2), CreditsPerKbInput: 1, RateLimitPerMin: toolLimit}},
	}, func(k *store.Key, a *store.Account) {
		k.IPAllowlist = allow
		k.AllowedTools = []string{"fs:*", "search"}
		k.DeniedTools = []string{"admin"}
		k.SpendingLimit = 1 << 50
		a.Balance = 1 << 50
	})
}

// runPass runs the chain over and over on one reused Call, each time as
// the pipeline would hand it over: not yet authenticated, the clock one
// second later (so the 60/min limits never bite).
func runPass(tb testing.TB, e *env, c *Call, i int) {
	c.Key, c.Account, c.RateLimit, c.Total = nil, store.Account{}, nil, 0
	c.Now = t0.Add(time.Duration(i) * time.Second)
	if err := e.chain.Run(bg, c, false); err != nil {
		tb.Fatal(err)
	}
}

func BenchmarkChainPass(b *testing.B) {
	for _, bc := range []struct {
		name      string
		toolLimit int64
	}{{"single", 0}, {"single_tool_limit", 60}} {
		b.Run(bc.name, func(b *testing.B) {
			e := passEnv(b, bc.toolLimit)
			c := call("search")
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				runPass(b, e, c, i)
				i++
			}
		})
	}
	b.Run("batch_10", func(b *testing.B) {
		e := passEnv(b, 0)
		c := batch("search", "fs:read", "search", "fs:write", "search", "fs:a", "fs:b", "search", "fs:c", "search")
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.Key, c.Account, c.RateLimit, c.Total = nil, store.Account{}, nil, 0
			c.Now = t0.Add(time.Duration(i) * 10 * time.Second)
			if err := e.chain.Run(bg, c, false); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// TestChainPassAllocatesNothing pins the pass path of a single call at zero
// allocations (with no per-tool rate limit; one of those costs the
// "<key>:<tool>" scope string).
func TestChainPassAllocatesNothing(t *testing.T) {
	e := passEnv(t, 0)
	c := call("search")
	i := 0
	runPass(t, e, c, i) // first call creates the key's rate-limit window
	allocs := testing.AllocsPerRun(200, func() {
		i++
		runPass(t, e, c, i)
	})
	if allocs != 0 {
		t.Fatalf("pass path allocates %.1f times per call", allocs)
	}
}
