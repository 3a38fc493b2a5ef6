package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/store"
)

// KeyLookup is what the auth check needs from the store: find a key by the
// hash of its secret, and read its account. store.Store satisfies it.
type KeyLookup interface {
	LookupHash(ctx context.Context, h store.Hash) (*store.Key, error)
	Account(ctx context.Context, keyID string) (store.Account, error)
}

// RateLimiter is what the rate-limit checks need: count n calls against a
// key's sliding window, all or none. ratelimit.Limiter satisfies it.
type RateLimiter interface {
	AllowN(ctx context.Context, key string, n, limit int64, window time.Duration, now time.Time) (ratelimit.Result, error)
}

// rateWindow is the window of every rate limit: limits are per minute.
const rateWindow = time.Minute

// Options are what a Chain is built from. Policy, Keys and Limiter are
// required.
type Options struct {
	Policy  *policy.Snapshot
	Keys    KeyLookup
	Limiter RateLimiter
	// AtomicLimits says the store's Reserve enforces the spending limit,
	// the quotas and the balance atomically, in the chain's order, and that
	// reading an account costs a network round trip (Redis). The chain then
	// skips the account read and its three pre-checks, which Reserve
	// repeats anyway — except in shadow mode, where nothing is reserved
	// and only the pre-checks can tell what would have been refused.
	AtomicLimits bool
	// Concurrency holds the in-flight counts and caps; it outlives the
	// chain (reloads keep it). Nil: no caps.
	Concurrency *Concurrency
}

// Chain runs the checks of order.go. It is immutable; a config reload
// builds a new Chain with the new policy.
type Chain struct {
	checks []Check
	lean   []Check // checks without the account read and pre-checks (AtomicLimits)
	auth   []Check // the leading checks about the key itself
}

// New builds the chain in the order of order.go.
func New(o Options) (*Chain, error) {
	switch {
	case o.Policy == nil:
		return nil, errors.New("gate: no policy")
	case o.Keys == nil:
		return nil, errors.New("gate: no key lookup")
	case o.Limiter == nil:
		return nil, errors.New("gate: no rate limiter")
	}
	checks := order(o)
	ch := &Chain{checks: checks, lean: checks, auth: checks[:authChecks]}
	if o.AtomicLimits {
		lean := order(o)
		lean[1] = &auth{keys: o.Keys, skipAccount: true}
		ch.lean = lean[:len(lean)-3] // drop spending, quota, balance
		ch.auth = ch.lean[:authChecks]
	}
	return ch, nil
}

// Names returns the check names in run order (metric labels, logs, docs).
func (ch *Chain) Names() []string {
	names := make([]string, len(ch.checks))
	for i, c := range ch.checks {
		names[i] = c.Name()
	}
	return names
}

// Run runs every check on c in order. It returns nil when the call may
// proceed, the first *Denial (its Check set to the denying check), or
// another error for an internal fault.
//
// With shadow set nothing is refused: each check's denial is appended to
// c.Shadow (c.Shadow[0] is what enforcement would have answered) and the
// remaining checks still run, so c.Total and c.RateLimit are filled as
// usual. Checks that need a key pass when authentication found none.
// Faults are returned in shadow mode too.
func (ch *Chain) Run(ctx context.Context, c *Call, shadow bool) error {
	if shadow {
		return run(ctx, ch.checks, c, true)
	}
	return run(ctx, ch.lean, c, false)
}

// Authenticate runs only the checks about the key itself (present, known,
// not expired, not suspended, client address allowed): for methods that
// need a valid key but are not billed. On success c.Key and c.Account are
// set; a later Run on the same call does not look the key up again.
func (ch *Chain) Authenticate(ctx context.Context, c *Call) error {
	return run(ctx, ch.auth, c, false)
}

func run(ctx context.Context, checks []Check, c *Call, shadow bool) error {
	for _, chk := range checks {
		err := chk.Check(ctx, c)
		if err == nil {
			continue
		}
		d, ok := err.(*Denial)
		if !ok && !errors.As(err, &d) {
			return fmt.Errorf("gate %s: %w", chk.Name(), err)
		}
		d.Check = chk.Name()
		d.Batch = c.Method == mcp.MethodToolsCallBatch
		if !shadow {
			return d
		}
		c.Shadow = append(c.Shadow, d.Reason)
	}
	return nil
}

// count returns how many tool calls c makes: one per item, at least one.
func (c *Call) count() int64 { return max(int64(len(c.Items)), 1) }

// deny builds a denial carrying the call's price and the key's balance.
func (c *Call) deny(r Reason, detail string) *Denial {
	return &Denial{Reason: r, Detail: detail, Required: c.Total, Remaining: c.Account.Balance}
}

// storeDenial maps a store or limiter failure: unavailability is a
// retryable denial, anything else a fault.
func storeDenial(what string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return &Denial{Reason: StoreUnavailable, Detail: what + " is unavailable; retry later", RetryAfter: time.Second}
	}
	return fmt.Errorf("%s: %w", what, err)
}
