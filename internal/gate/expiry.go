package gate

import (
	"context"
	"time"
)

// expiry refuses a key whose expiry has passed; at the expiry instant
// itself the key is already expired.
type expiry struct{}

func (expiry) Name() string { return "expiry" }

func (expiry) Check(_ context.Context, c *Call) error {
	if c.Key != nil && c.Key.Expired(c.Now) {
		return &Denial{Reason: APIKeyExpired, Detail: "expired at " + c.Key.ExpiresAt.UTC().Format(time.RFC3339),
			Remaining: c.Account.Balance}
	}
	return nil
}
