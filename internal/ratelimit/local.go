package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Options tunes a Local limiter. The zero value is usable.
type Options struct {
	// ExactMax is the largest limit counted exactly, with one timestamp per
	// call in the window (8 bytes each, allocated as calls arrive). Larger
	// limits use buckets. Default 128.
	ExactMax int64
	// Buckets is how many buckets a window is split into for limits above
	// ExactMax: memory per key is fixed ((Buckets+1)×8 bytes), and a call
	// stays counted until its whole bucket has left the window, up to
	// window/Buckets longer than exact. Default 60 (1 s for per-minute
	// limits).
	Buckets int
	// SweepInterval is how often each shard drops keys whose windows are
	// empty (judged by the window each key was last used with), so memory
	// follows the keys active in the last window. Sweeps
	// ride on calls; Sweep runs one on demand. Default 1 minute.
	SweepInterval time.Duration
	// Shards is the number of independently locked key maps, rounded up to
	// a power of two. Default 64.
	Shards int
}

// Local is an in-process Limiter: a sharded map of per-key sliding windows.
// It is safe for concurrent use and allocates only when it first sees a
// key or a key's call log grows.
type Local struct {
	exactMax int64
	buckets  int
	sweep    int64
	seed     maphash.Seed
	mask     uint64
	shards   []shard
}

var _ Limiter = (*Local)(nil)

type shard struct {
	mu        sync.Mutex
	m         map[string]*keyWindow
	nextSweep int64 // unix ns
	peak      int   // largest len(m) since the map was last rebuilt
	_         [40]byte
}

// NewLocal returns a Local limiter.
func NewLocal(o Options) *Local {
	if o.ExactMax <= 0 {
		o.ExactMax = 128
	}
	if o.Buckets <= 0 {
		o.Buckets = 60
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	n := 1
	for n < o.Shards || (o.Shards <= 0 && n < 64) {
		n <<= 1
	}
	l := &Local{
		exactMax: o.ExactMax,
		buckets:  o.Buckets,
		sweep:    int64(o.SweepInterval),
		seed:     maphash.MakeSeed(),
		mask:     uint64(n - 1),
		shards:   make([]shard, n),
	}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*keyWindow)
	}
	return l
}

// Allow implements Limiter.
func (l *Local) Allow(_ context.Context, key string, limit int64, window time.Duration, now time.Time) (Result, error) {
	return l.do(key, 1, limit, window, now, true)
}

// AllowN implements Limiter.
func (l *Local) AllowN(_ context.Context, key string, n, limit int64, window time.Duration, now time.Time) (Result, error) {
	return l.do(key, n, limit, window, now, true)
}

// Peek implements Limiter.
func (l *Local) Peek(_ context.Context, key string, limit int64, window time.Duration, now time.Time) (Result, error) {
	return l.do(key, 1, limit, window, now, false)
}

func (l *Local) do(key string, n, limit int64, window time.Duration, now time.Time, consume bool) (Result, error) {
	switch {
	case window <= 0:
		return Result{}, ErrInvalidWindow
	case n < 0:
		return Result{}, ErrInvalidCount
	case limit <= 0:
		return Result{Allowed: true, Reset: now}, nil
	}
	t, w := now.UnixNano(), int64(window)
	sh := &l.shards[maphash.String(l.seed, key)&l.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if t >= sh.nextSweep {
		sh.sweep(t)
		sh.nextSweep = t + l.sweep
	}
	win := sh.m[key]
	if win == nil {
		if !consume || n == 0 || n > limit {
			return emptyResult(n, limit, window, now, consume), nil
		}
		win = &keyWindow{}
		sh.m[key] = win
		sh.peak = max(sh.peak, len(sh.m))
	}
	return win.take(t, w, n, limit, consume, l.exactMax, l.buckets), nil
}

func emptyResult(n, limit int64, window time.Duration, now time.Time, consume bool) Result {
	if n > limit {
		return Result{Limit: limit, Remaining: limit, Reset: now, RetryAfter: window}
	}
	return Result{Allowed: true, Limit: limit, Remaining: limit, Reset: now}
}

// Sweep drops every key whose window is empty at now and returns how many
// keys remain. Calls sweep their own shard every SweepInterval; Sweep is for
// a ticker in quiet periods and for tests.
func (l *Local) Sweep(now time.Time) int {
	t, total := now.UnixNano(), 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		sh.sweep(t)
		sh.nextSweep = t + l.sweep
		total += len(sh.m)
		sh.mu.Unlock()
	}
	return total
}

// Len returns the number of keys currently tracked.
func (l *Local) Len() int {
	total := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		total += len(sh.m)
		sh.mu.Unlock()
	}
	return total
}

// sweep deletes empty windows. Go maps never shrink, so a map that has
// fallen well below its peak is copied into a fresh one.
func (sh *shard) sweep(t int64) {
	for k, w := range sh.m {
		if w.expires <= t {
			delete(sh.m, k)
		}
	}
	if sh.peak > 64 && len(sh.m) < sh.peak/4 {
		m := make(map[string]*keyWindow, len(sh.m))
		for k, w := range sh.m {
			m[k] = w
		}
		sh.m = m
		sh.peak = len(m)
	}
}
