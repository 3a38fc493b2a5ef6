package gate

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// Each test below covers one check through the whole chain: the call
// passes every other check, so the reason and the denying check name prove
// which check answered.

func TestCredentialCheck(t *testing.T) {
	tests := []struct {
		name string
		cred string
		want Reason
	}{
		{"no credential", "", MissingAPIKey},
		{"credential present", secret, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, policy.Settings{}, nil)
			c := call("search")
			c.Credential = tc.cred
			expect(t, e.chain.Run(bg, c, false), tc.want, "credential")
		})
	}
}

func TestAuthCheck(t *testing.T) {
	boom := errors.New("disk on fire")
	tests := []struct {
		name      string
		cred      string
		mod       func(k *store.Key, a *store.Account)
		lookupErr error
		acctErr   error
		want      Reason
		fault     bool
	}{
		{name: "known key", cred: secret},
		{name: "unknown key", cred: otherSeed, want: InvalidAPIKey},
		{name: "garbage credential", cred: "Bearer nonsense", want: InvalidAPIKey},
		{name: "revoked key", cred: secret, mod: func(k *store.Key, _ *store.Account) { k.Revoked = true }, want: InvalidAPIKey},
		{name: "store unavailable on lookup", cred: secret, lookupErr: store.ErrUnavailable, want: StoreUnavailable},
		{name: "store unavailable on account", cred: secret, acctErr: store.ErrUnavailable, want: StoreUnavailable},
		{name: "other lookup error is a fault", cred: secret, lookupErr: boom, fault: true},
		{name: "missing account is a fault", cred: secret, acctErr: store.ErrNotFound, fault: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, policy.Settings{}, tc.mod)
			e.keys.lookupErr, e.keys.accountErr = tc.lookupErr, tc.acctErr
			c := call("search")
			c.Credential = tc.cred
			err := e.chain.Run(bg, c, false)
			if tc.fault {
				var d *Denial
				if err == nil || errors.As(err, &d) {
					t.Fatalf("Run = %v, want a fault", err)
				}
				if !strings.HasPrefix(err.Error(), "gate auth: ") {
					t.Fatalf("fault %q does not name the check", err)
				}
				return
			}
			expect(t, err, tc.want, "auth")
			if tc.want == "" && (c.Key == nil || c.Key.ID != keyID || c.Account.Balance != 100) {
				t.Fatalf("key/account not set: %+v %+v", c.Key, c.Account)
			}
			if tc.want == InvalidAPIKey && c.Key != nil {
				t.Fatal("refused key left on the call")
			}
		})
	}
}

func TestAuthenticateThenRunLooksUpOnce(t *testing.T) {
	e := newEnv(t, policy.Settings{}, nil)
	c := call("search")
	if err := e.chain.Authenticate(bg, c); err != nil {
		t.Fatal(err)
	}
	if err := e.chain.Run(bg, c, false); err != nil {
		t.Fatal(err)
	}
	if e.keys.lookups != 1 {
		t.Fatalf("%d lookups, want 1", e.keys.lookups)
	}
}

func TestAuthenticateStopsBeforeToolChecks(t *testing.T) {
	tests := []struct {
		name string
		mod  func(k *store.Key, a *store.Account)
		want Reason
	}{
		{"valid key", nil, ""},
		{"no credits still authenticates", func(_ *store.Key, a *store.Account) { a.Balance = 0 }, ""},
		{"ACL is not consulted", func(k *store.Key, _ *store.Account) { k.DeniedTools = []string{"*"} }, ""},
		{"suspended", func(k *store.Key, _ *store.Account) { k.Suspended = true }, KeySuspended},
		{"ip", func(k *store.Key, _ *store.Account) {
			k.IPAllowlist = []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}
		}, IPNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, policy.Settings{GlobalRateLimitPerMin: ptr[int64](1)}, tc.mod)
			for range 3 { // never rate limited: Authenticate takes no slot
				c := call("search")
				c.Method = "resources/read"
				c.Items = nil
				d := denial(t, e.chain.Authenticate(bg, c))
				if (d == nil) != (tc.want == "") || (d != nil && d.Reason != tc.want) {
					t.Fatalf("Authenticate = %v, want %q", d, tc.want)
				}
			}
		})
	}
}

