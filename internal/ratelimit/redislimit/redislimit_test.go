package redislimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/testenv"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func client(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	return c
}

type step struct {
	at        time.Duration
	n         int64 // 0 means 1
	peek      bool
	allowed   bool
	remaining int64
	reset     time.Duration
	retry     time.Duration
}

// TestWindow runs the Local limiter's scripted scenarios (at microsecond
// resolution) against Redis.
func TestWindow(t *testing.T) {
	addr, _ := testenv.RedisServer(t)
	s := time.Second
	minute := time.Minute
	tests := []struct {
		name  string
		limit int64
		steps []step
	}{
		{"first call leaves limit-1", 60, []step{{at: 0, allowed: true, remaining: 59, reset: minute}}},
		{"fill, refuse, free at the exact instant", 3, []step{
			{at: 0, allowed: true, remaining: 2, reset: minute},
			{at: s, allowed: true, remaining: 1, reset: minute},
			{at: 2 * s, allowed: true, remaining: 0, reset: minute},
			{at: 3 * s, allowed: false, remaining: 0, reset: minute, retry: 57 * s},
			{at: minute - time.Microsecond, allowed: false, remaining: 0, reset: minute, retry: time.Microsecond},
			{at: minute, allowed: true, remaining: 0, reset: minute + s},
		}},
		{"refused calls are not counted", 1, []step{
			{at: 0, allowed: true, remaining: 0, reset: minute},
			{at: 10 * s, allowed: false, remaining: 0, reset: minute, retry: 50 * s},
			{at: minute, allowed: true, remaining: 0, reset: 2 * minute},
		}},
		{"batch all or nothing", 5, []step{
			{at: 0, n: 3, allowed: true, remaining: 2, reset: minute},
			{at: s, n: 3, allowed: false, remaining: 2, reset: minute, retry: minute - s},
			{at: s, n: 2, allowed: true, remaining: 0, reset: minute},
			{at: minute, n: 3, allowed: true, remaining: 0, reset: minute + s},
		}},
		{"batch larger than the limit never fits", 2, []step{
			{at: 0, n: 3, allowed: false, remaining: 2, reset: 0, retry: minute},
			{at: 0, allowed: true, remaining: 1, reset: minute},
		}},
		{"batch waits for several calls to leave", 4, []step{
			{at: 0, allowed: true, remaining: 3, reset: minute},
			{at: 10 * s, allowed: true, remaining: 2, reset: minute},
			{at: 20 * s, allowed: true, remaining: 1, reset: minute},
			{at: 30 * s, n: 3, allowed: false, remaining: 1, reset: minute, retry: 40 * s},
		}},
		{"peek counts nothing", 2, []step{
			{at: 0, peek: true, allowed: true, remaining: 2, reset: 0},
			{at: 0, allowed: true, remaining: 1, reset: minute},
			{at: s, allowed: true, remaining: 0, reset: minute},
			{at: 2 * s, peek: true, allowed: false, remaining: 0, reset: minute, retry: minute - 2*s},
		}},
		{"time going backwards counts at the newest time", 2, []step{
			{at: 10 * s, allowed: true, remaining: 1, reset: minute + 10*s},
			{at: 5 * s, allowed: true, remaining: 0, reset: minute + 10*s},
			{at: minute + 10*s, allowed: true, remaining: 1, reset: 2*minute + 10*s},
		}},
	}
	l := New(client(t, addr), Options{Prefix: "window"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.name
			for i, st := range tc.steps {
				n := max(st.n, 1)
				now := t0.Add(st.at)
				var r ratelimit.Result
				var err error
				switch {
				case st.peek:
					r, err = l.Peek(ctx, key, tc.limit, minute, now)
				default:
					r, err = l.AllowN(ctx, key, n, tc.limit, minute, now)
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				want := ratelimit.Result{Allowed: st.allowed, Limit: tc.limit, Remaining: st.remaining, Reset: t0.Add(st.reset), RetryAfter: st.retry}
				if r.Allowed != want.Allowed || r.Remaining != want.Remaining || !r.Reset.Equal(want.Reset) || r.RetryAfter != want.RetryAfter || r.Limit != want.Limit {
					t.Fatalf("step %d at +%v: got %+v\nwant %+v", i, st.at, r, want)
				}
			}
		})
	}
	if r, err := l.Allow(ctx, "unlimited", 0, minute, t0); err != nil || !r.Allowed {
		t.Fatalf("limit 0: %+v %v", r, err)
	}
	if _, err := l.Allow(ctx, "k", 1, 0, t0); !errors.Is(err, ratelimit.ErrInvalidWindow) {
		t.Fatalf("zero window: %v", err)
	}
}

// TestSharedNeverOveradmits races two limiters (two instances, two
// connections) on one key: exactly limit calls are admitted.
func TestSharedNeverOveradmits(t *testing.T) {
	addr, _ := testenv.RedisServer(t)
	ls := []*Limiter{New(client(t, addr), Options{Prefix: "race"}), New(client(t, addr), Options{Prefix: "race"})}
	const limit = 50
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(i%3 + 1)
			r, err := ls[i%2].AllowN(ctx, "shared", n, limit, time.Minute, t0)
			if err != nil {
				t.Error(err)
				return
			}
			if r.Allowed {
				admitted.Add(n)
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got > limit || got < limit-2 {
		t.Fatalf("admitted %d calls, want %d (or just under: batches of up to 3 fit or not)", got, limit)
	}
	r, err := ls[0].Peek(ctx, "shared", limit, time.Minute, t0)
	if err != nil || r.Remaining != limit-admitted.Load() {
		t.Fatalf("peek after the race: %+v %v (admitted %d)", r, err, admitted.Load())
	}
}

// TestUnreachable checks both failure modes with Redis down.
func TestUnreachable(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	c := client(t, r.Addr)
	open := New(c, Options{Prefix: "f", FailOpen: true})
	closed := New(c, Options{Prefix: "f"})
	if res, err := closed.Allow(ctx, "k", 1, time.Minute, t0); err != nil || !res.Allowed {
		t.Fatalf("before the outage: %+v %v", res, err)
	}
	r.Kill()
	for i := range 3 {
		res, err := open.Allow(ctx, "k", 1, time.Minute, t0)
		if err != nil || !res.Allowed {
			t.Fatalf("fail open, call %d: %+v %v", i, res, err)
		}
	}
	if _, err := closed.Allow(ctx, "k", 1, time.Minute, t0); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("fail closed: %v, want store.ErrUnavailable", err)
	}
	r.Restart()
	// AOF kept the first call: the window is full again.
	var res ratelimit.Result
	var err error
	for range 50 { // the pool redials on its own
		if res, err = closed.Allow(ctx, "k", 1, time.Minute, t0.Add(time.Second)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || res.Allowed {
		t.Fatalf("after restart: %+v %v, want a refusal from the restored window", res, err)
	}
	if open.Failures() != 3 || closed.Failures() < 1 {
		t.Fatalf("failures %d / %d", open.Failures(), closed.Failures())
	}
}
