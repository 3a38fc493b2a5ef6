package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

func ptr[T any](v T) *T { return &v }

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		s       Settings
		wantErr []string // substrings, each must appear; empty: valid
		wantIs  error
	}{
		{name: "zero settings", s: Settings{}},
		{name: "negative price", s: Settings{ToolPricing: map[string]ToolPolicy{"search": {CreditsPerCall: ptr[int64](-1)}}},
			wantErr: []string{"toolPricing.search.creditsPerCall: must not be negative"}, wantIs: credits.ErrNegative},
		{name: "price too large", s: Settings{ToolPricing: map[string]ToolPolicy{"x": {CreditsPerCall: ptr(credits.Max + 1)}}},
			wantErr: []string{"toolPricing.x.creditsPerCall: must be at most"}, wantIs: credits.ErrTooLarge},
		{name: "negative per-KB", s: Settings{ToolPricing: map[string]ToolPolicy{"a": {CreditsPerKbInput: -2}}},
			wantErr: []string{"toolPricing.a.creditsPerKbInput: must not be negative"}},
		{name: "negative tool rate", s: Settings{ToolPricing: map[string]ToolPolicy{"a": {RateLimitPerMin: -1}}},
			wantErr: []string{"toolPricing.a.rateLimitPerMin: must not be negative"}, wantIs: ErrNegative},
		{name: "negative timeout", s: Settings{ToolPricing: map[string]ToolPolicy{"a": {TimeoutMs: -1}}},
			wantErr: []string{"toolPricing.a.timeoutMs: must not be negative"}},
		{name: "empty tool name", s: Settings{ToolPricing: map[string]ToolPolicy{" ": {}}},
			wantErr: []string{"toolPricing: tool name must not be empty"}, wantIs: ErrEmptyName},
		{name: "negative default price", s: Settings{DefaultPrice: ptr[int64](-5)},
			wantErr: []string{"defaultCreditsPerCall: must not be negative"}},
		{name: "negative global rate", s: Settings{GlobalRateLimitPerMin: ptr[int64](-1)},
			wantErr: []string{"globalRateLimitPerMin: must not be negative"}},
		{name: "negative quotas", s: Settings{GlobalQuota: store.Quota{DailyCalls: -1, MonthlyCalls: -1, DailyCredits: -1, MonthlyCredits: -1}},
			wantErr: []string{"globalQuota.dailyCallLimit", "globalQuota.monthlyCallLimit", "globalQuota.dailyCreditLimit", "globalQuota.monthlyCreditLimit"}},
		{name: "empty free method", s: Settings{FreeMethods: []string{"ping", ""}},
			wantErr: []string{"freeMethods[1]: must not be empty"}},
		{name: "tools/call cannot be free", s: Settings{FreeMethods: []string{"tools/call"}},
			wantErr: []string{"freeMethods[0]: tools/call is always billed"}, wantIs: ErrAlwaysGated},
		{name: "batch cannot be free", s: Settings{FreeMethods: []string{"ping", "tools/call_batch"}},
			wantErr: []string{"freeMethods[1]: tools/call_batch is always billed"}},
		{name: "duplicate free method", s: Settings{FreeMethods: []string{"ping", "ping"}},
			wantErr: []string{"freeMethods[1]: ping is listed twice"}},
		{name: "all errors reported, in field order", s: Settings{ToolPricing: map[string]ToolPolicy{
			"b": {CreditsPerCall: ptr[int64](-1)}, "a": {RateLimitPerMin: -1}}},
			wantErr: []string{"toolPricing.a.rateLimitPerMin: must not be negative\ntoolPricing.b.creditsPerCall: must not be negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.s)
			if len(tc.wantErr) == 0 {
				if err != nil || p == nil {
					t.Fatalf("New = %v, %v", p, err)
				}
				return
			}
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if p != nil {
				t.Fatal("New returned a snapshot with an error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v holds no *FieldError", err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v does not match %v", err, tc.wantIs)
			}
		})
	}
}

func TestMustNewPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustNew did not panic")
		}
	}()
	MustNew(Settings{DefaultPrice: ptr[int64](-1)})
}

