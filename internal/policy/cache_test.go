package policy

import (
	"errors"
	"testing"
	"time"
)

func dur(d time.Duration) *time.Duration { return &d }

func TestCachePolicy(t *testing.T) {
	tests := []struct {
		name    string
		s       Settings
		caching bool
		ttl     map[string]time.Duration // tool → CacheTTL
	}{
		{"off by default", Settings{}, false, map[string]time.Duration{"a": 0}},
		{"global TTL", Settings{Cache: CacheSettings{TTL: time.Minute}}, true, map[string]time.Duration{"a": time.Minute}},
		{"one tool", Settings{ToolPricing: map[string]ToolPolicy{"a": {CacheTTL: dur(time.Second)}}}, true,
			map[string]time.Duration{"a": time.Second, "b": 0}},
		{"a tool opts out", Settings{Cache: CacheSettings{TTL: time.Minute}, ToolPricing: map[string]ToolPolicy{"a": {CacheTTL: dur(0)}, "b": {RateLimitPerMin: 1}}},
			true, map[string]time.Duration{"a": 0, "b": time.Minute, "c": time.Minute}},
		{"only opt-outs", Settings{ToolPricing: map[string]ToolPolicy{"a": {CacheTTL: dur(0)}}}, false, map[string]time.Duration{"a": 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := MustNew(tc.s)
			if p.Caching() != tc.caching {
				t.Fatalf("Caching() = %v", p.Caching())
			}
			for tool, want := range tc.ttl {
				if got := p.CacheTTL(tool); got != want {
					t.Errorf("CacheTTL(%s) = %v, want %v", tool, got, want)
				}
			}
			if p.CacheScope() != CacheScopeKey || p.ChargeCacheHits() {
				t.Errorf("defaults: scope %q, charge %v", p.CacheScope(), p.ChargeCacheHits())
			}
		})
	}
	p := MustNew(Settings{Cache: CacheSettings{Scope: CacheScopeNamespace, ChargeHits: true}})
	if p.CacheScope() != CacheScopeNamespace || !p.ChargeCacheHits() {
		t.Fatal("scope and charge not kept")
	}
	for _, bad := range []Settings{
		{Cache: CacheSettings{Scope: "everyone"}},
		{Cache: CacheSettings{TTL: -time.Second}},
		{ToolPricing: map[string]ToolPolicy{"a": {CacheTTL: dur(-1)}}},
	} {
		var fe *FieldError
		if _, err := New(bad); !errors.As(err, &fe) {
			t.Errorf("New(%+v) = %v, want a field error", bad, err)
		}
	}
}
