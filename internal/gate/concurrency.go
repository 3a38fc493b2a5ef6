package gate

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// concurrencyRetryAfter is the retry hint of a concurrency denial: calls
// in flight usually finish within seconds, and nothing tells when.
const concurrencyRetryAfter = time.Second

// ConcurrencyLimits are the in-flight caps: how many tool calls may run at
// once per key and per tool. They are distinct from rate limits, which
// count calls per minute whether or not they overlap.
type ConcurrencyLimits struct {
	// PerKey caps each key's calls in flight (every tool together); 0: no cap.
	PerKey int64 `json:"maxConcurrentPerKey"`
	// Tools caps each listed tool's calls in flight, across all keys.
	// Entries of 0 are dropped.
	Tools map[string]int64 `json:"tools"`
}

// ErrNegativeLimit reports a negative concurrency cap.
var ErrNegativeLimit = errors.New("concurrency caps must not be negative (0 means no cap)")

// limitSet is an immutable copy of ConcurrencyLimits with at least one cap.
type limitSet struct {
	perKey int64
	tools  map[string]int64
}

// Concurrency holds the in-flight counts and the caps. It outlives config
// reloads (a Chain only points to it), so calls started under the old
// chain still give their slots back. The caps change at runtime through
// SetLimits (config reload, POST /admin/concurrency); a call in flight
// keeps the slot it took. Safe for concurrent use.
type Concurrency struct {
	// limits is nil while no cap is set: the check is then one atomic
	// load, with no lock and no allocation.
	limits atomic.Pointer[limitSet]

	mu       sync.Mutex // serializes SetLimits/Update and guards the counts
	keys     map[string]int64
	tools    map[string]int64
	rejected atomic.Int64
}

// NewConcurrency returns a Concurrency with the given caps.
func NewConcurrency(l ConcurrencyLimits) (*Concurrency, error) {
	cc := &Concurrency{keys: map[string]int64{}, tools: map[string]int64{}}
	if err := cc.SetLimits(l); err != nil {
		return nil, err
	}
	return cc, nil
}

// SetLimits replaces the caps.
func (cc *Concurrency) SetLimits(l ConcurrencyLimits) error {
	return cc.Update(func(cur *ConcurrencyLimits) { *cur = l })
}

// Update changes the caps with fn, which gets a copy of the current ones;
// the result is validated and swapped in atomically with respect to other
// updates.
func (cc *Concurrency) Update(fn func(*ConcurrencyLimits)) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	l := cc.limitsLocked()
	fn(&l)
	if l.PerKey < 0 {
		return ErrNegativeLimit
	}
	set := &limitSet{perKey: l.PerKey, tools: map[string]int64{}}
	for tool, n := range l.Tools {
		switch {
		case n < 0:
			return ErrNegativeLimit
		case n > 0:
			set.tools[tool] = n
		}
	}
	if set.perKey == 0 && len(set.tools) == 0 {
		set = nil
	}
	cc.limits.Store(set)
	return nil
}

// Limits returns a copy of the current caps.
func (cc *Concurrency) Limits() ConcurrencyLimits {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.limitsLocked()
}

func (cc *Concurrency) limitsLocked() ConcurrencyLimits {
	l := ConcurrencyLimits{Tools: map[string]int64{}}
	if s := cc.limits.Load(); s != nil {
		l.PerKey = s.perKey
		maps.Copy(l.Tools, s.tools)
	}
	return l
}

// ConcurrencyStatus is the caps and what is in flight, for GET
// /admin/concurrency.
type ConcurrencyStatus struct {
	ConcurrencyLimits
	InFlight ConcurrencyInFlight `json:"inFlight"`
	// Rejections counts calls refused with -32005 since the start.
	Rejections int64 `json:"rejections"`
}

// ConcurrencyInFlight counts the calls in flight.
type ConcurrencyInFlight struct {
	Keys  map[string]int64 `json:"keys"`  // by key id
	Tools map[string]int64 `json:"tools"` // by tool
}

// Status returns the caps and the calls in flight. Calls are only counted
// while some cap is set.
func (cc *Concurrency) Status() ConcurrencyStatus {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	s := ConcurrencyStatus{ConcurrencyLimits: cc.limitsLocked(), Rejections: cc.rejected.Load()}
	s.InFlight.Keys, s.InFlight.Tools = maps.Clone(cc.keys), maps.Clone(cc.tools)
	return s
}

// acquire takes one slot per item of c for its key and its tools, or
// refuses c when a cap would be exceeded. The slots are given back when c
// settles.
func (cc *Concurrency) acquire(c *Call) error {
	set := cc.limits.Load()
	if set == nil {
		return nil
	}
	keyID := ""
	if c.Key != nil {
		keyID = c.Key.ID
	}
	items := c.Items
	n := c.count()

	cc.mu.Lock()
	if have := cc.keys[keyID]; keyID != "" && set.perKey > 0 && have+n > set.perKey {
		cc.mu.Unlock()
		cc.rejected.Add(1)
		d := c.deny(ConcurrencyLimited, "the key has "+strconv.FormatInt(have, 10)+
			" calls in flight; at most "+strconv.FormatInt(set.perKey, 10)+" at once")
		d.RetryAfter = concurrencyRetryAfter
		return d
	}
	for i := range items {
		tool := items[i].Tool
		limit := set.tools[tool]
		if limit <= 0 || seenBefore(items, i) {
			continue
		}
		want := int64(0)
		for j := i; j < len(items); j++ {
			if items[j].Tool == tool {
				want++
			}
		}
		if have := cc.tools[tool]; have+want > limit {
			cc.mu.Unlock()
			cc.rejected.Add(1)
			d := c.deny(ConcurrencyLimited, tool+" has "+strconv.FormatInt(have, 10)+
				" calls in flight; at most "+strconv.FormatInt(limit, 10)+" at once")
			d.RetryAfter = concurrencyRetryAfter
			d.Index = nthItem(items, tool, max(limit-have, 0))
			return d
		}
	}
	if keyID != "" {
		cc.keys[keyID] += n
	}
	for i := range items {
		cc.tools[items[i].Tool]++
	}
	cc.mu.Unlock()
	c.OnSettle(func() { cc.release(keyID, n, items) })
	return nil
}

// release gives back exactly the slots acquire took, whatever the caps
// are now.
func (cc *Concurrency) release(keyID string, n int64, items []Item) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if keyID != "" {
		if cc.keys[keyID] -= n; cc.keys[keyID] <= 0 {
			delete(cc.keys, keyID)
		}
	}
	for i := range items {
		tool := items[i].Tool
		if cc.tools[tool]--; cc.tools[tool] <= 0 {
			delete(cc.tools, tool)
		}
	}
}

// concurrency refuses a call that would exceed an in-flight cap (-32005,
// with a retry hint) and otherwise holds a slot until the call settles.
type concurrency struct{ cc *Concurrency }

func (concurrency) Name() string { return "concurrency" }

func (k concurrency) Check(_ context.Context, c *Call) error {
	if k.cc == nil {
		return nil
	}
	return k.cc.acquire(c)
}
