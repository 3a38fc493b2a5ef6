// Package audit is paygate's audit trail between the code that acts and
// the store that keeps it: the Recorder appends events to the durable
// store (store.Audit, asynchronous) and fans each one out to live
// subscribers (GET /admin/events); it turns the gateway's gate decisions
// into a trail an operator can read (every denial, rate-limited per key
// when one floods, plus per-key summaries of allowed calls); and it
// enforces retention by age and count.
//
// Nothing here blocks the request path: appends are queued by the store,
// subscribers have bounded buffers and one that falls behind is dropped,
// and gate sampling is a map update under a mutex.
package audit

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// Sink is where events are kept: the store's audit trail.
type Sink interface {
	AppendAudit(evs ...store.AuditEvent)
	PruneAudit(ctx context.Context, before time.Time, keep int) (int, error)
}

// Gate allow modes (config auditGateAllows).
const (
	AllowsSummary = "summary" // one gate.allow_summary per key and interval (default)
	AllowsAll     = "all"     // one gate.allow per allowed call
	AllowsNone    = "none"    // allowed calls leave no audit event
)

// Defaults.
const (
	DefaultSummaryInterval = time.Minute
	DefaultDenyPerSecond   = 10
	DefaultMaxAge          = 30 * 24 * time.Hour
	DefaultMaxEvents       = 100_000
	DefaultPruneInterval   = 5 * time.Minute
	DefaultBuffer          = 256
	DefaultMaxSubscribers  = 64
)

// Options configure New. Store is required.
type Options struct {
	Store  Sink
	Logger *slog.Logger
	Now    func() time.Time

	// GateAllows is AllowsSummary (default), AllowsAll or AllowsNone.
	GateAllows string
	// SummaryInterval is how often allow and deny summaries are written.
	SummaryInterval time.Duration
	// DenyPerSecond caps the gate.deny events one key (or, without a key,
	// one client address) writes per second; the rest are counted into
	// its next gate.deny_summary. Negative: no cap.
	DenyPerSecond int

	// Retention: events older than MaxAge and beyond the newest MaxEvents
	// are deleted at Run's start and every PruneInterval. Zero disables
	// that limit.
	MaxAge        time.Duration
	MaxEvents     int
	PruneInterval time.Duration

	// Buffer is each live subscriber's queue; a subscriber whose queue is
	// full is dropped. MaxSubscribers bounds concurrent subscribers.
	Buffer         int
	MaxSubscribers int
}

// Settings are a recorder's effective options, for /audit/stats.
type Settings struct {
	GateAllows      string
	SummaryInterval time.Duration
	DenyPerSecond   int
	MaxAge          time.Duration
	MaxEvents       int
	PruneInterval   time.Duration
}

// Errors ending a subscription.
var (
	ErrSlowSubscriber = errors.New("subscriber too slow: its buffer filled up")
	ErrClosed         = errors.New("audit stream closed: the server is shutting down")
	ErrTooMany        = errors.New("too many live audit subscribers")
)

// Recorder records audit events. Create it with New; it is safe for
// concurrent use.
type Recorder struct {
	st  Sink
	log *slog.Logger
	now func() time.Time
	set Settings
	buf int
	max int

	mu     sync.RWMutex
	subs   map[*Subscription]struct{}
	closed bool

	gate gateSampler

	closeOnce sync.Once
}

