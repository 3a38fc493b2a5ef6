package gate

import (
	"time"

	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/store"
)

// reasonInfo is how a denial reason is answered.
type reasonInfo struct {
	rpcCode    int64  // JSON-RPC error code on /mcp
	httpStatus int    // HTTP status where a denial is answered outside JSON-RPC
	metric     string // value of the reason label of paygate_denials_total
}

// reasons is the one table of denial reasons, in gate order. Every gate
// denial answers -32402 like paygate-mcp, whose clients match on it, except
// concurrency_limited (-32005, paygate-mcp's code for its concurrency
// limiter) and store_unavailable (paygate's own): paying cannot fix
// either, and clients that top up on -32402 must not try.
var reasons = []struct {
	reason Reason
	info   reasonInfo
}{
	{MissingAPIKey, reasonInfo{mcp.CodePaymentRequired, 401, "missing_api_key"}},
	{InvalidAPIKey, reasonInfo{mcp.CodePaymentRequired, 401, "invalid_api_key"}},
	{APIKeyExpired, reasonInfo{mcp.CodePaymentRequired, 401, "api_key_expired"}},
	{KeySuspended, reasonInfo{mcp.CodePaymentRequired, 403, "key_suspended"}},
	{IPNotAllowed, reasonInfo{mcp.CodePaymentRequired, 403, "ip_not_allowed"}},
	{ToolNotAllowed, reasonInfo{mcp.CodePaymentRequired, 403, "tool_not_allowed"}},
	{RateLimited, reasonInfo{mcp.CodePaymentRequired, 429, "rate_limited"}},
	{ToolRateLimited, reasonInfo{mcp.CodePaymentRequired, 429, "tool_rate_limited"}},
	{ConcurrencyLimited, reasonInfo{mcp.CodeConcurrencyLimited, 429, "concurrency_limited"}},
	{SpendingLimitExceeded, reasonInfo{mcp.CodePaymentRequired, 402, "spending_limit_exceeded"}},
	{QuotaExceeded, reasonInfo{mcp.CodePaymentRequired, 402, "quota_exceeded"}},
	{InsufficientCredits, reasonInfo{mcp.CodePaymentRequired, 402, "insufficient_credits"}},
	{MaintenanceMode, reasonInfo{mcp.CodePaymentRequired, 503, "maintenance_mode"}},
	{StoreUnavailable, reasonInfo{mcp.CodeServiceUnavailable, 503, "store_unavailable"}},
}

var unknownReason = reasonInfo{mcp.CodeInternalError, 500, "unknown"}

func (r Reason) info() reasonInfo {
	for _, e := range reasons {
		if e.reason == r {
			return e.info
		}
	}
	return unknownReason
}

// RPCCode returns the JSON-RPC error code that answers r.
func (r Reason) RPCCode() int64 { return r.info().rpcCode }

// HTTPStatus returns the HTTP status for r outside JSON-RPC (admin dry
// runs, plain HTTP front ends).
func (r Reason) HTTPStatus() int { return r.info().httpStatus }

// MetricLabel returns r's value for the reason label of denial metrics;
// "unknown" for a reason not in the table.
func (r Reason) MetricLabel() string { return r.info().metric }

// Reasons returns every denial reason in gate order (for pre-registering
// metric label values and for docs).
func Reasons() []Reason {
	out := make([]Reason, len(reasons))
	for i, e := range reasons {
		out[i] = e.reason
	}
	return out
}

// errorData is the data member of a denial's JSON-RPC error, in
// paygate-mcp's shape.
type errorData struct {
	Reason           Reason `json:"reason"`
	CreditsRequired  int64  `json:"creditsRequired"`
	RemainingCredits int64  `json:"remainingCredits"`
	PricingURL       string `json:"pricingUrl,omitempty"`
	RetryAfter       *int64 `json:"retryAfter,omitempty"` // whole seconds, rounded up
	FailedIndex      *int   `json:"failedIndex,omitempty"`
}

// ErrorFor builds the JSON-RPC error answering d: message
// "Payment required: <reason>[: <detail>]" and data {reason,
// creditsRequired, remainingCredits, pricingUrl, retryAfter (when set, in
// seconds), failedIndex (batches)}. pricingURL is omitted when empty.
func ErrorFor(d *Denial, pricingURL string) *mcp.WireError {
	if d == nil {
		return &mcp.WireError{Code: mcp.CodeInternalError, Message: "internal error"}
	}
	code := d.Reason.RPCCode()
	prefix := "Payment required: "
	switch code {
	case mcp.CodePaymentRequired:
	case mcp.CodeConcurrencyLimited:
		prefix = "Too many concurrent calls: "
	default:
		prefix = "Service unavailable: "
	}
	data := errorData{
		Reason:           d.Reason,
		CreditsRequired:  d.Required,
		RemainingCredits: d.Remaining,
		PricingURL:       pricingURL,
	}
	if d.RetryAfter > 0 {
		s := int64((d.RetryAfter + time.Second - 1) / time.Second)
		data.RetryAfter = &s
	}
	if d.Batch {
		i := d.Index
		data.FailedIndex = &i
	}
	return mcp.NewError(code, prefix+d.Error(), data)
}

// FromLimitError turns the refusal of the atomic charge
// (store.Ledger.Reserve) into the denial the pre-check would have given,
// with the same reasons. Need becomes Required; for insufficient credits
// Have becomes Remaining and the detail reads "need N, have M". For the
// spending limit and quotas Have is a remaining budget, not a balance, so
// Remaining stays 0: set it from the call's account when known. Returns
// nil for nil or an unknown Kind.
func FromLimitError(e *store.LimitError) *Denial {
	if e == nil {
		return nil
	}
	d := &Denial{Required: e.Need, Detail: e.Detail, Check: "reserve"}
	switch e.Kind {
	case store.ErrInsufficientCredits:
		d.Reason, d.Remaining, d.Detail = InsufficientCredits, e.Have, insufficientDetail(e.Need, e.Have)
	case store.ErrSpendingLimit:
		d.Reason = SpendingLimitExceeded
	case store.ErrQuotaExceeded:
		d.Reason = QuotaExceeded
	default:
		return nil
	}
	return d
}

// LimitDenial is FromLimitError for c: the refusal of the atomic charge
// after c passed the checks (a concurrent call got there first), completed
// from c so that it reads like the pre-check's denial: c's total as
// Required (a call quota's Need counts calls, not credits), the balance
// read at authentication as Remaining (insufficient credits keep the
// store's fresher one), the batch flag, so batches get failedIndex, and a
// quota's RetryAfter (the end of its period).
func (c *Call) LimitDenial(e *store.LimitError) *Denial {
	d := FromLimitError(e)
	if d == nil {
		return nil
	}
	d.Required = c.Total
	switch {
	case e.Kind != store.ErrQuotaExceeded:
	case e.Period == store.QuotaMonthly:
		d.RetryAfter = nextMonth(c.Now).Sub(c.Now)
	default:
		d.RetryAfter = nextDay(c.Now).Sub(c.Now)
	}
	if e.Kind == store.ErrInsufficientCredits {
		// The charge saw the balance: it is the freshest one there is.
		c.Account.Balance, c.AccountLoaded = e.Have, true
	} else {
		d.Remaining = c.Account.Balance
	}
	d.Batch = c.Method == mcp.MethodToolsCallBatch
	return d
}
