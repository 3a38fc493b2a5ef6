package gate

import (
	"errors"
	"slices"
	"testing"

	"github.com/paygate/paygate/internal/policy"
)

func TestShadowMode(t *testing.T) {
	all := []Reason{APIKeyExpired, KeySuspended, IPNotAllowed, ToolNotAllowed, RateLimited, ToolRateLimited,
		ConcurrencyLimited, SpendingLimitExceeded, QuotaExceeded, InsufficientCredits}
	tests := []struct {
		name       string
		from       int // first broken check (index into documented)
		wantShadow []Reason
	}{
		{"allowed call records nothing", len(breakers), nil},
		{"missing key: later key checks pass", 0, []Reason{MissingAPIKey}},
		{"unknown key: later key checks pass", 1, []Reason{InvalidAPIKey}},
		{"every key check broken: all recorded in order", 2, all},
		{"only credits", 12, []Reason{InsufficientCredits}},
		{"quota and credits", 11, []Reason{QuotaExceeded, InsufficientCredits}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, c := buildScenario(t, tc.from)
			if err := e.chain.Run(bg, c, true); err != nil {
				t.Fatalf("shadow Run = %v, want nil", err)
			}
			if !slices.Equal(c.Shadow, tc.wantShadow) {
				t.Fatalf("Shadow = %v, want %v", c.Shadow, tc.wantShadow)
			}
			if c.Total != 5 || c.Items[0].Price != 5 {
				t.Fatalf("shadow run did not price the call: total %d", c.Total)
			}
			// The same call enforced gets the first recorded reason.
			e2, c2 := buildScenario(t, tc.from)
			d := denial(t, e2.chain.Run(bg, c2, false))
			if len(tc.wantShadow) == 0 {
				if d != nil {
					t.Fatalf("enforced: %v", d)
				}
				return
			}
			if d == nil || d.Reason != tc.wantShadow[0] {
				t.Fatalf("enforced reason %v, shadow[0] %v", d, tc.wantShadow[0])
			}
		})
	}
}

func TestShadowFaultsStillReturned(t *testing.T) {
	e := newEnv(t, policy.Settings{ToolPricing: map[string]policy.ToolPolicy{"huge": {CreditsPerCall: ptr[int64](1 << 53)}}}, nil)
	c := batch("huge", "huge")
	err := e.chain.Run(bg, c, true)
	var d *Denial
	if err == nil || errors.As(err, &d) {
		t.Fatalf("shadow Run = %v, want the fault", err)
	}
}

func TestShadowRateLimitInfo(t *testing.T) {
	e := newEnv(t, policy.Settings{GlobalRateLimitPerMin: ptr[int64](1)}, nil)
	for i := range 3 {
		c := call("search")
		if err := e.chain.Run(bg, c, true); err != nil {
			t.Fatal(err)
		}
		if c.RateLimit == nil || c.RateLimit.Limit != 1 || c.RateLimit.Remaining != 0 {
			t.Fatalf("call %d: RateLimit = %+v", i, c.RateLimit)
		}
		if want := i > 0; want != slices.Contains(c.Shadow, RateLimited) {
			t.Fatalf("call %d: Shadow = %v", i, c.Shadow)
		}
	}
}
