package gate

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// keyed returns c with its key set, as authentication leaves it.
func keyed(c *Call, id string) *Call {
	k := goodKey()
	k.ID = id
	c.Key = k
	return c
}

func TestConcurrencyCaps(t *testing.T) {
	tests := []struct {
		name      string
		limits    ConcurrencyLimits
		held      []*Call // calls already in flight
		call      *Call
		want      Reason
		wantIndex int
	}{
		{"no caps", ConcurrencyLimits{}, []*Call{keyed(call("search"), "k1"), keyed(call("search"), "k1")},
			keyed(call("search"), "k1"), "", 0},
		{"per key: under the cap", ConcurrencyLimits{PerKey: 2}, []*Call{keyed(call("search"), "k1")},
			keyed(call("search"), "k1"), "", 0},
		{"per key: at the cap", ConcurrencyLimits{PerKey: 2}, []*Call{keyed(call("a"), "k1"), keyed(call("b"), "k1")},
			keyed(call("search"), "k1"), ConcurrencyLimited, 0},
		{"per key: other keys do not count", ConcurrencyLimits{PerKey: 1}, []*Call{keyed(call("search"), "k2")},
			keyed(call("search"), "k1"), "", 0},
		{"per tool: across keys", ConcurrencyLimits{Tools: map[string]int64{"search": 2}},
			[]*Call{keyed(call("search"), "k2"), keyed(call("search"), "k3")}, keyed(call("search"), "k1"), ConcurrencyLimited, 0},
		{"per tool: other tools do not count", ConcurrencyLimits{Tools: map[string]int64{"search": 1}},
			[]*Call{keyed(call("fetch"), "k2")}, keyed(call("search"), "k1"), "", 0},
		{"batch: each item is a call", ConcurrencyLimits{PerKey: 3}, []*Call{keyed(call("a"), "k1")},
			keyed(batch("a", "b", "c"), "k1"), ConcurrencyLimited, 0},
		{"batch: the tool's first item over its cap", ConcurrencyLimits{Tools: map[string]int64{"b": 2}},
			[]*Call{keyed(call("b"), "k2")}, keyed(batch("a", "b", "b", "c"), "k1"), ConcurrencyLimited, 2},
		{"batch: fits", ConcurrencyLimits{PerKey: 4, Tools: map[string]int64{"b": 2}}, nil,
			keyed(batch("a", "b", "b", "c"), "k1"), "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := NewConcurrency(tc.limits)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tc.held {
				if err := cc.acquire(h); err != nil {
					t.Fatalf("holding: %v", err)
				}
			}
			err = concurrency{cc}.Check(bg, tc.call)
			d := denial(t, err)
			switch {
			case tc.want == "" && d != nil:
				t.Fatalf("denied: %v", d)
			case tc.want != "" && (d == nil || d.Reason != tc.want):
				t.Fatalf("got %v, want %s", d, tc.want)
			case d != nil:
				if d.RetryAfter != time.Second || d.Index != tc.wantIndex || d.Detail == "" {
					t.Fatalf("denial %+v", d)
				}
				if got := cc.Status().Rejections; got != 1 {
					t.Fatalf("rejections %d", got)
				}
			}
			// Settling everything leaves nothing in flight.
			tc.call.Settle()
			for _, h := range tc.held {
				h.Settle()
			}
			if s := cc.Status(); len(s.InFlight.Keys) != 0 || len(s.InFlight.Tools) != 0 {
				t.Fatalf("in flight after settling: %+v", s.InFlight)
			}
		})
	}
}

func TestConcurrencySlotComesBack(t *testing.T) {
	cc, _ := NewConcurrency(ConcurrencyLimits{PerKey: 1})
	first := keyed(call("search"), "k1")
	if err := cc.acquire(first); err != nil {
		t.Fatal(err)
	}
	if d := denial(t, cc.acquire(keyed(call("search"), "k1"))); d == nil {
		t.Fatal("second call admitted")
	}
	first.Settle()
	first.Settle() // settling twice gives back one slot, once
	second := keyed(call("search"), "k1")
	if err := cc.acquire(second); err != nil {
		t.Fatalf("after settle: %v", err)
	}
	if s := cc.Status(); s.InFlight.Keys["k1"] != 1 || s.InFlight.Tools["search"] != 1 {
		t.Fatalf("in flight %+v", s.InFlight)
	}

	// The caps change while second is in flight: it still gives back
	// exactly its slot.
	if err := cc.SetLimits(ConcurrencyLimits{}); err != nil {
		t.Fatal(err)
	}
	second.Settle()
	if s := cc.Status(); len(s.InFlight.Keys) != 0 || len(s.InFlight.Tools) != 0 {
		t.Fatalf("in flight %+v", s.InFlight)
	}
}