func TestExpiryCheck(t *testing.T) {
	tests := []struct {
		name    string
		expires time.Time
		want    Reason
	}{
		{"never expires", time.Time{}, ""},
		{"expires a nanosecond later", t0.Add(time.Nanosecond), ""},
		{"expires at this instant", t0, APIKeyExpired},
		{"expired a nanosecond ago", t0.Add(-time.Nanosecond), APIKeyExpired},
		{"expired long ago", t0.AddDate(-1, 0, 0), APIKeyExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, policy.Settings{}, func(k *store.Key, _ *store.Account) { k.ExpiresAt = tc.expires })
			c := call("search")
			d := expect(t, e.chain.Run(bg, c, false), tc.want, "expiry")
			if d != nil && !strings.Contains(d.Detail, tc.expires.UTC().Format(time.RFC3339)) {
				t.Fatalf("detail %q lacks the expiry", d.Detail)
			}
		})
	}
}

func TestSuspendedCheck(t *testing.T) {
	for _, susp := range []bool{false, true} {
		t.Run(map[bool]string{false: "active", true: "suspended"}[susp], func(t *testing.T) {
			e := newEnv(t, policy.Settings{}, func(k *store.Key, _ *store.Account) { k.Suspended = susp })
			want := Reason("")
			if susp {
				want = KeySuspended
			}
			d := expect(t, e.chain.Run(bg, call("search"), false), want, "suspended")
			if d != nil && d.Remaining != 100 {
				t.Fatalf("Remaining = %d, want the balance", d.Remaining)
			}
		})
	}
}

func TestIPAllowCheck(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		out, err := ParseIPAllowlist(ss)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name   string
		allow  []netip.Prefix
		client string // "" = unknown
		want   Reason
	}{
		{"empty allowlist allows all", nil, "203.0.113.9", ""},
		{"empty allowlist allows unknown client", nil, "", ""},
		{"IPv4 in CIDR", pfx("10.0.0.0/8"), "10.200.3.4", ""},
		{"IPv4 outside CIDR", pfx("10.0.0.0/8"), "11.0.0.1", IPNotAllowed},
		{"single IPv4 matches", pfx("10.0.0.7"), "10.0.0.7", ""},
		{"single IPv4 neighbour", pfx("10.0.0.7"), "10.0.0.8", IPNotAllowed},
		{"CIDR lower edge", pfx("192.168.1.0/24"), "192.168.1.0", ""},
		{"CIDR upper edge", pfx("192.168.1.0/24"), "192.168.1.255", ""},
		{"CIDR just past upper edge", pfx("192.168.1.0/24"), "192.168.2.0", IPNotAllowed},
		{"IPv6 in CIDR", pfx("2001:db8::/32"), "2001:db8:1::5", ""},
		{"IPv6 outside CIDR", pfx("2001:db8::/32"), "2001:db9::1", IPNotAllowed},
		{"single IPv6", pfx("2001:db8::1"), "2001:db8::1", ""},
		{"IPv6 with zone", pfx("fe80::/10"), "fe80::1%eth0", ""},
		{"IPv4-mapped client matches IPv4 prefix", pfx("10.0.0.0/8"), "::ffff:10.1.2.3", ""},
		{"IPv4-mapped client outside IPv4 prefix", pfx("10.0.0.0/8"), "::ffff:11.1.2.3", IPNotAllowed},
		{"IPv4-mapped entry matches IPv4 client", pfx("::ffff:10.0.0.0/104"), "10.9.9.9", ""},
		{"IPv4 client vs IPv6-only list", pfx("::/0"), "10.0.0.7", IPNotAllowed},
		{"IPv6 client vs IPv4-only list", pfx("0.0.0.0/0"), "2001:db8::1", IPNotAllowed},
		{"any of several", pfx("192.168.0.0/16", "2001:db8::/32", "10.0.0.7"), "10.0.0.7", ""},
		{"unknown client with allowlist", pfx("10.0.0.0/8"), "", IPNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, policy.Settings{}, func(k *store.Key, _ *store.Account) { k.IPAllowlist = tc.allow })
			c := call("search")
			c.ClientIP = netip.Addr{}
			if tc.client != "" {
				c.ClientIP = netip.MustParseAddr(tc.client)
			}
			d := expect(t, e.chain.Run(bg, c, false), tc.want, "ip_allowlist")
			if d != nil && tc.client != "" && !strings.Contains(d.Detail, "not in allowlist") {
				t.Fatalf("detail = %q", d.Detail)
			}
		})
	}
}

