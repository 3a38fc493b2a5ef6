package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

const minute = time.Minute

// step is one call in a scripted scenario.
type step struct {
	at        time.Duration // since t0
	n         int64         // 0 means 1
	peek      bool
	allowed   bool
	remaining int64
	reset     time.Duration // since t0
	retry     time.Duration
}

func runSteps(t *testing.T, l *Local, limit int64, window time.Duration, steps []step) {
	t.Helper()
	for i, s := range steps {
		n := s.n
		if n == 0 {
			n = 1
		}
		var r Result
		var err error
		switch {
		case s.peek:
			r, err = l.Peek(ctx, "k", limit, window, t0.Add(s.at))
		case n == 1:
			r, err = l.Allow(ctx, "k", limit, window, t0.Add(s.at))
		default:
			r, err = l.AllowN(ctx, "k", n, limit, window, t0.Add(s.at))
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		want := Result{Allowed: s.allowed, Limit: limit, Remaining: s.remaining, Reset: t0.Add(s.reset), RetryAfter: s.retry}
		if r.Allowed != want.Allowed || r.Limit != want.Limit || r.Remaining != want.Remaining ||
			!r.Reset.Equal(want.Reset) || r.RetryAfter != want.RetryAfter {
			t.Fatalf("step %d at +%v: got %+v\nwant %+v", i, s.at, r, want)
		}
	}
}

func TestExactWindow(t *testing.T) {
	s := time.Second
	tests := []struct {
		name   string
		limit  int64
		window time.Duration
		steps  []step
	}{
		{"first call leaves limit-1", 60, minute, []step{
			{at: 0, allowed: true, remaining: 59, reset: minute},
		}},
		{"fill, refuse, free at the exact instant", 3, minute, []step{
			{at: 0, allowed: true, remaining: 2, reset: minute},
			{at: 1 * s, allowed: true, remaining: 1, reset: minute},
			{at: 2 * s, allowed: true, remaining: 0, reset: minute},
			{at: 3 * s, allowed: false, remaining: 0, reset: minute, retry: 57 * s},
			{at: minute - 1, allowed: false, remaining: 0, reset: minute, retry: 1},
			{at: minute, allowed: true, remaining: 0, reset: minute + s},
			{at: minute + 500*time.Millisecond, allowed: false, remaining: 0, reset: minute + s, retry: 500 * time.Millisecond},
		}},
		{"refused calls are not counted", 1, minute, []step{
			{at: 0, allowed: true, remaining: 0, reset: minute},
			{at: 10 * s, allowed: false, remaining: 0, reset: minute, retry: 50 * s},
			{at: 20 * s, allowed: false, remaining: 0, reset: minute, retry: 40 * s},
			{at: minute, allowed: true, remaining: 0, reset: 2 * minute},
		}},
		{"batch all or nothing", 5, minute, []step{
			{at: 0, n: 3, allowed: true, remaining: 2, reset: minute},
			{at: s, n: 3, allowed: false, remaining: 2, reset: minute, retry: minute - s},
			{at: s, n: 2, allowed: true, remaining: 0, reset: minute},
			{at: minute, n: 3, allowed: true, remaining: 0, reset: minute + s},
		}},
		{"batch larger than the limit never fits", 2, minute, []step{
			{at: 0, n: 3, allowed: false, remaining: 2, reset: 0, retry: minute},
			{at: 0, allowed: true, remaining: 1, reset: minute},
			{at: s, n: 3, allowed: false, remaining: 1, reset: minute, retry: minute},
		}},
		{"batch waits for several calls to leave", 4, minute, []step{
			{at: 0, allowed: true, remaining: 3, reset: minute},
			{at: 10 * s, allowed: true, remaining: 2, reset: minute},
			{at: 20 * s, allowed: true, remaining: 1, reset: minute},
			{at: 30 * s, n: 3, allowed: false, remaining: 1, reset: minute, retry: 40 * s}, // needs 2 gone: the one at +10s leaves at +70s
		}},
		{"peek counts nothing", 2, minute, []step{
			{at: 0, peek: true, allowed: true, remaining: 2, reset: 0},
			{at: 0, allowed: true, remaining: 1, reset: minute},
			{at: s, peek: true, allowed: true, remaining: 1, reset: minute},
			{at: s, allowed: true, remaining: 0, reset: minute},
			{at: 2 * s, peek: true, allowed: false, remaining: 0, reset: minute, retry: minute - 2*s},
			{at: minute, peek: true, allowed: true, remaining: 1, reset: minute + s},
		}},
		{"zero-count batch counts nothing", 2, minute, []step{
			{at: 0, allowed: true, remaining: 1, reset: minute},
		}},
		{"time going backwards counts at the newest time", 2, minute, []step{
			{at: 10 * s, allowed: true, remaining: 1, reset: minute + 10*s},
			{at: 5 * s, allowed: true, remaining: 0, reset: minute + 10*s},
			{at: minute + 10*s, allowed: true, remaining: 1, reset: minute + 10*s + minute}, // both left at +70s
		}},
		{"short window", 2, 10 * time.Millisecond, []step{
			{at: 0, allowed: true, remaining: 1, reset: 10 * time.Millisecond},
			{at: 0, allowed: true, remaining: 0, reset: 10 * time.Millisecond},
			{at: time.Millisecond, allowed: false, remaining: 0, reset: 10 * time.Millisecond, retry: 9 * time.Millisecond},
			{at: 10 * time.Millisecond, n: 2, allowed: true, remaining: 0, reset: 20 * time.Millisecond},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, NewLocal(Options{}), tc.limit, tc.window, tc.steps)
		})
	}
}