func TestSettingsAreCopied(t *testing.T) {
	s := Settings{ToolPricing: map[string]ToolPolicy{"a": {CreditsPerCall: ptr[int64](3)}}, FreeMethods: []string{"ping"}}
	p := MustNew(s)
	*s.ToolPricing["a"].CreditsPerCall = 100
	s.ToolPricing["b"] = ToolPolicy{CreditsPerCall: ptr[int64](7)}
	s.FreeMethods[0] = "tools/list"
	if got, _ := p.Price("a", 0); got != 3 {
		t.Fatalf("price of a = %d after settings changed", got)
	}
	if got, _ := p.Price("b", 0); got != 1 {
		t.Fatalf("price of b = %d after settings changed", got)
	}
	if !p.IsFree("ping") || p.IsFree("tools/list") {
		t.Fatal("free methods changed with the settings")
	}
	p.FreeMethods()[0] = "x"
	if !p.IsFree("ping") {
		t.Fatal("FreeMethods returned the internal slice")
	}
}

func TestPrice(t *testing.T) {
	p := MustNew(Settings{
		DefaultPrice: ptr[int64](2),
		ToolPricing: map[string]ToolPolicy{
			"search":       {CreditsPerCall: ptr[int64](5)},
			"analyze_text": {CreditsPerCall: ptr[int64](2), CreditsPerKbInput: 5},
			"per_kb_only":  {CreditsPerKbInput: 3}, // base is the default price
			"free":         {CreditsPerCall: ptr[int64](0)},
			"huge":         {CreditsPerCall: ptr(credits.Max), CreditsPerKbInput: 1},
		},
	})
	tests := []struct {
		name    string
		tool    string
		bytes   int
		want    credits.Credits
		wantErr error
	}{
		{"default price", "unknown", 0, 2, nil},
		{"default ignores size", "unknown", 1 << 20, 2, nil},
		{"flat tool", "search", 10_000, 5, nil},
		{"zero price", "free", 100, 0, nil},
		{"per-KB empty input counts 1 KB", "analyze_text", 0, 7, nil},
		{"per-KB 1 byte", "analyze_text", 1, 7, nil},
		{"per-KB exactly 1 KB", "analyze_text", 1024, 7, nil},
		{"per-KB just over 1 KB", "analyze_text", 1025, 12, nil},
		{"per-KB 3 KB (README example)", "analyze_text", 3 * 1024, 17, nil},
		{"per-KB with default base", "per_kb_only", 2048, 2 + 6, nil},
		{"overflow", "huge", 1024, 0, credits.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Price(tc.tool, tc.bytes)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Price err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Price = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	p := MustNew(Settings{})
	if p.DefaultPrice() != 1 {
		t.Errorf("default price = %d, want 1", p.DefaultPrice())
	}
	if p.GlobalRateLimit() != 60 {
		t.Errorf("global rate = %d, want 60", p.GlobalRateLimit())
	}
	if p.Shadow() || p.RefundOnFailure() {
		t.Error("shadow or refund on by default")
	}
	p = MustNew(Settings{GlobalRateLimitPerMin: ptr[int64](0), Shadow: true, RefundOnFailure: true})
	if p.GlobalRateLimit() != 0 || !p.Shadow() || !p.RefundOnFailure() {
		t.Error("explicit settings not applied")
	}
}

func TestIsFree(t *testing.T) {
	def := MustNew(Settings{})
	custom := MustNew(Settings{FreeMethods: []string{"ping", "resources/read"}})
	none := MustNew(Settings{FreeMethods: []string{}})
	tests := []struct {
		method              string
		wantDef, wantCustom bool
		wantNone            bool
	}{
		{"initialize", true, false, false},
		{"notifications/initialized", true, true, true},
		{"notifications/cancelled", true, true, true},
		{"notifications/anything", true, true, true},
		{"ping", true, true, false},
		{"tools/list", true, false, false},
		{"resources/list", true, false, false},
		{"resources/templates/list", true, false, false},
		{"prompts/list", true, false, false},
		{"resources/read", false, true, false},
		{"tools/call", false, false, false},
		{"tools/call_batch", false, false, false},
		{"prompts/get", false, false, false},
		{"", false, false, false},
		{"notifications", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			if got := def.IsFree(tc.method); got != tc.wantDef {
				t.Errorf("default IsFree = %v, want %v", got, tc.wantDef)
			}
			if got := custom.IsFree(tc.method); got != tc.wantCustom {
				t.Errorf("custom IsFree = %v, want %v", got, tc.wantCustom)
			}
			if got := none.IsFree(tc.method); got != tc.wantNone {
				t.Errorf("empty-list IsFree = %v, want %v", got, tc.wantNone)
			}
		})
	}
}

func TestRateLimits(t *testing.T) {
	p := MustNew(Settings{
		GlobalRateLimitPerMin: ptr[int64](30),
		ToolPricing:           map[string]ToolPolicy{"slow": {RateLimitPerMin: 5, TimeoutMs: 2500}},
	})
	tests := []struct {
		name string
		key  *store.Key
		want int64
	}{
		{"nil key gets global", nil, 30},
		{"no override", &store.Key{}, 30},
		{"override", &store.Key{RateLimitPerMin: ptr[int64](100)}, 100},
		{"override to unlimited", &store.Key{RateLimitPerMin: ptr[int64](0)}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.KeyRateLimit(tc.key); got != tc.want {
				t.Fatalf("KeyRateLimit = %d, want %d", got, tc.want)
			}
		})
	}
	if p.ToolRateLimit("slow") != 5 || p.ToolRateLimit("other") != 0 {
		t.Error("ToolRateLimit wrong")
	}
	if p.ToolTimeout("slow") != 2500*time.Millisecond || p.ToolTimeout("other") != 0 {
		t.Error("ToolTimeout wrong")
	}
}