func TestACLCheck(t *testing.T) {
	tests := []struct {
		name            string
		allowed, denied []string
		tool            string
		want            Reason
		wantDetail      string
	}{
		{"no lists allow all", nil, nil, "anything", "", ""},
		{"whitelisted", []string{"search", "read_file"}, nil, "read_file", "", ""},
		{"not whitelisted", []string{"search"}, nil, "delete_file", ToolNotAllowed, "allowedTools"},
		{"blacklisted", nil, []string{"delete_file"}, "delete_file", ToolNotAllowed, "deniedTools"},
		{"not blacklisted", nil, []string{"delete_file"}, "read_file", "", ""},
		{"denied overrides allowed", []string{"search", "admin"}, []string{"admin"}, "admin", ToolNotAllowed, "deniedTools"},
		{"glob allows prefixed tool", []string{"fs:*"}, nil, "fs:read", "", ""},
		{"glob matches bare prefix", []string{"fs:*"}, nil, "fs:", "", ""},
		{"glob does not match other prefix", []string{"fs:*"}, nil, "fsx:read", ToolNotAllowed, "allowedTools"},
		{"glob is not a substring match", []string{"fs:*"}, nil, "github:fs:read", ToolNotAllowed, "allowedTools"},
		{"star allows all", []string{"*"}, nil, "whatever", "", ""},
		{"denied glob overrides allowed glob", []string{"fs:*"}, []string{"fs:delete*"}, "fs:delete_all", ToolNotAllowed, "deniedTools"},
		{"denied glob leaves others", []string{"fs:*"}, []string{"fs:delete*"}, "fs:read", "", ""},
		{"deny all", nil, []string{"*"}, "search", ToolNotAllowed, "deniedTools"},
		{"exact name is case-sensitive", []string{"Search"}, nil, "search", ToolNotAllowed, "allowedTools"},
		{"star in the middle is literal", []string{"fs*read"}, nil, "fs:read", ToolNotAllowed, "allowedTools"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, policy.Settings{}, func(k *store.Key, _ *store.Account) {
				k.AllowedTools, k.DeniedTools = tc.allowed, tc.denied
			})
			d := expect(t, e.chain.Run(bg, call(tc.tool), false), tc.want, "acl")
			if d != nil && !strings.Contains(d.Detail, tc.wantDetail) {
				t.Fatalf("detail %q lacks %q", d.Detail, tc.wantDetail)
			}
			if got := ToolAllowed(e.key, tc.tool); got != (tc.want == "") {
				t.Fatalf("ToolAllowed = %v", got)
			}
		})
	}
}

func TestValidToolPattern(t *testing.T) {
	tests := []struct {
		p  string
		ok bool
	}{{"search", true}, {"fs:*", true}, {"*", true}, {"", false}, {"  ", false}, {"f*s", false}, {"**", false}, {"*fs", false}}
	for _, tc := range tests {
		t.Run(tc.p, func(t *testing.T) {
			if err := ValidToolPattern(tc.p); (err == nil) != tc.ok {
				t.Fatalf("ValidToolPattern(%q) = %v", tc.p, err)
			}
		})
	}
}

