// Package cache is paygate's response cache: the results of successful
// tool calls, kept for a time to live and served to identical calls
// without running the tool again. Entries are keyed by the caller's scope,
// the tool and the canonical arguments (canonical.go), and the cache is
// bounded both in entries and in bytes, evicting the least recently used
// entry first. Which tools are cached, for how long and for whom is the
// policy's business (policy.CacheSettings); this package only stores.
package cache

import (
	"encoding/json"
	"sync"
	"time"
)

// entryOverhead approximates the memory an entry costs besides its tool
// name and result: the struct, the map slot and the list links.
const entryOverhead = 160

// Options configure a Cache.
type Options struct {
	MaxEntries int              // at most this many entries; at least 1
	MaxBytes   int64            // at most this many bytes of entries; at least 1
	Now        func() time.Time // the clock of expiries; nil: time.Now
}

// Cache is a TTL and LRU bounded store of tool results. It is safe for
// concurrent use.
type Cache struct {
	now func() time.Time

	mu         sync.Mutex
	m          map[Key]*entry
	head       entry // sentinel: head.next is the most recently used entry
	bytes      int64
	maxEntries int
	maxBytes   int64
	hits       int64
	misses     int64
	evictions  int64
	expired    int64
}

type entry struct {
	key        Key
	tool       string
	result     json.RawMessage
	expires    time.Time
	size       int64
	prev, next *entry
}

// New returns an empty cache.
func New(o Options) *Cache {
	c := &Cache{now: o.Now, m: make(map[Key]*entry)}
	if c.now == nil {
		c.now = time.Now
	}
	c.head.next, c.head.prev = &c.head, &c.head
	c.SetLimits(o.MaxEntries, o.MaxBytes)
	return c
}

// SetLimits changes the bounds (config reload), evicting what no longer
// fits. Values below 1 become 1.
func (c *Cache) SetLimits(maxEntries int, maxBytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxEntries, c.maxBytes = max(maxEntries, 1), max(maxBytes, 1)
	c.evict()
}

// Get returns the unexpired result stored under k and counts a hit, or
// counts a miss. The result must not be modified.
func (c *Cache) Get(k Key) (json.RawMessage, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e != nil && !now.Before(e.expires) {
		c.remove(e)
		c.expired++
		e = nil
	}
	if e == nil {
		c.misses++
		return nil, false
	}
	c.unlink(e)
	c.pushFront(e)
	c.hits++
	return e.result, true
}

// Put stores a copy of result under k for ttl, replacing an entry already
// there, then evicts least recently used entries until the bounds hold. A
// result larger than the byte bound is not stored.
func (c *Cache) Put(k Key, tool string, result json.RawMessage, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	size := int64(entryOverhead + len(tool) + len(result))
	e := &entry{key: k, tool: tool, result: append(json.RawMessage(nil), result...), expires: c.now().Add(ttl), size: size}
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.maxBytes {
		return
	}
	if old := c.m[k]; old != nil {
		c.remove(old)
	}
	c.m[k] = e
	c.pushFront(e)
	c.bytes += size
	c.evict()
}

// Clear removes every entry of tool, or every entry when tool is "", and
// returns how many it removed.
func (c *Cache) Clear(tool string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for e := c.head.next; e != &c.head; {
		next := e.next
		if tool == "" || e.tool == tool {
			c.remove(e)
			n++
		}
		e = next
	}
	return n
}

// Stats is the cache's state for GET /admin/cache.
type Stats struct {
	Entries    int            `json:"entries"`
	Bytes      int64          `json:"bytes"`
	MaxEntries int            `json:"maxEntries"`
	MaxBytes   int64          `json:"maxBytes"`
	Hits       int64          `json:"hits"`
	Misses     int64          `json:"misses"`
	HitRate    float64        `json:"hitRate"` // hits / (hits + misses); 0 before the first lookup
	Evictions  int64          `json:"evictions"`
	Expired    int64          `json:"expired"`
	Tools      map[string]int `json:"tools"` // entries per tool
}

// Stats returns the counters and sizes.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Entries: len(c.m), Bytes: c.bytes, MaxEntries: c.maxEntries, MaxBytes: c.maxBytes,
		Hits: c.hits, Misses: c.misses, Evictions: c.evictions, Expired: c.expired, Tools: map[string]int{}}
	if n := c.hits + c.misses; n > 0 {
		s.HitRate = float64(c.hits) / float64(n)
	}
	for _, e := range c.m {
		s.Tools[e.tool]++
	}
	return s
}

// evict drops least recently used entries until both bounds hold.
func (c *Cache) evict() {
	for len(c.m) > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.head.prev)
		c.evictions++
	}
}

func (c *Cache) remove(e *entry) {
	c.unlink(e)
	delete(c.m, e.key)
	c.bytes -= e.size
}

func (c *Cache) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *Cache) pushFront(e *entry) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}
