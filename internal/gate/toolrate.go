package gate

import (
	"context"
	"strconv"

	"github.com/paygate/paygate/internal/policy"
)

// toolRate enforces per-tool calls per minute, per key: the scope is
// "<key id>:<tool>". A batch counts each tool's items together; tools are
// taken in order of first appearance, and the first refused one fails the
// batch, reported at the index of its first item over the limit.
type toolRate struct {
	policy  *policy.Snapshot
	limiter RateLimiter
}

func (*toolRate) Name() string { return "tool_rate_limit" }

func (r *toolRate) Check(ctx context.Context, c *Call) error {
	if c.Key == nil {
		return nil
	}
	for i := range c.Items {
		tool := c.Items[i].Tool
		limit := r.policy.ToolRateLimit(tool)
		if limit <= 0 || seenBefore(c.Items, i) {
			continue
		}
		n := int64(0)
		for j := i; j < len(c.Items); j++ {
			if c.Items[j].Tool == tool {
				n++
			}
		}
		res, err := r.limiter.AllowN(ctx, c.Key.ID+":"+tool, n, limit, rateWindow, c.Now)
		if err != nil {
			return storeDenial("rate limiter", err)
		}
		if !res.Allowed {
			d := c.deny(ToolRateLimited, tool+" limited to "+strconv.FormatInt(limit, 10)+" calls/min")
			d.RetryAfter = res.RetryAfter
			d.Index = nthItem(c.Items, tool, res.Remaining)
			return d
		}
	}
	return nil
}

// seenBefore reports whether items[i]'s tool appears earlier in items.
// Batches are small (the gateway caps them at 100), so a scan beats a map.
func seenBefore(items []Item, i int) bool {
	for j := range i {
		if items[j].Tool == items[i].Tool {
			return true
		}
	}
	return false
}

// nthItem returns the index of the n-th (0-based) item calling tool, or
// of its last one.
func nthItem(items []Item, tool string, n int64) int {
	last := 0
	for i := range items {
		if items[i].Tool != tool {
			continue
		}
		if n == 0 {
			return i
		}
		n--
		last = i
	}
	return last
}