func TestKeyRateCheck(t *testing.T) {
	tests := []struct {
		name          string
		global        *int64
		override      *int64
		calls         int
		want          Reason // of the last call
		wantRemaining int64  // after the last call; -1: no RateLimit info
	}{
		{"first call of 60 leaves 59", nil, nil, 1, "", 59},
		{"exactly at the limit", ptr[int64](3), nil, 3, "", 0},
		{"one over the limit", ptr[int64](3), nil, 4, RateLimited, 0},
		{"key override raises", ptr[int64](3), ptr[int64](10), 4, "", 6},
		{"key override lowers", ptr[int64](100), ptr[int64](2), 3, RateLimited, 0},
		{"global 0 is unlimited", ptr[int64](0), nil, 500, "", -1},
		{"key override 0 is unlimited", ptr[int64](1), ptr[int64](0), 50, "", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, policy.Settings{GlobalRateLimitPerMin: tc.global}, func(k *store.Key, a *store.Account) {
				k.RateLimitPerMin = tc.override
				a.Balance = 1000
			})
			var err error
			var c *Call
			for i := range tc.calls {
				c = call("search")
				c.Now = t0.Add(time.Duration(i) * time.Millisecond)
				if err = e.chain.Run(bg, c, false); i < tc.calls-1 && err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			d := expect(t, err, tc.want, "rate_limit")
			if tc.wantRemaining < 0 {
				if c.RateLimit != nil {
					t.Fatalf("RateLimit = %+v, want nil when unlimited", c.RateLimit)
				}
				return
			}
			if c.RateLimit == nil || c.RateLimit.Remaining != tc.wantRemaining {
				t.Fatalf("RateLimit = %+v, want remaining %d", c.RateLimit, tc.wantRemaining)
			}
			if !c.RateLimit.Reset.Equal(t0.Add(time.Minute)) {
				t.Fatalf("Reset = %v, want first call + 1m", c.RateLimit.Reset)
			}
			if d != nil && d.RetryAfter != time.Minute-time.Duration(tc.calls-1)*time.Millisecond {
				t.Fatalf("RetryAfter = %v", d.RetryAfter)
			}
		})
	}
}

func TestKeyRateFreesAfterWindow(t *testing.T) {
	e := newEnv(t, policy.Settings{GlobalRateLimitPerMin: ptr[int64](1)}, nil)
	expect(t, e.chain.Run(bg, call("search"), false), "", "")
	c := call("search")
	c.Now = t0.Add(time.Minute - 1)
	expect(t, e.chain.Run(bg, c, false), RateLimited, "rate_limit")
	c = call("search")
	c.Now = t0.Add(time.Minute)
	expect(t, e.chain.Run(bg, c, false), "", "")
}

func TestRateLimiterUnavailable(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		fault bool
	}{
		{"unavailable is a retryable denial", store.ErrUnavailable, false},
		{"other errors are faults", errors.New("bad script"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, policy.Settings{}, nil)
			p := policy.MustNew(policy.Settings{})
			ch, err := New(Options{Policy: p, Keys: e.keys, Limiter: failingLimiter{tc.err}})
			if err != nil {
				t.Fatal(err)
			}
			err = ch.Run(bg, call("search"), false)
			if tc.fault {
				var d *Denial
				if err == nil || errors.As(err, &d) {
					t.Fatalf("Run = %v, want a fault", err)
				}
				return
			}
			d := expect(t, err, StoreUnavailable, "rate_limit")
			if d.RetryAfter <= 0 {
				t.Fatal("no RetryAfter")
			}
		})
	}
}

