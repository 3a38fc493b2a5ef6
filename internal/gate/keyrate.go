package gate

import (
	"context"
	"strconv"

	"github.com/paygate/paygate/internal/policy"
)

// keyRate enforces the key's calls per minute (its override, else the
// global limit), counting every batch item; a batch is admitted whole or
// not at all. It fills c.RateLimit for the X-RateLimit-* headers. Slots it
// takes stay taken if a later check refuses the call: they count calls
// that reached it.
type keyRate struct {
	policy  *policy.Snapshot
	limiter RateLimiter
}

func (*keyRate) Name() string { return "rate_limit" }

func (r *keyRate) Check(ctx context.Context, c *Call) error {
	if c.Key == nil {
		return nil
	}
	limit := r.policy.KeyRateLimit(c.Key)
	if limit <= 0 {
		return nil
	}
	res, err := r.limiter.AllowN(ctx, c.Key.ID, c.count(), limit, rateWindow, c.Now)
	if err != nil {
		return storeDenial("rate limiter", err)
	}
	c.rateLimit = RateLimitInfo{Limit: res.Limit, Remaining: res.Remaining, Reset: res.Reset}
	c.RateLimit = &c.rateLimit
	if !res.Allowed {
		d := c.deny(RateLimited, strconv.FormatInt(limit, 10)+" calls/min")
		d.RetryAfter = res.RetryAfter
		return d
	}
	return nil
}
