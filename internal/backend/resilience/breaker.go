package resilience

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// State is a circuit breaker's state, with paygate-mcp's names.
type State string

// Breaker states.
const (
	// Closed: calls go through; consecutive failures are counted.
	Closed State = "closed"
	// Open: calls fail at once with a *backend.OpenError until the
	// cooldown has passed.
	Open State = "open"
	// HalfOpen: the cooldown has passed; one trial call goes through.
	// Its success closes the breaker, its failure opens it again.
	HalfOpen State = "half_open"
)

// Breaker defaults (paygate-mcp's circuitBreakerThreshold and
// circuitBreakerCooldownSeconds).
const (
	DefaultThreshold = 5
	DefaultCooldown  = 30 * time.Second
)

// BreakerConfig configures a Breaker.
type BreakerConfig struct {
	// Threshold is how many consecutive failures open the breaker;
	// DefaultThreshold when 0.
	Threshold int
	// Cooldown is how long the breaker stays open before a trial call;
	// DefaultCooldown when 0.
	Cooldown time.Duration
	Now      func() time.Time // the clock; time.Now when nil
	Logger   *slog.Logger
}

// Breaker is a circuit breaker around one backend.
//
// A failure is a call that got no answer: the backend unavailable, the
// request not delivered, the connection lost, a timeout. A JSON-RPC error
// or an isError result is an answer and counts as a success. A call the
// client cancelled, or that ended because the backend was closed, counts as
// neither.
type Breaker struct {
	wrapped
	cfg BreakerConfig
	log *slog.Logger

	mu            sync.Mutex
	state         State
	failures      int // consecutive failures while closed
	totalFailures int64
	rejections    int64
	openedAt      time.Time
	changedAt     time.Time
	trial         bool // the half-open trial call is in flight
	lastFailure   string
}

var (
	_ backend.Backend       = (*Breaker)(nil)
	_ backend.PeerForgetter = (*Breaker)(nil)
	_ backend.Admitter      = (*Breaker)(nil)
)

// NewBreaker returns a closed breaker around next.
func NewBreaker(next backend.Backend, cfg BreakerConfig) *Breaker {
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = DefaultCooldown
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Breaker{
		wrapped: wrapped{next: next}, cfg: cfg, log: cfg.Logger.With("backend", next.Name()),
		state: Closed, changedAt: cfg.Now(),
	}
}

// Call implements backend.Backend.
func (b *Breaker) Call(ctx context.Context, req *backend.Request) (*mcp.Message, error) {
	trial, err := b.acquire()
	if err != nil {
		return nil, err
	}
	resp, err := b.next.Call(ctx, req)
	b.record(err, trial)
	return resp, err
}

