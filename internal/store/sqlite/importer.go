package sqlite

import (
	"context"
	"errors"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// ImportKey creates a key carried over from another system (see
// store/importstate). initial becomes a grant line like CreateKey's;
// opening's Spent, Calls, LastUsedAt and quota counters become the
// account's starting values without fabricating charge lines. They are
// recorded as the account's opening values, so Verify still checks spent
// and calls against the ledger. opening.Balance is ignored.
func (s *Store) ImportKey(ctx context.Context, k *store.Key, initial credits.Credits, opening store.Account, m store.Meta) (*store.Key, store.Account, error) {
	if opening.Spent < 0 || opening.Calls < 0 {
		return nil, store.Account{}, errors.New("import key: opening spent and calls must not be negative")
	}
	a := accountOf(opening)
	a.balance = 0
	return s.createKey(ctx, k, initial, m, a, a.spent, a.calls)
}