func TestToolRateCheck(t *testing.T) {
	settings := policy.Settings{ToolPricing: map[string]policy.ToolPolicy{"search": {RateLimitPerMin: 2}}}
	tests := []struct {
		name   string
		before map[string]int64 // scope → calls already made
		tool   string
		want   Reason
	}{
		{"under the limit", map[string]int64{keyID + ":search": 1}, "search", ""},
		{"at the limit", map[string]int64{keyID + ":search": 2}, "search", ToolRateLimited},
		{"other tool unaffected", map[string]int64{keyID + ":search": 2}, "read", ""},
		{"other key's calls do not count", map[string]int64{"key_other:search": 2}, "search", ""},
		{"scope is key:tool, not the tool alone", map[string]int64{"search": 2}, "search", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, settings, nil)
			for scope, n := range tc.before {
				e.consume(t, scope, n, 2)
			}
			d := expect(t, e.chain.Run(bg, call(tc.tool), false), tc.want, "tool_rate_limit")
			if d != nil {
				if d.RetryAfter != time.Minute || !strings.Contains(d.Detail, "search limited to 2 calls/min") {
					t.Fatalf("denial = %+v", d)
				}
				if d.Batch || d.Index != 0 {
					t.Fatalf("single call denial has batch fields: %+v", d)
				}
			}
		})
	}
}

func TestPriceStep(t *testing.T) {
	settings := policy.Settings{
		DefaultPrice: ptr[int64](2),
		ToolPricing: map[string]policy.ToolPolicy{
			"search":  {CreditsPerCall: ptr[int64](5)},
			"analyze": {CreditsPerCall: ptr[int64](2), CreditsPerKbInput: 5},
			"huge":    {CreditsPerCall: ptr(credits.Max)},
		},
	}
	tests := []struct {
		name      string
		items     []Item
		wantPrice []credits.Credits
		wantTotal credits.Credits
		fault     bool
	}{
		{"flat", []Item{{Tool: "search"}}, []credits.Credits{5}, 5, false},
		{"default", []Item{{Tool: "other", ArgBytes: 99999}}, []credits.Credits{2}, 2, false},
		{"per KB, 3 KB", []Item{{Tool: "analyze", ArgBytes: 3 * 1024}}, []credits.Credits{17}, 17, false},
		{"per KB, empty counts 1 KB", []Item{{Tool: "analyze"}}, []credits.Credits{7}, 7, false},
		{"batch total", []Item{{Tool: "search"}, {Tool: "other"}, {Tool: "analyze", ArgBytes: 1025}}, []credits.Credits{5, 2, 12}, 19, false},
		{"overflowing total is a fault", []Item{{Tool: "huge"}, {Tool: "huge"}}, nil, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, settings, func(_ *store.Key, a *store.Account) { a.Balance = credits.Max })
			c := batch()
			c.Items = tc.items
			err := e.chain.Run(bg, c, false)
			if tc.fault {
				var d *Denial
				if err == nil || errors.As(err, &d) || !errors.Is(err, credits.ErrTooLarge) {
					t.Fatalf("Run = %v, want an overflow fault", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.wantPrice {
				if c.Items[i].Price != want {
					t.Errorf("item %d price = %d, want %d", i, c.Items[i].Price, want)
				}
			}
			if c.Total != tc.wantTotal {
				t.Errorf("Total = %d, want %d", c.Total, tc.wantTotal)
			}
		})
	}
}

func TestSpendingCheck(t *testing.T) {
	settings := policy.Settings{ToolPricing: map[string]policy.ToolPolicy{"search": {CreditsPerCall: ptr[int64](5)}}}
	tests := []struct {
		name         string
		limit, spent credits.Credits
		want         Reason
	}{
		{"no limit", 0, 1_000_000, ""},
		{"well under", 100, 10, ""},
		{"reaches the limit exactly", 100, 95, ""},
		{"one over", 100, 96, SpendingLimitExceeded},
		{"already past", 100, 150, SpendingLimitExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, settings, func(k *store.Key, a *store.Account) { k.SpendingLimit, a.Spent = tc.limit, tc.spent })
			d := expect(t, e.chain.Run(bg, call("search"), false), tc.want, "spending_limit")
			if d != nil && (d.Required != 5 || d.Remaining != 100 || !strings.Contains(d.Detail, "limit 100")) {
				t.Fatalf("denial = %+v", d)
			}
		})
	}
}

