package gate

import (
	"context"
	"strconv"
)

// spending refuses a call that would take the key's total spend past its
// spending limit (0: no limit). Reaching the limit exactly is allowed.
type spending struct{}

func (spending) Name() string { return "spending_limit" }

func (spending) Check(_ context.Context, c *Call) error {
	if c.Key == nil || c.Key.SpendingLimit <= 0 {
		return nil
	}
	if limit, spent := c.Key.SpendingLimit, c.Account.Spent; spent+c.Total > limit {
		return c.deny(SpendingLimitExceeded, "limit "+strconv.FormatInt(limit, 10)+
			", spent "+strconv.FormatInt(spent, 10)+", need "+strconv.FormatInt(c.Total, 10))
	}
	return nil
}
