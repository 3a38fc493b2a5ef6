// Package redislimit is a ratelimit.Limiter on Redis, so that every
// gateway instance of a fleet counts against the same windows.
//
// Each key's window is a Redis list of the microsecond times of the calls
// it admitted, oldest first: one Lua script per call drops the calls that
// left the window, counts, and admits n calls whole or not at all, so the
// counting is exact (Remaining is limit minus the calls in the window) at
// microsecond resolution. A list holds at most limit entries and expires
// with its window.
//
// When Redis cannot be reached the limiter fails open (admits, like
// paygate-mcp) or closed (refuses with store.ErrUnavailable, which the gate
// answers as store_unavailable), as configured. Failing open is logged at
// most once per LogInterval.
package redislimit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/store"
)

// Options configure a Limiter.
type Options struct {
	// Prefix is the fleet's key prefix (the store's); windows live under
	// "{Prefix}:rl:<key>", in the store's cluster slot.
	Prefix string
	// FailOpen admits calls while Redis is unreachable; otherwise they are
	// refused with store.ErrUnavailable.
	FailOpen bool
	Logger   *slog.Logger
	// LogInterval is the least time between two "failing open" logs
	// (default 1 minute).
	LogInterval time.Duration
}

// Limiter is the Redis implementation of ratelimit.Limiter.
type Limiter struct {
	rdb         redis.Scripter
	tag         string
	failOpen    bool
	log         *slog.Logger
	logInterval int64
	lastLog     atomic.Int64 // unix ns of the last failing-open log
	failures    atomic.Int64
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter on rdb (the store's client).
func New(rdb redis.Scripter, o Options) *Limiter {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LogInterval <= 0 {
		o.LogInterval = time.Minute
	}
	if o.Prefix == "" {
		o.Prefix = "paygate"
	}
	return &Limiter{rdb: rdb, tag: "{" + o.Prefix + "}:rl:", failOpen: o.FailOpen, log: o.Logger,
		logInterval: int64(o.LogInterval)}
}

// Failures reports how many calls met an unreachable Redis.
func (l *Limiter) Failures() int64 { return l.failures.Load() }

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, limit int64, window time.Duration, now time.Time) (ratelimit.Result, error) {
	return l.do(ctx, key, 1, limit, window, now, true)
}

// AllowN implements ratelimit.Limiter.
func (l *Limiter) AllowN(ctx context.Context, key string, n, limit int64, window time.Duration, now time.Time) (ratelimit.Result, error) {
	return l.do(ctx, key, n, limit, window, now, true)
}

// Peek implements ratelimit.Limiter.
func (l *Limiter) Peek(ctx context.Context, key string, limit int64, window time.Duration, now time.Time) (ratelimit.Result, error) {
	return l.do(ctx, key, 1, limit, window, now, false)
}

// scWindow: KEYS window list; ARGV now (µs), window (µs), n, limit,
// consume. Returns allowed, count after, reset (µs), retry (µs).
var scWindow = redis.NewScript(`
local key = KEYS[1]
local t, w, n, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function fmt(x) return string.format('%d', x) end
local len = redis.call('LLEN', key)
if len > 0 then
  local newest = tonumber(redis.call('LINDEX', key, -1))
  if newest > t then t = newest end
  while len > 0 and tonumber(redis.call('LINDEX', key, 0)) + w <= t do
    redis.call('LPOP', key)
    len = len - 1
  end
end
local allowed, retry = 0, 0
if len + n <= limit then
  allowed = 1
  if ARGV[5] == '1' and n > 0 then
    local ts = fmt(t)
    local left = n
    while left > 0 do
      local batch = {}
      for i = 1, math.min(left, 100) do batch[i] = ts end
      redis.call('RPUSH', key, unpack(batch))
      left = left - #batch
    end
    len = len + n
    redis.call('PEXPIRE', key, math.ceil(w / 1000) + 1)
  end
elseif n > limit then
  retry = w
else
  retry = tonumber(redis.call('LINDEX', key, len + n - limit - 1)) + w - t
end
local reset = t
if len > 0 then reset = tonumber(redis.call('LINDEX', key, 0)) + w end
return {allowed, fmt(len), fmt(reset), fmt(retry)}
`)

func (l *Limiter) do(ctx context.Context, key string, n, limit int64, window time.Duration, now time.Time, consume bool) (ratelimit.Result, error) {
	switch {
	case window <= 0:
		return ratelimit.Result{}, ratelimit.ErrInvalidWindow
	case n < 0:
		return ratelimit.Result{}, ratelimit.ErrInvalidCount
	case limit <= 0:
		return ratelimit.Result{Allowed: true, Reset: now}, nil
	}
	c := "0"
	if consume {
		c = "1"
	}
	w := max(window.Microseconds(), 1)
	res, err := scWindow.Run(ctx, l.rdb, []string{l.tag + key}, now.UnixMicro(), w, n, limit, c).Slice()
	if err != nil || len(res) != 4 {
		if err == nil {
			err = fmt.Errorf("unexpected reply %v", res)
		}
		return l.unreachable(key, limit, now, err)
	}
	allowed, _ := res[0].(int64)
	count := parse(res[1])
	r := ratelimit.Result{
		Allowed:   allowed == 1,
		Limit:     limit,
		Remaining: max(limit-count, 0),
		Reset:     time.UnixMicro(parse(res[2])),
	}
	if !r.Allowed {
		r.RetryAfter = time.Duration(parse(res[3])) * time.Microsecond
	}
	return r, nil
}

func parse(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// unreachable answers a call Redis could not count: admitted when failing
// open, refused with store.ErrUnavailable when failing closed.
func (l *Limiter) unreachable(key string, limit int64, now time.Time, err error) (ratelimit.Result, error) {
	l.failures.Add(1)
	if !l.failOpen {
		return ratelimit.Result{}, fmt.Errorf("rate limit %s: %w: %w", key, store.ErrUnavailable, err)
	}
	t := time.Now().UnixNano()
	if last := l.lastLog.Load(); t-last >= l.logInterval && l.lastLog.CompareAndSwap(last, t) {
		l.log.Warn("redis rate limiter unreachable; admitting calls uncounted (fail open)",
			"err", err, "failures", l.failures.Load())
	}
	return ratelimit.Result{Allowed: true, Limit: limit, Remaining: limit, Reset: now}, nil
}