// Admit implements backend.Admitter: it refuses while the breaker would
// refuse a call now, so the gateway does not charge one.
func (b *Breaker) Admit(method, tool string) error {
	b.mu.Lock()
	err := b.refusalLocked(b.cfg.Now())
	if err != nil {
		b.rejections++
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return b.admit(method, tool)
}

// refusalLocked returns the error a call made now gets, or nil when it may
// go through (possibly as the half-open trial).
func (b *Breaker) refusalLocked(now time.Time) error {
	switch {
	case b.state == Open && now.Sub(b.openedAt) < b.cfg.Cooldown:
		return &backend.OpenError{Backend: b.next.Name(), RetryAfter: b.openedAt.Add(b.cfg.Cooldown).Sub(now)}
	case b.state == HalfOpen && b.trial:
		return &backend.OpenError{Backend: b.next.Name()}
	}
	return nil
}

// acquire lets a call through or refuses it. trial is true for the one
// call a half-open breaker lets through.
func (b *Breaker) acquire() (trial bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	if err := b.refusalLocked(now); err != nil {
		b.rejections++
		return false, err
	}
	if b.state == Closed {
		return false, nil
	}
	if b.state == Open {
		b.setLocked(HalfOpen, now)
	}
	b.trial = true
	return true, nil
}

// outcome classifies a call for the breaker.
type outcome int

const (
	success outcome = iota
	failure
	neutral
)

func classify(err error) outcome {
	switch {
	case err == nil:
		return success
	case errors.Is(err, context.Canceled), errors.Is(err, backend.ErrClosed), errors.Is(err, backend.ErrCircuitOpen):
		// The client gave up, paygate is stopping, or a breaker further
		// down refused: nothing learnt about the backend.
		return neutral
	}
	return failure
}

func (b *Breaker) record(err error, trial bool) {
	o := classify(err)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	if trial {
		b.trial = false
	}
	switch o {
	case success:
		switch {
		case b.state == Closed:
			b.failures = 0
		case trial:
			b.failures = 0
			b.setLocked(Closed, now)
			b.log.Info("circuit breaker closed: trial call succeeded")
		}
	case failure:
		b.totalFailures++
		b.lastFailure = err.Error()
		switch {
		case b.state == Closed:
			b.failures++
			if b.failures >= b.cfg.Threshold {
				b.openedAt = now
				b.setLocked(Open, now)
				b.log.Warn("circuit breaker opened", "failures", b.failures, "cooldown", b.cfg.Cooldown, "err", err)
			}
		case trial:
			b.openedAt = now
			b.setLocked(Open, now)
			b.log.Warn("circuit breaker re-opened: trial call failed", "cooldown", b.cfg.Cooldown, "err", err)
		}
	}
	// A neutral trial just frees the slot: the next call is the trial.
}

func (b *Breaker) setLocked(s State, now time.Time) {
	b.state = s
	b.changedAt = now
}

// Status implements backend.Backend: the backend's status with the
// breaker's state.
func (b *Breaker) Status() backend.Status {
	st := b.next.Status()
	b.mu.Lock()
	st.Circuit = string(b.stateLocked(b.cfg.Now()))
	b.mu.Unlock()
	return st
}

// stateLocked is the state as callers see it: an open breaker whose
// cooldown has passed reports half_open (the next call is the trial).
func (b *Breaker) stateLocked(now time.Time) State {
	if b.state == Open && now.Sub(b.openedAt) >= b.cfg.Cooldown {
		return HalfOpen
	}
	return b.state
}

// Reset closes the breaker and clears its consecutive failures (the admin
// API's POST /admin/circuit). Totals are kept.
func (b *Breaker) Reset() {
	b.mu.Lock()
	was := b.state
	b.failures, b.trial, b.openedAt = 0, false, time.Time{}
	b.setLocked(Closed, b.cfg.Now())
	b.mu.Unlock()
	if was != Closed {
		b.log.Info("circuit breaker reset to closed", "was", was)
	}
}

// Snapshot is a breaker's state for the admin API.
type Snapshot struct {
	Backend string `json:"backend"`
	State   State  `json:"state"`
	// Failures counts consecutive failures (paygate-mcp's "failures").
	Failures      int        `json:"failures"`
	Threshold     int        `json:"threshold"`
	TotalFailures int64      `json:"totalFailures"`
	Rejections    int64      `json:"rejections"`
	OpenedAt      *time.Time `json:"openedAt,omitempty"`
	// RetryAfterMs is how long until an open breaker lets a trial through.
	RetryAfterMs    int64     `json:"retryAfterMs,omitempty"`
	CooldownSeconds float64   `json:"cooldownSeconds"`
	LastFailure     string    `json:"lastFailure,omitempty"`
	Since           time.Time `json:"since"`
}

// Snapshot reports the breaker's state.
func (b *Breaker) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	s := Snapshot{
		Backend: b.next.Name(), State: b.stateLocked(now), Failures: b.failures, Threshold: b.cfg.Threshold,
		TotalFailures: b.totalFailures, Rejections: b.rejections, CooldownSeconds: b.cfg.Cooldown.Seconds(),
		LastFailure: b.lastFailure, Since: b.changedAt,
	}
	if b.state != Closed && !b.openedAt.IsZero() {
		t := b.openedAt
		s.OpenedAt = &t
		if s.State == Open {
			s.RetryAfterMs = b.openedAt.Add(b.cfg.Cooldown).Sub(now).Milliseconds()
		}
	}
	return s
}
