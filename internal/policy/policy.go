// Package policy turns operator settings into an immutable Snapshot that
// answers the gate's questions: what a call costs, which rate limits and
// quotas apply to a key and a tool, and which methods pass unbilled.
//
// A Snapshot never changes after New. A config reload builds a new one and
// swaps it in (atomic.Pointer in the app); calls in flight keep the one they
// started with. The package knows nothing about config files: the app
// converts its config into Settings.
package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// paygate-mcp's defaults, applied when a Settings field is left nil.
const (
	DefaultCreditsPerCall        credits.Credits = 1
	DefaultGlobalRateLimitPerMin int64           = 60
)

// DefaultFreeMethods are the MCP methods that pass without a key or a
// charge when Settings.FreeMethods is nil: the handshake and the listings an
// agent needs before it can pay. Notifications are always free.
var DefaultFreeMethods = []string{
	"initialize",
	"notifications/initialized",
	"ping",
	"tools/list",
	"resources/list",
	"resources/templates/list",
	"prompts/list",
}

// gatedMethods are never free: they are what paygate bills.
var gatedMethods = []string{"tools/call", "tools/call_batch"}

// Pricing models reported in tools/list _pricing and /pricing.
const (
	ModelFlat    = "flat"    // a fixed price per call
	ModelDynamic = "dynamic" // the price grows with the input size
)

// ToolPolicy overrides pricing and limits for one tool (paygate-mcp's
// toolPricing entry).
type ToolPolicy struct {
	CreditsPerCall    *credits.Credits // nil: the default price
	CreditsPerKbInput credits.Credits  // 0: flat pricing
	RateLimitPerMin   int64            // 0: no per-tool limit
	TimeoutMs         int64            // 0: Settings.ToolTimeout
	CacheTTL          *time.Duration   // nil: Settings.CacheTTL; 0: never cached
}

// Settings are the operator's pricing and limit choices, as plain values.
// The zero Settings is paygate-mcp's default behaviour.
type Settings struct {
	DefaultPrice          *credits.Credits // credits per call; nil: 1
	ToolPricing           map[string]ToolPolicy
	GlobalRateLimitPerMin *int64      // calls per minute per key; nil: 60; 0: unlimited
	GlobalQuota           store.Quota // for keys without their own quota
	FreeMethods           []string    // nil: DefaultFreeMethods
	Shadow                bool        // record denials, enforce nothing, charge nothing
	RefundOnFailure       bool        // refund calls whose tool answered with an error
	// ToolTimeout caps tool calls without their own timeoutMs; 0: no limit.
	ToolTimeout time.Duration
	// Cache is the response cache policy (cache.go); the zero value
	// caches nothing.
	Cache CacheSettings
}

// FieldError is a validation error for one setting. Field uses the names of
// paygate-mcp's config file, e.g. "toolPricing.search.creditsPerCall".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause, e.g. credits.ErrNegative.
func (e *FieldError) Unwrap() error { return e.Err }

// Errors for settings that are not amounts.
var (
	ErrNegative     = errors.New("must not be negative")
	ErrEmptyName    = errors.New("must not be empty")
	ErrAlwaysGated  = errors.New("is always billed and cannot be free; give its tools a price of 0 instead")
	ErrDuplicateKey = errors.New("is listed twice")
)

type tool struct {
	rule      credits.Rule
	rateLimit int64
	timeout   time.Duration
	cacheTTL  *time.Duration
}

// Snapshot is an immutable, validated policy. Its methods are safe for
// concurrent use and do not allocate on the request path.
type Snapshot struct {
	defaultPrice    credits.Credits
	tools           map[string]tool
	globalRate      int64
	globalQuota     store.Quota
	free            map[string]struct{}
	freeList        []string
	shadow          bool
	refundOnFailure bool
	toolTimeout     time.Duration
	cache           cachePolicy
}