func TestLimitsAndQuota(t *testing.T) {
	global := store.Quota{DailyCalls: 100, MonthlyCredits: 5000}
	own := store.Quota{DailyCalls: 3}
	withGlobal := MustNew(Settings{GlobalQuota: global})
	without := MustNew(Settings{})
	tests := []struct {
		name       string
		p          *Snapshot
		key        *store.Key
		want       store.Limits
		wantSource QuotaSource
	}{
		{"global quota", withGlobal, &store.Key{SpendingLimit: 50}, store.Limits{SpendingLimit: 50, Quota: global}, QuotaGlobal},
		{"per-key quota wins", withGlobal, &store.Key{Quota: &own}, store.Limits{Quota: own}, QuotaPerKey},
		{"per-key zero quota lifts global", withGlobal, &store.Key{Quota: &store.Quota{}}, store.Limits{}, QuotaPerKey},
		{"no quota anywhere", without, &store.Key{SpendingLimit: 7}, store.Limits{SpendingLimit: 7}, QuotaNone},
		{"nil key", withGlobal, nil, store.Limits{Quota: global}, QuotaGlobal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Limits(tc.key); got != tc.want {
				t.Fatalf("Limits = %+v, want %+v", got, tc.want)
			}
			if _, src := tc.p.Quota(tc.key); src != tc.wantSource {
				t.Fatalf("source = %s, want %s", src, tc.wantSource)
			}
		})
	}
	if withGlobal.GlobalQuota() != global {
		t.Error("GlobalQuota wrong")
	}
}

func TestToolInfoJSON(t *testing.T) {
	p := MustNew(Settings{
		DefaultPrice: ptr[int64](2),
		ToolPricing: map[string]ToolPolicy{
			"search":  {CreditsPerCall: ptr[int64](5), RateLimitPerMin: 30},
			"analyze": {CreditsPerCall: ptr[int64](2), CreditsPerKbInput: 5},
			"timeout": {TimeoutMs: 100},
		},
	})
	tests := []struct{ tool, want string }{
		{"search", `{"creditsPerCall":5,"pricingModel":"flat","rateLimitPerMin":30}`},
		{"analyze", `{"creditsPerCall":2,"pricingModel":"dynamic","creditsPerKbInput":5}`},
		{"timeout", `{"creditsPerCall":2,"pricingModel":"flat"}`},
		{"unknown", `{"creditsPerCall":2,"pricingModel":"flat"}`},
	}
	for _, tc := range tests {
		t.Run(tc.tool, func(t *testing.T) {
			b, err := json.Marshal(p.ToolInfo(tc.tool))
			if err != nil || string(b) != tc.want {
				t.Fatalf("ToolInfo = %s, %v; want %s", b, err, tc.want)
			}
		})
	}
	b, _ := json.Marshal(p.Pricing())
	want := `[{"name":"analyze","creditsPerCall":2,"pricingModel":"dynamic","creditsPerKbInput":5},` +
		`{"name":"search","creditsPerCall":5,"pricingModel":"flat","rateLimitPerMin":30},` +
		`{"name":"timeout","creditsPerCall":2,"pricingModel":"flat"}]`
	if string(b) != want {
		t.Fatalf("Pricing = %s\nwant      %s", b, want)
	}
}

func BenchmarkPrice(b *testing.B) {
	p := MustNew(Settings{ToolPricing: map[string]ToolPolicy{"search": {CreditsPerKbInput: 2}}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Price("search", 3000); err != nil {
			b.Fatal(err)
		}
	}
}