func TestQuotaCheck(t *testing.T) {
	today, month := store.DayOf(t0), store.MonthOf(t0)
	yesterday := store.DayOf(t0.AddDate(0, 0, -1))
	lastMonth := store.MonthOf(t0.AddDate(0, -1, 0))
	untilMidnight := 12 * time.Hour // t0 is noon
	untilMonthEnd := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Sub(t0)
	settings := func(global store.Quota) policy.Settings {
		return policy.Settings{GlobalQuota: global, ToolPricing: map[string]policy.ToolPolicy{"search": {CreditsPerCall: ptr[int64](5)}}}
	}
	tests := []struct {
		name      string
		global    store.Quota
		own       *store.Quota
		acct      store.Account
		want      Reason
		wantRetry time.Duration
		detail    string
	}{
		{name: "no quota", acct: store.Account{DailyCalls: 1e6}},
		{name: "daily calls under", global: store.Quota{DailyCalls: 10}, acct: store.Account{Day: today, DailyCalls: 8}},
		{name: "daily calls reach exactly", global: store.Quota{DailyCalls: 10}, acct: store.Account{Day: today, DailyCalls: 9}},
		{name: "daily calls at limit", global: store.Quota{DailyCalls: 10}, acct: store.Account{Day: today, DailyCalls: 10},
			want: QuotaExceeded, wantRetry: untilMidnight, detail: "daily call limit 10 reached (used 10, need 1)"},
		{name: "yesterday's calls do not count", global: store.Quota{DailyCalls: 10}, acct: store.Account{Day: yesterday, DailyCalls: 10}},
		{name: "monthly calls at limit", global: store.Quota{MonthlyCalls: 100}, acct: store.Account{Month: month, MonthlyCalls: 100},
			want: QuotaExceeded, wantRetry: untilMonthEnd, detail: "monthly call limit 100"},
		{name: "last month's calls do not count", global: store.Quota{MonthlyCalls: 100}, acct: store.Account{Month: lastMonth, MonthlyCalls: 100}},
		{name: "daily credits reach exactly", global: store.Quota{DailyCredits: 50}, acct: store.Account{Day: today, DailyCredits: 45}},
		{name: "daily credits one over", global: store.Quota{DailyCredits: 50}, acct: store.Account{Day: today, DailyCredits: 46},
			want: QuotaExceeded, wantRetry: untilMidnight, detail: "daily credit limit 50 reached (used 46, need 5)"},
		{name: "monthly credits one over", global: store.Quota{MonthlyCredits: 500}, acct: store.Account{Month: month, MonthlyCredits: 496},
			want: QuotaExceeded, wantRetry: untilMonthEnd, detail: "monthly credit limit 500"},
		{name: "per-key quota overrides global", global: store.Quota{DailyCalls: 1000}, own: &store.Quota{DailyCalls: 3},
			acct: store.Account{Day: today, DailyCalls: 3}, want: QuotaExceeded, wantRetry: untilMidnight},
		{name: "per-key zero quota lifts global", global: store.Quota{DailyCalls: 1}, own: &store.Quota{},
			acct: store.Account{Day: today, DailyCalls: 3}},
		{name: "calls checked before credits", global: store.Quota{DailyCalls: 1, DailyCredits: 1},
			acct: store.Account{Day: today, DailyCalls: 1, DailyCredits: 1}, want: QuotaExceeded, wantRetry: untilMidnight, detail: "daily call"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, settings(tc.global), func(k *store.Key, a *store.Account) {
				k.Quota = tc.own
				tc.acct.Balance = 100
				*a = tc.acct
			})
			d := expect(t, e.chain.Run(bg, call("search"), false), tc.want, "quota")
			if d == nil {
				return
			}
			if d.RetryAfter != tc.wantRetry {
				t.Errorf("RetryAfter = %v, want %v", d.RetryAfter, tc.wantRetry)
			}
			if !strings.Contains(d.Detail, tc.detail) {
				t.Errorf("detail %q lacks %q", d.Detail, tc.detail)
			}
		})
	}
}

