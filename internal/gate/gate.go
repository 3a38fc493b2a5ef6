// Package gate decides whether a tool call may proceed. A Chain of small
// Checks runs in the order of order.go; the first denial stops it. Checks do
// no I/O beyond in-memory state and the rate limiter; the atomic charge that
// follows the chain (store.Ledger.Reserve) re-checks credits, spending limit
// and quotas so concurrent calls can never overspend.
package gate

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// Reason is the machine-readable cause of a denial. The strings are the ones
// paygate-mcp's gate puts in its messages, so its clients keep matching.
type Reason string

// Denial reasons, in gate order.
const (
	MissingAPIKey         Reason = "missing_api_key"
	InvalidAPIKey         Reason = "invalid_api_key"
	APIKeyExpired         Reason = "api_key_expired"
	KeySuspended          Reason = "key_suspended"
	IPNotAllowed          Reason = "ip_not_allowed"
	ToolNotAllowed        Reason = "tool_not_allowed"
	RateLimited           Reason = "rate_limited"
	ToolRateLimited       Reason = "tool_rate_limited"
	ConcurrencyLimited    Reason = "concurrency_limited"
	SpendingLimitExceeded Reason = "spending_limit_exceeded"
	QuotaExceeded         Reason = "quota_exceeded"
	InsufficientCredits   Reason = "insufficient_credits"
	MaintenanceMode       Reason = "maintenance_mode"
	StoreUnavailable      Reason = "store_unavailable"
)

// Denial is a refusal: an answer, not a failure.
type Denial struct {
	Reason     Reason
	Detail     string          // human text after the reason, e.g. "need 5, have 2"
	Required   credits.Credits // credits the call needed
	Remaining  credits.Credits // credits the key has
	RetryAfter time.Duration   // for rate limits and quotas
	Check      string          // name of the check that denied
	Batch      bool            // the call was a tools/call_batch: clients get failedIndex
	Index      int             // batch item that failed; 0 for checks of the whole batch, as paygate-mcp
}

func (d *Denial) Error() string {
	if d.Detail == "" {
		return string(d.Reason)
	}
	return string(d.Reason) + ": " + d.Detail
}

// Item is one tool call within a Call: a single tools/call has one, a
// tools/call_batch has one per element.
type Item struct {
	Tool     string
	Args     json.RawMessage
	ArgBytes int
	Price    credits.Credits // set by the pricing step
}

// Call is everything the checks need about one gated request. The pipeline
// fills the inputs; checks read them and may fill the outputs.
type Call struct {
	// Inputs.
	Method     string // tools/call or tools/call_batch
	Items      []Item
	Credential string // the presented secret; never logged
	ClientIP   netip.Addr
	Now        time.Time
	RequestID  string

	// Set by authentication. Account is a snapshot read at authentication;
	// AccountLoaded is false when the chain skipped the read
	// (Options.AtomicLimits).
	Key           *store.Key
	Account       store.Account
	AccountLoaded bool

	// Outputs.
	Total     credits.Credits // sum of item prices
	RateLimit *RateLimitInfo  // for X-RateLimit-* headers; nil when unlimited
	Shadow    []Reason        // denials recorded but not enforced (shadow mode)

	rateLimit RateLimitInfo // what RateLimit points to, so setting it does not allocate
	onSettle  []func()
}

// RateLimitInfo is the state of the key's global rate limit after this call.
type RateLimitInfo struct {
	Limit     int64
	Remaining int64
	Reset     time.Time
}

// OnSettle registers fn to run when the call settles (for example to give
// back a concurrency slot).
func (c *Call) OnSettle(fn func()) { c.onSettle = append(c.onSettle, fn) }

// Settle runs the registered settle hooks once.
func (c *Call) Settle() {
	for _, fn := range c.onSettle {
		fn()
	}
	c.onSettle = nil
}

// Check is one step of the gate.
type Check interface {
	// Name is the check's metric label and log field.
	Name() string
	// Check returns nil to pass, a *Denial to refuse, or another error for
	// an internal fault.
	Check(ctx context.Context, c *Call) error
}
