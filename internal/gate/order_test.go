package gate

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// documented is the gate order as the README and paygate-mcp's gate state
// it: each check with the reason it gives.
var documented = []struct {
	check  string
	reason Reason
}{
	{"credential", MissingAPIKey},
	{"auth", InvalidAPIKey},
	{"expiry", APIKeyExpired},
	{"suspended", KeySuspended},
	{"ip_allowlist", IPNotAllowed},
	{"acl", ToolNotAllowed},
	{"rate_limit", RateLimited},
	{"tool_rate_limit", ToolRateLimited},
	{"concurrency", ConcurrencyLimited},
	{"price", ""},
	{"spending_limit", SpendingLimitExceeded},
	{"quota", QuotaExceeded},
	{"credits", InsufficientCredits},
}

func TestOrderMatchesDocumentation(t *testing.T) {
	e := newEnv(t, policy.Settings{}, nil)
	var want []string
	for _, d := range documented {
		want = append(want, d.check)
	}
	if got := e.chain.Names(); !slices.Equal(got, want) {
		t.Fatalf("chain order\n got %v\nwant %v", got, want)
	}
	var auth []string
	for _, c := range e.chain.auth {
		auth = append(auth, c.Name())
	}
	if !slices.Equal(auth, want[:5]) {
		t.Fatalf("Authenticate runs %v", auth)
	}
}

// breakers each make one check fail, keeping the others' inputs intact as
// far as possible. Indexed like documented; price cannot fail (nil).
var breakers = []func(e *scenario){
	func(s *scenario) { s.call.Credential = "" },
	func(s *scenario) { s.call.Credential = otherSeed },
	func(s *scenario) { s.key.ExpiresAt = t0 },
	func(s *scenario) { s.key.Suspended = true },
	func(s *scenario) { s.key.IPAllowlist = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} },
	func(s *scenario) { s.key.DeniedTools = []string{"search"} },
	func(s *scenario) { s.key.RateLimitPerMin = ptr[int64](1); s.usedKeyRate = true },
	func(s *scenario) { s.toolRate = true },
	func(s *scenario) { s.busy = true },
	nil,
	func(s *scenario) { s.key.SpendingLimit = 10; s.acct.Spent = 10 },
	func(s *scenario) { s.key.Quota = &store.Quota{DailyCalls: 1}; s.acct.DailyCalls = 1 },
	func(s *scenario) { s.acct.Balance = 0 },
}

type scenario struct {
	call        *Call
	key         *store.Key
	acct        store.Account
	usedKeyRate bool
	toolRate    bool
	busy        bool // the key already has its one allowed call in flight
}

// build applies the breakers from index from on and returns a ready env
// and call.
func buildScenario(t *testing.T, from int) (*env, *Call) {
	t.Helper()
	s := &scenario{call: call("search")}
	var e *env
	settings := policy.Settings{ToolPricing: map[string]policy.ToolPolicy{"search": {CreditsPerCall: ptr[int64](5)}}}
	var prepared *store.Key
	s.key, s.acct = goodKey(), goodAccount()
	// Latest first, so an earlier breaker wins where two touch the same
	// input (no credential vs an unknown one).
	for i := len(breakers) - 1; i >= from; i-- {
		if b := breakers[i]; b != nil {
			b(s)
		}
	}
	if s.toolRate {
		settings.ToolPricing["search"] = policy.ToolPolicy{CreditsPerCall: ptr[int64](5), RateLimitPerMin: 1}
	}
	prepared = s.key
	e = newEnv(t, settings, func(k *store.Key, a *store.Account) { *k, *a = *prepared, s.acct })
	if s.usedKeyRate {
		e.consume(t, keyID, 1, 1)
	}
	if s.toolRate {
		e.consume(t, keyID+":search", 1, 1)
	}
	if s.busy {
		if err := e.conc.SetLimits(ConcurrencyLimits{PerKey: 1}); err != nil {
			t.Fatal(err)
		}
		held := call("other")
		held.Key = goodKey()
		if err := e.conc.acquire(held); err != nil {
			t.Fatal(err)
		}
	}
	return e, s.call
}

// TestEarliestReasonWins makes a call fail every check from index i on and
// expects the reason of check i: the order decides between reasons.
func TestEarliestReasonWins(t *testing.T) {
	for i, d := range documented {
		if breakers[i] == nil {
			continue
		}
		t.Run(d.check, func(t *testing.T) {
			e, c := buildScenario(t, i)
			got := expect(t, e.chain.Run(bg, c, false), d.reason, d.check)
			if got.Batch {
				t.Fatal("single call marked as batch")
			}
		})
	}
	t.Run("nothing broken", func(t *testing.T) {
		e, c := buildScenario(t, len(breakers))
		expect(t, e.chain.Run(bg, c, false), "", "")
	})
}

// TestLaterChecksNotRun checks that a denial stops the chain: a refused
// call takes no rate-limit slot from checks after the one that refused it.
func TestLaterChecksNotRun(t *testing.T) {
	e := newEnv(t, policy.Settings{GlobalRateLimitPerMin: ptr[int64](5)}, func(k *store.Key, _ *store.Account) {
		k.DeniedTools = []string{"admin"}
	})
	for range 10 {
		expect(t, e.chain.Run(bg, call("admin"), false), ToolNotAllowed, "acl")
	}
	r, _ := e.limiter.Peek(bg, keyID, 5, 60e9, t0)
	if r.Remaining != 5 {
		t.Fatalf("ACL denials took rate-limit slots: %+v", r)
	}
}