func TestQuotaPeriodBoundaries(t *testing.T) {
	tests := []struct {
		name      string
		now       time.Time
		wantRetry time.Duration
		monthly   bool
	}{
		{"a second before midnight", time.Date(2026, 3, 15, 23, 59, 59, 0, time.UTC), time.Second, false},
		{"non-UTC clock", time.Date(2026, 3, 15, 20, 0, 0, 0, time.FixedZone("X", -5*3600)), 24*time.Hour - time.Hour, false}, // 01:00 UTC on the 16th
		{"end of February", time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC), 12 * time.Hour, true},
		{"end of December", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), time.Hour, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := store.Quota{DailyCalls: 1}
			acct := store.Account{Balance: 10, Day: store.DayOf(tc.now), DailyCalls: 1}
			if tc.monthly {
				q = store.Quota{MonthlyCalls: 1}
				acct = store.Account{Balance: 10, Month: store.MonthOf(tc.now), MonthlyCalls: 1}
			}
			e := newEnv(t, policy.Settings{GlobalQuota: q}, func(_ *store.Key, a *store.Account) { *a = acct })
			c := call("search")
			c.Now = tc.now
			d := expect(t, e.chain.Run(bg, c, false), QuotaExceeded, "quota")
			if d.RetryAfter != tc.wantRetry {
				t.Fatalf("RetryAfter = %v, want %v", d.RetryAfter, tc.wantRetry)
			}
		})
	}
}

func TestCreditsCheck(t *testing.T) {
	settings := policy.Settings{ToolPricing: map[string]policy.ToolPolicy{
		"search": {CreditsPerCall: ptr[int64](5)},
		"free":   {CreditsPerCall: ptr[int64](0)},
	}}
	tests := []struct {
		name    string
		balance credits.Credits
		tool    string
		want    Reason
		detail  string
	}{
		{"plenty", 100, "search", "", ""},
		{"exactly enough", 5, "search", "", ""},
		{"one short", 4, "search", InsufficientCredits, "need 5, have 4"},
		{"empty", 0, "search", InsufficientCredits, "need 5, have 0"},
		{"free tool with no credits", 0, "free", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, settings, func(_ *store.Key, a *store.Account) { a.Balance = tc.balance })
			d := expect(t, e.chain.Run(bg, call(tc.tool), false), tc.want, "credits")
			if d == nil {
				return
			}
			if d.Detail != tc.detail || d.Required != 5 || d.Remaining != tc.balance {
				t.Fatalf("denial = %+v", d)
			}
			if d.Error() != "insufficient_credits: "+tc.detail {
				t.Fatalf("Error() = %q", d.Error())
			}
		})
	}
}

func TestNewRequiresEverything(t *testing.T) {
	p := policy.MustNew(policy.Settings{})
	k := newMemKeys()
	tests := []struct {
		name string
		o    Options
	}{
		{"no policy", Options{Keys: k, Limiter: failingLimiter{}}},
		{"no keys", Options{Policy: p, Limiter: failingLimiter{}}},
		{"no limiter", Options{Policy: p, Keys: k}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if ch, err := New(tc.o); err == nil || ch != nil {
				t.Fatalf("New = %v, %v", ch, err)
			}
		})
	}
}
