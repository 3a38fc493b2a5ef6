package gateway

import (
	"time"

	"github.com/paygate/paygate/internal/cache"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// The pipeline's side of the response cache. A cached tools/call passes
// the same checks as any call (ACL, rate limits, concurrency, the money
// pre-checks), then a hit takes the place of the backend's answer: it is
// charged like a call with cacheHitCharge "full", and otherwise writes no
// ledger entry, only a usage record with outcome "cache_hit". Only
// successful results (no JSON-RPC error, no isError) are stored.

// cacheSlot is where a call's result lives in the cache; ttl 0 means the
// call is not cached.
type cacheSlot struct {
	key cache.Key
	ttl time.Duration
}

// cacheLookup returns the call's cache slot and, on a hit, the cached
// answer as the response to request id. With caching off it is a field
// read.
func (g *Gateway) cacheLookup(rules *Rules, c *gate.Call, id mcp.ID) (cacheSlot, *mcp.Message) {
	if g.cache == nil || !rules.Policy.Caching() || len(c.Items) != 1 {
		return cacheSlot{}, nil
	}
	it := &c.Items[0]
	ttl := rules.Policy.CacheTTL(it.Tool)
	if ttl <= 0 {
		return cacheSlot{}, nil
	}
	scope, ok := cacheScope(rules.Policy.CacheScope(), c.Key)
	if !ok {
		return cacheSlot{}, nil
	}
	k, err := cache.NewKey(scope, it.Tool, it.Args)
	if err != nil {
		return cacheSlot{}, nil // not one JSON value: the backend will say so
	}
	slot := cacheSlot{key: k, ttl: ttl}
	if result, ok := g.cache.Get(k); ok {
		return slot, &mcp.Message{ID: id, Result: result}
	}
	return slot, nil
}

// cacheScope is who shares a result: the key, its namespace, or everyone.
// Without a key (shadow mode lets such calls through) only the global
// scope can cache.
func cacheScope(s policy.CacheScope, k *store.Key) (string, bool) {
	switch {
	case s == policy.CacheScopeGlobal:
		return "global", true
	case k == nil:
		return "", false
	case s == policy.CacheScopeNamespace:
		return "namespace:" + k.Namespace, true
	}
	return "key:" + k.ID, true
}

// cacheResult marks the answer of a cached tool with X-Cache, stores a
// successful result the backend just produced, and returns the outcome to
// record.
func (g *Gateway) cacheResult(ex *streamable.Exchange, c *gate.Call, slot cacheSlot, hit, resp *mcp.Message, out outcome) string {
	if slot.ttl <= 0 {
		return out.String()
	}
	if hit != nil {
		ex.Header.Set("X-Cache", "HIT")
		return "cache_hit"
	}
	ex.Header.Set("X-Cache", "MISS")
	if resp != nil && !out.undelivered() && !out.failed() {
		g.cache.Put(slot.key, c.Items[0].Tool, resp.Result, slot.ttl)
	}
	return out.String()
}
