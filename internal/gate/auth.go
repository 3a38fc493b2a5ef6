package gate

import (
	"context"
	"errors"

	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

// auth resolves c.Credential to a key by the SHA-256 of the secret, and
// loads the key's account. Unknown and revoked keys are both
// invalid_api_key. A call whose Key is already set (an earlier
// Authenticate) is not looked up again.
type auth struct {
	keys        KeyLookup
	skipAccount bool // Options.AtomicLimits: Reserve checks the account
}

func (*auth) Name() string { return "auth" }

func (a *auth) Check(ctx context.Context, c *Call) error {
	if c.Key != nil {
		return nil
	}
	if c.Credential == "" {
		return nil // credential has already refused it (shadow mode runs on)
	}
	k, err := a.keys.LookupHash(ctx, keys.Hash(c.Credential))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Denial{Reason: InvalidAPIKey}
	case err != nil:
		return storeDenial("key lookup", err)
	case k.Revoked:
		return &Denial{Reason: InvalidAPIKey}
	}
	c.Key = k
	if a.skipAccount {
		return nil
	}
	acct, err := a.keys.Account(ctx, k.ID)
	if err != nil {
		return storeDenial("account of "+k.ID, err)
	}
	c.Account, c.AccountLoaded = acct, true
	return nil
}