// New validates s and builds a Snapshot from a copy of it. The error joins
// one *FieldError per invalid setting, in field order.
func New(s Settings) (*Snapshot, error) {
	var errs []error
	bad := func(field string, err error) { errs = append(errs, &FieldError{Field: field, Err: err}) }
	amount := func(field string, v credits.Credits) {
		if err := credits.Validate(v); err != nil {
			bad(field, err)
		}
	}
	count := func(field string, v int64) {
		if v < 0 {
			bad(field, ErrNegative)
		}
	}

	p := &Snapshot{
		defaultPrice:    DefaultCreditsPerCall,
		globalRate:      DefaultGlobalRateLimitPerMin,
		globalQuota:     s.GlobalQuota,
		shadow:          s.Shadow,
		refundOnFailure: s.RefundOnFailure,
		toolTimeout:     s.ToolTimeout,
		tools:           make(map[string]tool, len(s.ToolPricing)),
	}
	if s.DefaultPrice != nil {
		p.defaultPrice = *s.DefaultPrice
		amount("defaultCreditsPerCall", p.defaultPrice)
	}
	if s.GlobalRateLimitPerMin != nil {
		p.globalRate = *s.GlobalRateLimitPerMin
		count("globalRateLimitPerMin", p.globalRate)
	}
	count("toolTimeoutMs", s.ToolTimeout.Milliseconds())
	q := s.GlobalQuota
	count("globalQuota.dailyCallLimit", q.DailyCalls)
	count("globalQuota.monthlyCallLimit", q.MonthlyCalls)
	amount("globalQuota.dailyCreditLimit", q.DailyCredits)
	amount("globalQuota.monthlyCreditLimit", q.MonthlyCredits)

	names := make([]string, 0, len(s.ToolPricing))
	for name := range s.ToolPricing {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		tp := s.ToolPricing[name]
		field := "toolPricing." + name
		if strings.TrimSpace(name) == "" {
			bad("toolPricing", fmt.Errorf("tool name %w", ErrEmptyName))
			continue
		}
		t := tool{rule: credits.Rule{PerCall: p.defaultPrice, PerKBInput: tp.CreditsPerKbInput}}
		if tp.CreditsPerCall != nil {
			t.rule.PerCall = *tp.CreditsPerCall
			amount(field+".creditsPerCall", t.rule.PerCall)
		}
		amount(field+".creditsPerKbInput", tp.CreditsPerKbInput)
		count(field+".rateLimitPerMin", tp.RateLimitPerMin)
		count(field+".timeoutMs", tp.TimeoutMs)
		t.rateLimit = tp.RateLimitPerMin
		t.timeout = time.Duration(tp.TimeoutMs) * time.Millisecond
		if tp.CacheTTL != nil {
			ttl := *tp.CacheTTL
			count(field+".cacheTtlSeconds", int64(ttl))
			t.cacheTTL = &ttl
		}
		p.tools[name] = t
	}

	p.cache = newCachePolicy(s.Cache, s.ToolPricing, bad)

	free := s.FreeMethods
	if free == nil {
		free = DefaultFreeMethods
	}
	p.free = make(map[string]struct{}, len(free))
	for i, m := range free {
		field := fmt.Sprintf("freeMethods[%d]", i)
		switch _, dup := p.free[m]; {
		case m == "":
			bad(field, ErrEmptyName)
		case slices.Contains(gatedMethods, m):
			bad(field, fmt.Errorf("%s %w", m, ErrAlwaysGated))
		case dup:
			bad(field, fmt.Errorf("%s %w", m, ErrDuplicateKey))
		default:
			p.free[m] = struct{}{}
			p.freeList = append(p.freeList, m)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// MustNew is New for tests and built-in defaults; it panics on an invalid
// Settings.
func MustNew(s Settings) *Snapshot {
	p, err := New(s)
	if err != nil {
		panic(err)
	}
	return p
}

// Rule returns the price rule of a tool: its own, or the default price.
func (p *Snapshot) Rule(toolName string) credits.Rule {
	if t, ok := p.tools[toolName]; ok {
		return t.rule
	}
	return credits.Rule{PerCall: p.defaultPrice}
}

// Price returns what one call of toolName with argBytes bytes of raw
// arguments costs: creditsPerCall + ceil(KB) × creditsPerKbInput, where a
// per-KB price charges at least 1 KB.
func (p *Snapshot) Price(toolName string, argBytes int) (credits.Credits, error) {
	c, err := p.Rule(toolName).Price(argBytes)
	if err != nil {
		return 0, fmt.Errorf("price %s (%d bytes): %w", toolName, argBytes, err)
	}
	return c, nil
}

// DefaultPrice returns the price of tools without their own.
func (p *Snapshot) DefaultPrice() credits.Credits { return p.defaultPrice }

// GlobalRateLimit returns the calls per minute a key may make when it has
// no override (0: unlimited).
func (p *Snapshot) GlobalRateLimit() int64 { return p.globalRate }

// KeyRateLimit returns the calls per minute k may make: the key's override
// when set, else the global limit. 0 means unlimited.
func (p *Snapshot) KeyRateLimit(k *store.Key) int64 {
	if k != nil && k.RateLimitPerMin != nil {
		return *k.RateLimitPerMin
	}
	return p.globalRate
}

// ToolRateLimit returns the calls per minute one key may make to toolName
// (0: no per-tool limit).
func (p *Snapshot) ToolRateLimit(toolName string) int64 { return p.tools[toolName].rateLimit }

// ToolTimeout returns toolName's call timeout: its own timeoutMs, else
// Settings.ToolTimeout (0: no limit).
func (p *Snapshot) ToolTimeout(toolName string) time.Duration {
	if t := p.tools[toolName].timeout; t > 0 {
		return t
	}
	return p.toolTimeout
}

// QuotaSource says where a key's effective quota comes from, as
// paygate-mcp's quota-status reports it.
type QuotaSource string

// Quota sources.
const (
	QuotaPerKey QuotaSource = "per-key"
	QuotaGlobal QuotaSource = "global"
	QuotaNone   QuotaSource = "none"
)

// Quota returns k's effective quota and where it comes from: the key's own
// (even an all-zero one, which lifts the global quota for that key) or the
// global default.
func (p *Snapshot) Quota(k *store.Key) (store.Quota, QuotaSource) {
	switch {
	case k != nil && k.Quota != nil:
		return *k.Quota, QuotaPerKey
	case !p.globalQuota.IsZero():
		return p.globalQuota, QuotaGlobal
	}
	return store.Quota{}, QuotaNone
}

// GlobalQuota returns the default quota of keys without their own.
func (p *Snapshot) GlobalQuota() store.Quota { return p.globalQuota }

// Limits returns the limits store.Ledger.Reserve enforces for k: its
// spending limit and effective quota.
func (p *Snapshot) Limits(k *store.Key) store.Limits {
	q, _ := p.Quota(k)
	l := store.Limits{Quota: q}
	if k != nil {
		l.SpendingLimit = k.SpendingLimit
	}
	return l
}

// IsFree reports whether method passes without a key and without a charge.
// Every notification is free: it gets no reply that could carry a denial.
func (p *Snapshot) IsFree(method string) bool {
	if strings.HasPrefix(method, "notifications/") {
		return true
	}
	_, ok := p.free[method]
	return ok
}

// FreeMethods returns the configured free methods (a copy).
func (p *Snapshot) FreeMethods() []string { return slices.Clone(p.freeList) }

// Shadow reports whether the gate only records what it would deny.
func (p *Snapshot) Shadow() bool { return p.shadow }

// RefundOnFailure reports whether calls whose tool failed are refunded.
func (p *Snapshot) RefundOnFailure() bool { return p.refundOnFailure }

// ToolInfo is a tool's price as agents see it: the _pricing member of each
// tool in tools/list and an entry of /pricing.
type ToolInfo struct {
	CreditsPerCall    credits.Credits `json:"creditsPerCall"`
	PricingModel      string          `json:"pricingModel"` // ModelFlat or ModelDynamic
	CreditsPerKbInput credits.Credits `json:"creditsPerKbInput,omitempty"`
	RateLimitPerMin   int64           `json:"rateLimitPerMin,omitempty"`
}

// ToolInfo returns toolName's pricing for agents. Tools without settings
// get the default price.
func (p *Snapshot) ToolInfo(toolName string) ToolInfo {
	t, ok := p.tools[toolName]
	if !ok {
		return ToolInfo{CreditsPerCall: p.defaultPrice, PricingModel: ModelFlat}
	}
	info := ToolInfo{
		CreditsPerCall:    t.rule.PerCall,
		PricingModel:      ModelFlat,
		CreditsPerKbInput: t.rule.PerKBInput,
		RateLimitPerMin:   t.rateLimit,
	}
	if t.rule.PerKBInput > 0 {
		info.PricingModel = ModelDynamic
	}
	return info
}

// ToolPrice is one entry of the /pricing tool list.
type ToolPrice struct {
	Name string `json:"name"`
	ToolInfo
}

// Pricing lists the tools that have their own settings, sorted by name, for
// /pricing. Tools without settings cost DefaultPrice; callers that know the
// backend's tool list add those with ToolInfo.
func (p *Snapshot) Pricing() []ToolPrice {
	out := make([]ToolPrice, 0, len(p.tools))
	for name := range p.tools {
		out = append(out, ToolPrice{Name: name, ToolInfo: p.ToolInfo(name)})
	}
	slices.SortFunc(out, func(a, b ToolPrice) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