func TestUnlimitedAndInvalid(t *testing.T) {
	l := NewLocal(Options{})
	tests := []struct {
		name    string
		run     func() (Result, error)
		allowed bool
		wantErr error
	}{
		{"limit 0 is unlimited", func() (Result, error) { return l.Allow(ctx, "k", 0, minute, t0) }, true, nil},
		{"negative limit is unlimited", func() (Result, error) { return l.AllowN(ctx, "k", 1000, -1, minute, t0) }, true, nil},
		{"zero window", func() (Result, error) { return l.Allow(ctx, "k", 5, 0, t0) }, false, ErrInvalidWindow},
		{"negative window", func() (Result, error) { return l.Peek(ctx, "k", 5, -minute, t0) }, false, ErrInvalidWindow},
		{"negative count", func() (Result, error) { return l.AllowN(ctx, "k", -1, 5, minute, t0) }, false, ErrInvalidCount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.run()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if r.Allowed != tc.allowed {
				t.Fatalf("allowed = %v", r.Allowed)
			}
		})
	}
	if l.Len() != 0 {
		t.Fatalf("unlimited or invalid calls created %d keys", l.Len())
	}
}

func TestKeysAreIndependent(t *testing.T) {
	l := NewLocal(Options{})
	for i := range 3 {
		for _, k := range []string{"a", "b", "key_1:search"} {
			r, _ := l.Allow(ctx, k, 3, minute, t0)
			if !r.Allowed || r.Remaining != int64(2-i) {
				t.Fatalf("key %s call %d: %+v", k, i, r)
			}
		}
	}
}

// model is a brute-force sliding window: the list of admitted times.
type model struct{ ts []time.Time }

func (m *model) allow(n, limit int64, w time.Duration, now time.Time) (bool, int64) {
	live := m.ts[:0:0]
	for _, x := range m.ts {
		if x.Add(w).After(now) {
			live = append(live, x)
		}
	}
	m.ts = live
	if int64(len(live))+n > limit {
		return false, limit - int64(len(live))
	}
	for range n {
		m.ts = append(m.ts, now)
	}
	return true, limit - int64(len(m.ts))
}

// TestExactMatchesModel drives the exact form and a brute-force model with
// the same random calls: every decision and Remaining must agree.
func TestExactMatchesModel(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			l := NewLocal(Options{})
			var m model
			limit := 1 + rng.Int64N(20)
			now := t0
			for i := range 2000 {
				now = now.Add(time.Duration(rng.Int64N(int64(10 * time.Second))))
				n := 1 + rng.Int64N(3)
				r, err := l.AllowN(ctx, "k", n, limit, minute, now)
				if err != nil {
					t.Fatal(err)
				}
				ok, rem := m.allow(n, limit, minute, now)
				if r.Allowed != ok || r.Remaining != rem {
					t.Fatalf("call %d (n=%d, limit=%d): got allowed=%v remaining=%d, model %v %d", i, n, limit, r.Allowed, r.Remaining, ok, rem)
				}
				if !r.Allowed && n <= limit {
					// Retrying at exactly RetryAfter fits; a nanosecond earlier does not.
					early := now.Add(r.RetryAfter - 1)
					if p, _ := l.AllowN(ctx, "probe", 0, limit, minute, early); !p.Allowed {
						t.Fatal("zero-count probe refused")
					}
					var probe model
					probe.ts = append(probe.ts, m.ts...)
					if fits, _ := probe.allow(n, limit, minute, early); fits && r.RetryAfter > 0 {
						t.Fatalf("call %d: model fits before RetryAfter %v", i, r.RetryAfter)
					}
					probe.ts = append(probe.ts[:0], m.ts...)
					if fits, _ := probe.allow(n, limit, minute, now.Add(r.RetryAfter)); !fits {
						t.Fatalf("call %d: model does not fit at RetryAfter %v", i, r.RetryAfter)
					}
				}
			}
		})
	}
}

