package config

import (
	"strings"
	"time"
)

// ToolAlias is one entry of toolAliases: the deprecated name maps to To.
type ToolAlias struct {
	// To is the tool a call to the alias runs. It must not be an alias
	// itself: aliases never chain.
	To string `json:"to"`
	// Sunset is when the alias is expected to stop working (RFC 3339),
	// sent as the Sunset header; empty: no date announced.
	Sunset string `json:"sunset,omitempty"`
	// Link is a page about the deprecation, sent as a Link header with
	// rel="deprecation"; empty: none.
	Link string `json:"link,omitempty"`
}

// SunsetTime parses Sunset; the zero time when it is empty or invalid
// (Validate reports an invalid one).
func (a ToolAlias) SunsetTime() time.Time {
	t, _ := time.Parse(time.RFC3339, a.Sunset)
	return t
}

// Defaults and allowed values of the call-control keys.
const (
	DefaultMaxCacheEntries = 1000
	DefaultCacheMaxBytes   = 64 << 20
)

var (
	CacheScopes      = []string{"key", "namespace", "global"}
	CacheHitCharges  = []string{"free", "full"}
	maxCacheTTL      = int64((30 * 24 * time.Hour) / time.Second)
	maxConcurrentCap = int64(1 << 20)
)

// validateFeatures checks the concurrency, response cache and tool alias
// keys.
func (c *Config) validateFeatures(ds *diags) {
	checkRange(ds, "maxConcurrentPerKey", c.MaxConcurrentPerKey, maxConcurrentCap, "calls in flight per key; 0 means no cap")
	checkRange(ds, "cacheTtlSeconds", c.CacheTTLSeconds, maxCacheTTL, "seconds; 0 caches only tools that set their own")
	checkRange(ds, "maxCacheEntries", c.MaxCacheEntries, 1<<24, "entries")
	if c.MaxCacheEntries == 0 {
		ds.errorf("maxCacheEntries", "must be at least 1; the default is %d", DefaultMaxCacheEntries)
	}
	if c.CacheMaxBytes <= 0 {
		ds.errorf("cacheMaxBytes", "must be positive, got %d; the default is %s", c.CacheMaxBytes, ByteSize(DefaultCacheMaxBytes))
	}
	checkEnum(ds, "cacheScope", c.CacheScope, CacheScopes)
	checkEnum(ds, "cacheHitCharge", c.CacheHitCharge, CacheHitCharges)
	caching := c.CacheTTLSeconds > 0
	for _, tool := range sortedKeys(c.ToolPricing) {
		tp := c.ToolPricing[tool]
		p := joinPath("toolPricing", tool)
		checkRange(ds, p+".maxConcurrent", tp.MaxConcurrent, maxConcurrentCap, "calls in flight; 0 means no cap")
		if tp.CacheTTLSeconds != nil {
			checkRange(ds, p+".cacheTtlSeconds", *tp.CacheTTLSeconds, maxCacheTTL, "seconds; 0 turns caching off for this tool")
			caching = caching || *tp.CacheTTLSeconds > 0
		}
	}
	if caching && c.CacheScope == "global" {
		ds.warnf("cacheScope", "\"global\" serves one key's cached results to every key; use it only for tools whose results are public")
	}
	for _, from := range sortedKeys(c.ToolAliases) {
		a := c.ToolAliases[from]
		p := joinPath("toolAliases", from)
		switch {
		case strings.TrimSpace(from) == "":
			ds.errorf(p, "alias name is empty")
		case strings.TrimSpace(a.To) == "":
			ds.errorf(p+".to", "missing; name the tool the alias stands for")
		case a.To == from:
			ds.errorf(p+".to", "%q points to itself", from)
		default:
			if _, chained := c.ToolAliases[a.To]; chained {
				ds.errorf(p+".to", "%q is itself an alias; point %q at %q's target (aliases do not chain)", a.To, from, a.To)
			}
		}
		if a.Sunset != "" {
			if _, err := time.Parse(time.RFC3339, a.Sunset); err != nil {
				ds.errorf(p+".sunset", "%q is not an RFC 3339 time, like \"2027-01-01T00:00:00Z\"", a.Sunset)
			}
		}
		if a.Link != "" {
			checkURL(ds, p+".link", a.Link, "http", "https")
		}
	}
}

func checkRange(ds *diags, path string, n, hi int64, unit string) {
	checkNonNegative(ds, path, n, unit)
	if n > hi {
		ds.errorf(path, "must be at most %d, got %d", hi, n)
	}
}
