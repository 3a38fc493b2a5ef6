package gate

import "context"

// suspended refuses a key an operator has suspended (reversibly).
type suspended struct{}

func (suspended) Name() string { return "suspended" }

func (suspended) Check(_ context.Context, c *Call) error {
	if c.Key != nil && c.Key.Suspended {
		return &Denial{Reason: KeySuspended, Remaining: c.Account.Balance}
	}
	return nil
}