// TestBucketedNeverOveradmits checks the bucketed form's guarantee: in any
// window no more than limit calls are admitted, and a refused call is
// admitted once a window plus one bucket has passed.
func TestBucketedNeverOveradmits(t *testing.T) {
	const limit = 500
	for seed := range uint64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 2))
			l := NewLocal(Options{ExactMax: 10, Buckets: 12})
			var admitted []time.Time
			now := t0
			for range 20000 {
				now = now.Add(time.Duration(rng.Int64N(int64(200 * time.Millisecond))))
				r, err := l.Allow(ctx, "k", limit, minute, now)
				if err != nil {
					t.Fatal(err)
				}
				if r.Allowed {
					admitted = append(admitted, now)
				} else if r.RetryAfter <= 0 || r.RetryAfter > minute+5*time.Second {
					t.Fatalf("RetryAfter %v out of range", r.RetryAfter)
				}
			}
			// Sliding check over admitted times.
			j := 0
			for i := range admitted {
				for admitted[j].Add(minute).Compare(admitted[i]) <= 0 {
					j++
				}
				if i-j+1 > limit {
					t.Fatalf("%d calls admitted in one window ending %v", i-j+1, admitted[i])
				}
			}
			if len(admitted) < 20000*limit/600*9/10 {
				t.Fatalf("only %d admitted: bucketing is far too strict", len(admitted))
			}
			r, _ := l.Peek(ctx, "k", limit, minute, now.Add(minute+5*time.Second))
			if !r.Allowed || r.Remaining != limit {
				t.Fatalf("after a window and a bucket: %+v", r)
			}
		})
	}
}

func TestBucketedSteps(t *testing.T) {
	s := time.Second
	// ExactMax 1 makes limit 4 bucketed; 6 buckets of 10 s over a minute.
	l := NewLocal(Options{ExactMax: 1, Buckets: 6})
	runSteps(t, l, 4, minute, []step{
		{at: 0, allowed: true, remaining: 3, reset: minute + 10*s},
		{at: 5 * s, n: 2, allowed: true, remaining: 1, reset: minute + 10*s},
		{at: 15 * s, allowed: true, remaining: 0, reset: minute + 10*s},
		{at: 20 * s, allowed: false, remaining: 0, reset: minute + 10*s, retry: 50 * s},
		{at: 20 * s, n: 4, allowed: false, remaining: 0, reset: minute + 10*s, retry: 60 * s}, // needs the +15s bucket gone too
		{at: minute + 10*s, allowed: true, remaining: 2, reset: minute + 20*s},                // the first bucket (3 calls) has left
	})
}

func TestConvertExactToBuckets(t *testing.T) {
	l := NewLocal(Options{ExactMax: 10, Buckets: 6})
	for i := range 8 {
		if r, _ := l.Allow(ctx, "k", 10, minute, t0.Add(time.Duration(i)*time.Second)); !r.Allowed {
			t.Fatalf("call %d refused", i)
		}
	}
	// A reload raises the limit past ExactMax: the 8 calls stay counted.
	r, _ := l.Allow(ctx, "k", 20, minute, t0.Add(9*time.Second))
	if !r.Allowed || r.Remaining != 11 {
		t.Fatalf("after conversion: %+v", r)
	}
	// Lowering it again keeps the bucketed form, still counting 9 calls.
	r, _ = l.Peek(ctx, "k", 5, minute, t0.Add(10*time.Second))
	if r.Allowed || r.Remaining != 0 {
		t.Fatalf("lowered limit: %+v", r)
	}
	// Everything is gone after the window plus a bucket.
	r, _ = l.Peek(ctx, "k", 20, minute, t0.Add(minute+10*time.Second))
	if !r.Allowed || r.Remaining != 20 {
		t.Fatalf("after the window: %+v", r)
	}
}

