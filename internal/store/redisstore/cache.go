package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/store"
)

// keyCache is an instance's copy of every key's configuration, for the
// gateway's hot path. Each record carries the version Redis gave it (the
// kver counter at the change), so an older record never replaces a newer
// one whichever way it arrives: the instance's own write, a pub/sub event
// or a resync.
type keyCache struct {
	mu      sync.RWMutex
	byID    map[string]*cached
	byHash  map[store.Hash]*cached
	maxVer  int64 // highest version applied
	applied int64 // records applied, for tests
}

type cached struct {
	ver int64
	key *store.Key // immutable
}

func newKeyCache() *keyCache {
	return &keyCache{byID: make(map[string]*cached), byHash: make(map[store.Hash]*cached)}
}

// applyRecord installs a "<version>:<JSON>" record unless the cache holds
// the same key at a newer version, and returns the key the cache holds
// afterwards.
func (c *keyCache) applyRecord(rec string) (*store.Key, error) {
	ver, k, err := decodeRecord(rec)
	if err != nil {
		return nil, err
	}
	return c.apply(ver, k), nil
}

func (c *keyCache) apply(ver int64, k *store.Key) *store.Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.byID[k.ID]
	if old != nil && old.ver >= ver {
		return old.key
	}
	if old != nil && c.byHash[old.key.Hash] == old {
		delete(c.byHash, old.key.Hash)
	}
	e := &cached{ver: ver, key: k}
	c.byID[k.ID] = e
	c.byHash[k.Hash] = e
	c.maxVer = max(c.maxVer, ver)
	c.applied++
	return k
}

func (c *keyCache) byHashOf(h store.Hash) *store.Key {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.byHash[h]; e != nil {
		return e.key
	}
	return nil
}

func (c *keyCache) version() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.maxVer
}

func (c *keyCache) all() []*store.Key {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*store.Key, 0, len(c.byID))
	for _, e := range c.byID {
		out = append(out, e.key)
	}
	return out
}

// fullResync reloads every key record from Redis (HSCAN in pages).
func (s *Store) fullResync(ctx context.Context) error {
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, s.k.keys, cursor, "", 1000).Result()
		if err != nil {
			return s.unavailable("resync keys", err)
		}
		for i := 1; i < len(kv); i += 2 {
			if _, err := s.cache.applyRecord(kv[i]); err != nil {
				s.log.Error("redis: skipping a malformed key record", "id", kv[i-1], "err", err)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// syncIfStale reloads the cache when Redis has seen key changes the cache
// has not (events lost while the subscription was down).
func (s *Store) syncIfStale(ctx context.Context) error {
	v, err := s.rdb.Get(ctx, s.k.kver).Int64()
	if err != nil && err != redis.Nil {
		return s.unavailable("key version", err)
	}
	if v > s.cache.version() {
		return s.fullResync(ctx)
	}
	return nil
}

// watch applies key events from the pub/sub channel. Every (re)subscribe
// confirmation, at start and after a reconnect, asks for a full resync:
// events published while the subscription was down are lost.
func (s *Store) watch() {
	defer s.wg.Done()
	ps := s.ps
	down := false
	for {
		msg, err := ps.Receive(s.ctx)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			if !down {
				s.log.Warn("redis: key event subscription lost; reconnecting", "err", err)
				down = true
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if down {
				s.log.Info("redis: key event subscription restored; resyncing keys")
				down = false
			}
			s.requestResync()
		case *redis.Message:
			if _, err := s.cache.applyRecord(m.Payload); err != nil {
				s.log.Error("redis: bad key event", "err", err)
			}
		}
	}
}

func (s *Store) requestResync() {
	select {
	case s.resync <- struct{}{}:
	default:
	}
}

// syncLoop is the safety net under the events: every ResyncInterval it
// reloads the cache if Redis has changes the cache missed (every
// FullResyncEvery-th time, unconditionally), and retries the corrections
// (voids, refunds) that failed while Redis was down. A resync request
// (reconnect) runs one at once.
func (s *Store) syncLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.ResyncInterval)
	defer t.Stop()
	ticks := 0
	wasDown := false
	var retry <-chan time.Time // while Redis is down: try again soon
	for {
		full := false
		select {
		case <-s.ctx.Done():
			return
		case <-s.resync:
			full = true
		case <-retry:
			full = true
		case <-s.fixKick:
			// A correction was queued: apply it now if Redis answers.
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			s.fixes.retry(ctx, s)
			cancel()
			continue
		case <-t.C:
			ticks++
			full = ticks%s.opts.FullResyncEvery == 0
		}
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		var err error
		if full || wasDown {
			err = s.fullResync(ctx)
		} else {
			err = s.syncIfStale(ctx)
		}
		if err == nil {
			s.fixes.retry(ctx, s)
		}
		cancel()
		if err != nil && !wasDown && s.ctx.Err() == nil {
			s.log.Warn("redis: key resync failed; serving cached keys", "err", err)
		}
		wasDown = err != nil
		retry = nil
		if wasDown {
			// go-redis answers with its last dial error for up to a second
			// after Redis is back; do not wait a whole interval for that.
			retry = time.After(min(250*time.Millisecond, s.opts.ResyncInterval))
		}
	}
}

// fix is a correction that must reach Redis: a void of a Reserve whose
// outcome is unknown, or a refund that failed.
type fix struct {
	void   bool
	refund store.Refund
}

// fixQueue holds corrections until Redis answers again. It is bounded by
// the calls in flight when Redis went away, so it is small.
type fixQueue struct {
	mu sync.Mutex
	q  []fix
}

func (f *fixQueue) add(x fix) {
	f.mu.Lock()
	f.q = append(f.q, x)
	f.mu.Unlock()
}

func (f *fixQueue) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.q)
}

func (f *fixQueue) describe() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := ""
	for i, x := range f.q {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s/%s", x.refund.KeyID, x.refund.CallID)
	}
	return out
}

// retry applies the queued corrections in order, keeping those that still
// fail.
func (f *fixQueue) retry(ctx context.Context, s *Store) {
	f.mu.Lock()
	q := f.q
	f.q = nil
	f.mu.Unlock()
	var keep []fix
	for i, x := range q {
		var err error
		if x.void {
			err = s.void(ctx, x.refund)
		} else {
			_, err = s.refund(ctx, x.refund)
		}
		if errors.Is(err, store.ErrUnavailable) {
			keep = append(keep, q[i:]...)
			break
		}
		if err != nil {
			s.log.Error("redis: correction refused; check the ledger for this call", "key", x.refund.KeyID, "call", x.refund.CallID, "err", err)
			continue
		}
		s.log.Info("redis: correction applied", "void", x.void, "key", x.refund.KeyID, "call", x.refund.CallID)
	}
	if len(keep) > 0 {
		f.mu.Lock()
		f.q = append(keep, f.q...)
		f.mu.Unlock()
	}
}
