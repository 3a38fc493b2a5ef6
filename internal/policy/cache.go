package policy

import (
	"errors"
	"time"
)

// CacheScope says which callers share a cached tool result.
type CacheScope string

// Cache scopes.
const (
	CacheScopeKey       CacheScope = "key"       // each API key has its own results (the default)
	CacheScopeNamespace CacheScope = "namespace" // keys of one namespace share results
	CacheScopeGlobal    CacheScope = "global"    // every key shares results: public data only
)

// ErrCacheScope reports an unknown cache scope.
var ErrCacheScope = errors.New(`must be "key", "namespace" or "global"`)

// CacheSettings is the response cache policy: which tools' results are
// cached, for how long, shared by whom, and what a hit costs. The byte
// and entry bounds belong to the cache itself, not to the policy.
type CacheSettings struct {
	// TTL caches every tool's successful results for this long, unless
	// the tool's ToolPolicy.CacheTTL says otherwise; 0: only tools with
	// their own TTL are cached.
	TTL time.Duration
	// Scope is who shares a result; "" means CacheScopeKey.
	Scope CacheScope
	// ChargeHits charges a cache hit like the call it replaces; false
	// serves hits free (paygate-mcp's behaviour).
	ChargeHits bool
}

// cachePolicy is CacheSettings as the Snapshot holds it.
type cachePolicy struct {
	on         bool // some tool is cached: the pipeline's one check when caching is off
	ttl        time.Duration
	scope      CacheScope
	chargeHits bool
}

func newCachePolicy(s CacheSettings, tools map[string]ToolPolicy, bad func(string, error)) cachePolicy {
	c := cachePolicy{ttl: s.TTL, scope: s.Scope, chargeHits: s.ChargeHits, on: s.TTL > 0}
	if s.TTL < 0 {
		bad("cacheTtlSeconds", ErrNegative)
	}
	switch c.scope {
	case "":
		c.scope = CacheScopeKey
	case CacheScopeKey, CacheScopeNamespace, CacheScopeGlobal:
	default:
		bad("cacheScope", ErrCacheScope)
	}
	for _, tp := range tools {
		if tp.CacheTTL != nil && *tp.CacheTTL > 0 {
			c.on = true
		}
	}
	return c
}

// Caching reports whether any tool's results are cached. It is a field
// read, so the request path pays nothing for the cache when it is off.
func (p *Snapshot) Caching() bool { return p.cache.on }

// CacheTTL returns how long toolName's successful results are cached (0:
// not cached): its own cacheTtlSeconds, else the global one.
func (p *Snapshot) CacheTTL(toolName string) time.Duration {
	if !p.cache.on {
		return 0
	}
	if t, ok := p.tools[toolName]; ok && t.cacheTTL != nil {
		return *t.cacheTTL
	}
	return p.cache.ttl
}

// CacheScope returns who shares cached results.
func (p *Snapshot) CacheScope() CacheScope { return p.cache.scope }

// ChargeCacheHits reports whether a cache hit is charged like a call.
func (p *Snapshot) ChargeCacheHits() bool { return p.cache.chargeHits }
