package gate

import (
	"errors"
	"testing"

	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// TestAtomicLimits: with AtomicLimits the chain leaves the money checks to
// the store's atomic Reserve — no account read, no pre-check denials —
// except in shadow mode, where the pre-checks are the only way to see what
// would have been refused. Everything before the money checks still runs.
func TestAtomicLimits(t *testing.T) {
	build := func(t *testing.T, atomic bool, mod func(*store.Key, *store.Account)) *env {
		e := newEnv(t, policy.Settings{}, mod)
		p, _ := policy.New(policy.Settings{})
		var err error
		e.chain, err = New(Options{Policy: p, Keys: e.keys, Limiter: e.limiter, AtomicLimits: atomic})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	broke := func(k *store.Key, a *store.Account) { a.Balance = 0 }

	t.Run("no account read, no pre-check denial", func(t *testing.T) {
		e := build(t, true, broke)
		c := call("search")
		if err := e.chain.Run(bg, c, false); err != nil {
			t.Fatalf("Run = %v; the balance is Reserve's to check", err)
		}
		if e.keys.accountReads != 0 || c.AccountLoaded {
			t.Fatalf("account read %d times (loaded=%v)", e.keys.accountReads, c.AccountLoaded)
		}
		if c.Key == nil || c.Total != 1 {
			t.Fatalf("key %v, total %d: authentication and pricing still run", c.Key, c.Total)
		}
	})
	t.Run("earlier checks still deny", func(t *testing.T) {
		e := build(t, true, func(k *store.Key, a *store.Account) { k.Suspended = true })
		var d *Denial
		if err := e.chain.Run(bg, call("search"), false); !errors.As(err, &d) || d.Reason != KeySuspended {
			t.Fatalf("Run = %v, want key_suspended", err)
		}
	})
	t.Run("shadow mode still pre-checks", func(t *testing.T) {
		e := build(t, true, broke)
		c := call("search")
		if err := e.chain.Run(bg, c, true); err != nil {
			t.Fatal(err)
		}
		if len(c.Shadow) == 0 || c.Shadow[0] != InsufficientCredits || e.keys.accountReads == 0 {
			t.Fatalf("shadow %v, account reads %d", c.Shadow, e.keys.accountReads)
		}
	})
	t.Run("off by default", func(t *testing.T) {
		e := build(t, false, broke)
		var d *Denial
		if err := e.chain.Run(bg, call("search"), false); !errors.As(err, &d) || d.Reason != InsufficientCredits {
			t.Fatalf("Run = %v, want insufficient_credits", err)
		}
	})
	t.Run("authenticate skips the read too", func(t *testing.T) {
		e := build(t, true, nil)
		c := call("search")
		if err := e.chain.Authenticate(bg, c); err != nil || c.Key == nil || e.keys.accountReads != 0 {
			t.Fatalf("Authenticate = %v, key %v, reads %d", err, c.Key, e.keys.accountReads)
		}
	})
}
