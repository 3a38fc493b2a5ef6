package gate

import (
	"context"
	"strconv"
)

// balance refuses a call that costs more than the key's balance. Spending
// the last credit exactly is allowed.
type balance struct{}

func (balance) Name() string { return "credits" }

func (balance) Check(_ context.Context, c *Call) error {
	if c.Key == nil || c.Account.Balance >= c.Total {
		return nil
	}
	return c.deny(InsufficientCredits, insufficientDetail(c.Total, c.Account.Balance))
}

// insufficientDetail is paygate-mcp's documented detail, which clients parse.
func insufficientDetail(need, have int64) string {
	return "need " + strconv.FormatInt(need, 10) + ", have " + strconv.FormatInt(have, 10)
}