// New returns a Recorder over o.Store. It starts nothing: call Run for
// summaries and retention.
func New(o Options) *Recorder {
	r := &Recorder{st: o.Store, log: o.Logger, now: o.Now, buf: o.Buffer, max: o.MaxSubscribers,
		subs: map[*Subscription]struct{}{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.buf <= 0 {
		r.buf = DefaultBuffer
	}
	if r.max <= 0 {
		r.max = DefaultMaxSubscribers
	}
	r.set = Settings{GateAllows: o.GateAllows, SummaryInterval: o.SummaryInterval, DenyPerSecond: o.DenyPerSecond,
		MaxAge: o.MaxAge, MaxEvents: o.MaxEvents, PruneInterval: o.PruneInterval}
	if r.set.GateAllows == "" {
		r.set.GateAllows = AllowsSummary
	}
	if r.set.SummaryInterval <= 0 {
		r.set.SummaryInterval = DefaultSummaryInterval
	}
	if r.set.DenyPerSecond == 0 {
		r.set.DenyPerSecond = DefaultDenyPerSecond
	}
	if r.set.PruneInterval <= 0 {
		r.set.PruneInterval = DefaultPruneInterval
	}
	r.gate.init(r)
	return r
}

// Settings returns the effective options.
func (r *Recorder) Settings() Settings { return r.set }

// AppendAudit records events: the store keeps them (asynchronously) and
// every live subscriber whose filter matches gets them. Events without a
// time get the recorder's clock.
func (r *Recorder) AppendAudit(evs ...store.AuditEvent) {
	if len(evs) == 0 {
		return
	}
	now := r.now()
	for i := range evs {
		if evs[i].Time.IsZero() {
			evs[i].Time = now
		}
	}
	r.st.AppendAudit(evs...)
	r.publish(evs)
}

// Subscription is one live listener. Events arrives in recording order;
// Done closes when the subscription ends (Err says why).
type Subscription struct {
	r      *Recorder
	types  map[string]bool // nil: every type
	events chan store.AuditEvent
	done   chan struct{}
	once   sync.Once
	err    error
}

// Events is the subscription's queue.
func (s *Subscription) Events() <-chan store.AuditEvent { return s.events }

// Done is closed when the subscription is dropped or closed.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err reports why the subscription ended: ErrSlowSubscriber, ErrClosed,
// or nil after Close.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the subscription. Safe to call more than once.
func (s *Subscription) Close() {
	s.end(nil)
	s.r.mu.Lock()
	delete(s.r.subs, s)
	s.r.mu.Unlock()
}

func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

// Subscribe starts a live subscription to events of the given types (all
// types when none are given).
func (r *Recorder) Subscribe(types []string) (*Subscription, error) {
	s := &Subscription{r: r, events: make(chan store.AuditEvent, r.buf), done: make(chan struct{})}
	if len(types) > 0 {
		s.types = make(map[string]bool, len(types))
		for _, t := range types {
			s.types[t] = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, ErrClosed
	case len(r.subs) >= r.max:
		return nil, ErrTooMany
	}
	r.subs[s] = struct{}{}
	return s, nil
}

// Subscribers returns how many live subscriptions there are.
func (r *Recorder) Subscribers() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.subs)
}

// publish hands events to subscribers without ever waiting: a full queue
// ends that subscription. The events channel is never closed, so a send
// cannot race a close.
func (r *Recorder) publish(evs []store.AuditEvent) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for s := range r.subs {
		for i := range evs {
			if s.types != nil && !s.types[evs[i].Type] {
				continue
			}
			select {
			case <-s.done:
			case s.events <- cloneEvent(evs[i]):
				continue
			default:
				s.end(ErrSlowSubscriber)
				r.log.Warn("audit stream subscriber dropped: too slow", "buffer", r.buf)
			}
			break
		}
	}
}

// cloneEvent copies the metadata map so a subscriber never shares it with
// the store's queue.
func cloneEvent(e store.AuditEvent) store.AuditEvent {
	if e.Metadata != nil {
		m := make(map[string]any, len(e.Metadata))
		for k, v := range e.Metadata {
			m[k] = v
		}
		e.Metadata = m
	}
	return e
}

// CloseStreams ends every live subscription with ErrClosed and refuses new
// ones; recording goes on. The app calls it when the HTTP server starts
// shutting down, so open event streams end instead of holding the
// shutdown up.
func (r *Recorder) CloseStreams() {
	r.mu.Lock()
	r.closed = true
	subs := make([]*Subscription, 0, len(r.subs))
	for s := range r.subs {
		subs = append(subs, s)
	}
	clear(r.subs)
	r.mu.Unlock()
	for _, s := range subs {
		s.end(ErrClosed)
	}
}

// Run writes gate summaries every SummaryInterval and enforces retention
// at once and every PruneInterval, until ctx ends. Close writes the last
// summaries.
func (r *Recorder) Run(ctx context.Context) {
	r.Prune(ctx)
	summaries := time.NewTicker(r.set.SummaryInterval)
	defer summaries.Stop()
	prune := time.NewTicker(r.set.PruneInterval)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-summaries.C:
			r.Flush()
		case <-prune.C:
			r.Prune(ctx)
		}
	}
}

// Prune enforces retention now and returns how many events it deleted.
func (r *Recorder) Prune(ctx context.Context) int {
	if r.set.MaxAge <= 0 && r.set.MaxEvents <= 0 {
		return 0
	}
	var before time.Time
	if r.set.MaxAge > 0 {
		before = r.now().Add(-r.set.MaxAge)
	}
	n, err := r.st.PruneAudit(ctx, before, max(r.set.MaxEvents, 0))
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("audit retention failed", "err", err)
		}
		return 0
	}
	if n > 0 {
		r.log.Info("audit retention", "deleted", n, "max_age", r.set.MaxAge, "max_events", r.set.MaxEvents)
	}
	return n
}

// Flush writes the pending gate summaries now.
func (r *Recorder) Flush() {
	if evs := r.gate.flush(r.now()); len(evs) > 0 {
		r.AppendAudit(evs...)
	}
}

// Close writes the last summaries and ends every live subscription. The
// store is not closed. Safe to call more than once.
func (r *Recorder) Close() {
	r.closeOnce.Do(func() {
		r.Flush()
		r.CloseStreams()
	})
}

// sortedKeys returns m's keys in order, for deterministic metadata.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
