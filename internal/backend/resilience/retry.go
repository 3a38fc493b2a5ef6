package resilience

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// Retry defaults.
const (
	DefaultMaxRetries    = 2
	DefaultBaseDelay     = 100 * time.Millisecond
	DefaultMaxDelay      = time.Second
	DefaultBudgetPercent = 10
	// DefaultBudgetFloor retries per budget window are always allowed, so
	// a quiet gateway (few calls, no percentage to speak of) can still
	// retry: paygate-mcp's cold-start grace.
	DefaultBudgetFloor  = 10
	DefaultBudgetWindow = 10 * time.Second
)

// RetryConfig configures a Retrier.
type RetryConfig struct {
	// MaxRetries is how often one call is sent again; 0 means
	// DefaultMaxRetries (turn retries off by not installing a Retrier).
	MaxRetries int
	// BaseDelay and MaxDelay shape the backoff: before retry n the Retrier
	// waits a random time in [0, min(MaxDelay, BaseDelay·2ⁿ⁻¹)) ("full
	// jitter"), so retries of many calls do not arrive together.
	BaseDelay, MaxDelay time.Duration
	// BudgetPercent caps retries at this share of the calls made in the
	// last BudgetWindow, plus BudgetFloor, so that a backend in trouble is
	// not buried under retries.
	BudgetPercent int
	BudgetFloor   int
	BudgetWindow  time.Duration

	Now    func() time.Time                                // the clock; time.Now when nil
	Jitter func() float64                                  // uniform in [0, 1); math/rand/v2 when nil
	Sleep  func(ctx context.Context, d time.Duration) bool // reports whether d passed; a timer when nil
	Logger *slog.Logger
}

// Retrier sends a call again when the backend proves it never reached the
// server (backend.NotDelivered): connection refused, the backend
// restarting, an HTTP 503. A call that may have run upstream (connection
// lost, timed out, answered with any response, even an error) is never
// sent twice, so retries cannot duplicate a non-idempotent tool call.
type Retrier struct {
	wrapped
	cfg    RetryConfig
	log    *slog.Logger
	budget *budget

	mu        sync.Mutex
	retries   int64 // calls sent again
	recovered int64 // calls that succeeded on a retry
	exhausted int64 // retries the budget refused
}

var (
	_ backend.Backend       = (*Retrier)(nil)
	_ backend.PeerForgetter = (*Retrier)(nil)
	_ backend.Admitter      = (*Retrier)(nil)
)

// NewRetrier returns a Retrier around next.
func NewRetrier(next backend.Backend, cfg RetryConfig) *Retrier {
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = DefaultBaseDelay
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = max(DefaultMaxDelay, cfg.BaseDelay)
	}
	if cfg.BudgetPercent <= 0 {
		cfg.BudgetPercent = DefaultBudgetPercent
	}
	if cfg.BudgetFloor <= 0 {
		cfg.BudgetFloor = DefaultBudgetFloor
	}
	if cfg.BudgetWindow <= 0 {
		cfg.BudgetWindow = DefaultBudgetWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Retrier{
		wrapped: wrapped{next: next}, cfg: cfg, log: cfg.Logger.With("backend", next.Name()),
		budget: newBudget(cfg.BudgetPercent, cfg.BudgetFloor, cfg.BudgetWindow),
	}
}

// Call implements backend.Backend.
func (r *Retrier) Call(ctx context.Context, req *backend.Request) (*mcp.Message, error) {
	r.budget.call(r.cfg.Now())
	for attempt := 1; ; attempt++ {
		resp, err := r.next.Call(ctx, req)
		if attempt > 1 && err == nil {
			r.count(&r.recovered)
		}
		if err == nil || attempt > r.cfg.MaxRetries || ctx.Err() != nil || !backend.NotDelivered(err) {
			return resp, err
		}
		if !r.budget.retry(r.cfg.Now()) {
			r.count(&r.exhausted)
			r.log.Debug("retry budget exhausted", "method", req.Method, "err", err)
			return resp, err
		}
		d := r.delay(attempt)
		r.log.Debug("retrying a call that was not delivered", "method", req.Method, "attempt", attempt+1, "delay", d, "err", err)
		if !r.cfg.Sleep(ctx, d) {
			return nil, ctx.Err()
		}
		r.count(&r.retries)
	}
}

// delay is the full-jitter backoff before retry number attempt (1-based).
func (r *Retrier) delay(attempt int) time.Duration {
	ceil := r.cfg.MaxDelay
	if attempt-1 < 30 {
		ceil = min(ceil, r.cfg.BaseDelay<<(attempt-1))
	}
	return time.Duration(r.cfg.Jitter() * float64(ceil))
}

func (r *Retrier) count(n *int64) {
	r.mu.Lock()
	*n++
	r.mu.Unlock()
}

// Admit implements backend.Admitter by asking the backend underneath.
func (r *Retrier) Admit(method, tool string) error { return r.admit(method, tool) }

// RetryStats are a Retrier's counters.
type RetryStats struct {
	Retries         int64 `json:"retries"`         // calls sent again
	Recovered       int64 `json:"recovered"`       // calls that succeeded on a retry
	BudgetExhausted int64 `json:"budgetExhausted"` // retries refused by the budget
}

// Stats returns the Retrier's counters.
func (r *Retrier) Stats() RetryStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RetryStats{Retries: r.retries, Recovered: r.recovered, BudgetExhausted: r.exhausted}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// budget caps retries at percent% of the calls in a sliding window, plus
// floor. The window is kept as slots of window/10, so it slides in steps.
type budget struct {
	percent, floor int
	slot           time.Duration

	mu    sync.Mutex
	slots [10]slot
}

type slot struct {
	n       int64 // slot number (time / slot length); stale when older than the window
	calls   int64
	retries int64
}

func newBudget(percent, floor int, window time.Duration) *budget {
	return &budget{percent: percent, floor: floor, slot: max(window/10, time.Millisecond)}
}

// cur returns the slot for now, clearing it when it held an older one.
func (b *budget) cur(now time.Time) *slot {
	n := now.UnixNano() / int64(b.slot)
	s := &b.slots[n%int64(len(b.slots))]
	if s.n != n {
		*s = slot{n: n}
	}
	return s
}

// call counts a first attempt.
func (b *budget) call(now time.Time) {
	b.mu.Lock()
	b.cur(now).calls++
	b.mu.Unlock()
}

// retry takes one retry from the budget, reporting whether there was one.
func (b *budget) retry(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.cur(now)
	oldest := s.n - int64(len(b.slots)) + 1
	var calls, retries int64
	for i := range b.slots {
		if b.slots[i].n >= oldest {
			calls += b.slots[i].calls
			retries += b.slots[i].retries
		}
	}
	if retries >= int64(b.floor)+calls*int64(b.percent)/100 {
		return false
	}
	s.retries++
	return true
}