// TestConcurrencyLaterDenial: a call the concurrency check admitted but a
// later check refused holds its slot until the pipeline settles it.
func TestConcurrencyLaterDenial(t *testing.T) {
	e := newEnv(t, policy.Settings{}, func(_ *store.Key, a *store.Account) { a.Balance = 0 })
	if err := e.conc.SetLimits(ConcurrencyLimits{PerKey: 1}); err != nil {
		t.Fatal(err)
	}
	c := call("search")
	expect(t, e.chain.Run(bg, c, false), InsufficientCredits, "credits")
	if n := e.conc.Status().InFlight.Keys[keyID]; n != 1 {
		t.Fatalf("in flight before settle: %d", n)
	}
	c.Settle()
	if n := e.conc.Status().InFlight.Keys[keyID]; n != 0 {
		t.Fatalf("in flight after settle: %d", n)
	}
}

func TestConcurrencyShadow(t *testing.T) {
	e := newEnv(t, policy.Settings{Shadow: true}, nil)
	_ = e.conc.SetLimits(ConcurrencyLimits{PerKey: 1})
	held := call("search")
	if err := e.chain.Run(bg, held, true); err != nil || len(held.Shadow) != 0 {
		t.Fatalf("first: %v %v", err, held.Shadow)
	}
	c := call("search")
	if err := e.chain.Run(bg, c, true); err != nil || len(c.Shadow) != 1 || c.Shadow[0] != ConcurrencyLimited {
		t.Fatalf("second: %v %v", err, c.Shadow)
	}
	c.Settle()
	held.Settle()
	if s := e.conc.Status(); len(s.InFlight.Keys) != 0 {
		t.Fatalf("in flight %+v", s.InFlight)
	}
}

func TestConcurrencyUpdate(t *testing.T) {
	cc, _ := NewConcurrency(ConcurrencyLimits{PerKey: 2, Tools: map[string]int64{"a": 1}})
	err := cc.Update(func(l *ConcurrencyLimits) { l.Tools["b"] = 3; l.Tools["a"] = 0 })
	if err != nil {
		t.Fatal(err)
	}
	if l := cc.Limits(); l.PerKey != 2 || len(l.Tools) != 1 || l.Tools["b"] != 3 {
		t.Fatalf("limits %+v", l)
	}
	for _, bad := range []ConcurrencyLimits{{PerKey: -1}, {Tools: map[string]int64{"a": -2}}} {
		if err := cc.SetLimits(bad); !errors.Is(err, ErrNegativeLimit) {
			t.Fatalf("SetLimits(%+v) = %v", bad, err)
		}
	}
	if l := cc.Limits(); l.PerKey != 2 {
		t.Fatalf("a refused update changed the limits: %+v", l)
	}
	if _, err := NewConcurrency(ConcurrencyLimits{PerKey: -1}); err == nil {
		t.Fatal("negative cap accepted")
	}
}

func TestConcurrencyErrorShape(t *testing.T) {
	cc, _ := NewConcurrency(ConcurrencyLimits{PerKey: 1})
	_ = cc.acquire(keyed(call("a"), "k1"))
	d := denial(t, cc.acquire(keyed(call("a"), "k1")))
	we := ErrorFor(d, "")
	if we.Code != mcp.CodeConcurrencyLimited {
		t.Fatalf("code %d", we.Code)
	}
	if string(we.Data) != `{"reason":"concurrency_limited","creditsRequired":0,"remainingCredits":0,"retryAfter":1}` {
		t.Fatalf("data %s", we.Data)
	}
}

// TestConcurrencyNoCapsFree: without caps the check takes no lock, keeps
// no count and allocates nothing.
func TestConcurrencyNoCapsFree(t *testing.T) {
	cc, _ := NewConcurrency(ConcurrencyLimits{})
	c := keyed(call("search"), "k1")
	allocs := testing.AllocsPerRun(100, func() {
		if err := cc.acquire(c); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || c.onSettle != nil {
		t.Fatalf("%v allocations, %d settle hooks", allocs, len(c.onSettle))
	}
}

func TestConcurrencyRace(t *testing.T) {
	const limit = 4
	cc, _ := NewConcurrency(ConcurrencyLimits{PerKey: limit, Tools: map[string]int64{"search": limit}})
	var inFlight, peak, admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				c := keyed(call("search"), "k1")
				if cc.acquire(c) != nil {
					continue
				}
				admitted.Add(1)
				n := inFlight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				if g%2 == 0 {
					time.Sleep(time.Microsecond)
				}
				inFlight.Add(-1)
				c.Settle()
			}
		}()
	}
	wg.Wait()
	if peak.Load() > limit || admitted.Load() == 0 {
		t.Fatalf("peak %d (cap %d), admitted %d", peak.Load(), limit, admitted.Load())
	}
	if s := cc.Status(); len(s.InFlight.Keys) != 0 || len(s.InFlight.Tools) != 0 {
		t.Fatalf("leaked slots %+v", s.InFlight)
	}
}

func BenchmarkConcurrencyCheck(b *testing.B) {
	for _, tc := range []struct {
		name   string
		limits ConcurrencyLimits
	}{
		{"off", ConcurrencyLimits{}},
		{"on", ConcurrencyLimits{PerKey: 8, Tools: map[string]int64{"search": 8}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cc, _ := NewConcurrency(tc.limits)
			c := keyed(call("search"), "k1")
			b.ReportAllocs()
			for b.Loop() {
				if err := cc.acquire(c); err != nil {
					b.Fatal(err)
				}
				c.Settle()
			}
		})
	}
}