func TestWindowChange(t *testing.T) {
	for _, exactMax := range []int64{100, 1} {
		t.Run(fmt.Sprint("exactMax ", exactMax), func(t *testing.T) {
			// No sweep: a key idle under its old window may be swept.
			l := NewLocal(Options{ExactMax: exactMax, Buckets: 6, SweepInterval: time.Hour})
			for range 3 {
				l.Allow(ctx, "k", 5, minute, t0)
			}
			// A longer window keeps the calls counted...
			r, _ := l.Allow(ctx, "k", 5, 2*minute, t0.Add(30*time.Second))
			if !r.Allowed || r.Remaining != 1 {
				t.Fatalf("after lengthening: %+v", r)
			}
			// ...past the end of the old one.
			r, _ = l.Peek(ctx, "k", 5, 2*minute, t0.Add(100*time.Second))
			if !r.Allowed || r.Remaining != 1 {
				t.Fatalf("past the old window: %+v", r)
			}
			r, _ = l.Peek(ctx, "k", 5, 2*minute, t0.Add(4*minute))
			if !r.Allowed || r.Remaining != 5 {
				t.Fatalf("long after: %+v", r)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	l := NewLocal(Options{SweepInterval: 10 * time.Second, Shards: 4})
	for i := range 1000 {
		l.Allow(ctx, fmt.Sprint("k", i), 10, minute, t0)
	}
	l.Allow(ctx, "late", 10, 2*minute, t0.Add(30*time.Second))
	if got := l.Len(); got != 1001 {
		t.Fatalf("Len = %d", got)
	}
	if got := l.Sweep(t0.Add(minute - 1)); got != 1001 {
		t.Fatalf("swept live keys: %d left", got)
	}
	if got := l.Sweep(t0.Add(minute)); got != 1 {
		t.Fatalf("after the window: %d keys left, want 1", got)
	}
	// Calls sweep their own shard once the interval has passed.
	l2 := NewLocal(Options{SweepInterval: 10 * time.Second, Shards: 1})
	for i := range 100 {
		l2.Allow(ctx, fmt.Sprint("k", i), 10, minute, t0)
	}
	l2.Allow(ctx, "x", 10, minute, t0.Add(minute+10*time.Second))
	if got := l2.Len(); got != 1 {
		t.Fatalf("auto sweep left %d keys, want 1", got)
	}
	// A swept key starts afresh.
	r, _ := l2.Allow(ctx, "k1", 10, minute, t0.Add(2*minute))
	if r.Remaining != 9 {
		t.Fatalf("fresh key: %+v", r)
	}
}

// TestConcurrentNeverOveradmits hammers one key from many goroutines: with
// a frozen clock exactly limit calls get through.
func TestConcurrentNeverOveradmits(t *testing.T) {
	for _, limit := range []int64{50, 1000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			l := NewLocal(Options{})
			var ok atomic.Int64
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 400 {
						n := int64(1 + (g+i)%2)
						if r, _ := l.AllowN(ctx, "hot", n, limit, minute, t0); r.Allowed {
							ok.Add(n)
						}
					}
				}()
			}
			wg.Wait()
			if got := ok.Load(); got != limit {
				t.Fatalf("admitted %d, want %d", got, limit)
			}
		})
	}
}

func BenchmarkAllowSingleKeyParallel(b *testing.B) {
	for _, limit := range []int64{60, 1_000_000} {
		b.Run(fmt.Sprint("limit=", limit), func(b *testing.B) {
			l := NewLocal(Options{})
			var clock atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					now := t0.Add(time.Duration(clock.Add(int64(time.Millisecond))))
					if _, err := l.Allow(ctx, "key_0123456789abcdef", limit, minute, now); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkAllow100kKeys(b *testing.B) {
	const nkeys = 100_000
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key_%016x", i)
	}
	for _, limit := range []int64{60, 1_000_000} {
		b.Run(fmt.Sprint("limit=", limit), func(b *testing.B) {
			l := NewLocal(Options{})
			var clock, next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					now := t0.Add(time.Duration(clock.Add(int64(10 * time.Microsecond))))
					if _, err := l.Allow(ctx, keys[i%nkeys], limit, minute, now); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
