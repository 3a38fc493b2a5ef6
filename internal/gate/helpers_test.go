package gate

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/store"
)

var (
	bg = context.Background()
	// t0 is the fake clock's "now": mid-day, mid-month, in UTC.
	t0 = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
)

const (
	secret    = "pg_000102030405060708090a0b0c0d0e0f1011121314151617"
	keyID     = "key_00000000000000aa"
	otherSeed = "pg_ffffffffffffffffffffffffffffffffffffffffffffffff"
)

func ptr[T any](v T) *T { return &v }

// memKeys is an in-memory KeyLookup: the part of a store the gate reads.
type memKeys struct {
	keys         map[store.Hash]*store.Key
	accounts     map[string]store.Account
	lookupErr    error
	accountErr   error
	lookups      int
	accountReads int
}

func newMemKeys() *memKeys {
	return &memKeys{keys: map[store.Hash]*store.Key{}, accounts: map[string]store.Account{}}
}

func (m *memKeys) add(secret string, k *store.Key, a store.Account) {
	k.Hash = keys.Hash(secret)
	k.Prefix, k.Suffix = keys.Parts(secret)
	m.keys[k.Hash] = k
	m.accounts[k.ID] = a
}

func (m *memKeys) LookupHash(_ context.Context, h store.Hash) (*store.Key, error) {
	m.lookups++
	if m.lookupErr != nil {
		return nil, m.lookupErr
	}
	for kh, k := range m.keys {
		if keys.Equal(kh, h) {
			return k, nil
		}
	}
	return nil, store.ErrNotFound
}

func (m *memKeys) Account(_ context.Context, id string) (store.Account, error) {
	m.accountReads++
	if m.accountErr != nil {
		return store.Account{}, m.accountErr
	}
	a, ok := m.accounts[id]
	if !ok {
		return store.Account{}, store.ErrNotFound
	}
	return a, nil
}

// failingLimiter fails every call with err.
type failingLimiter struct{ err error }

func (f failingLimiter) AllowN(context.Context, string, int64, int64, time.Duration, time.Time) (ratelimit.Result, error) {
	return ratelimit.Result{}, f.err
}

// env is one test's gate: a key store holding one good key, a real local
// rate limiter and a policy.
type env struct {
	keys    *memKeys
	limiter *ratelimit.Local
	conc    *Concurrency // no caps unless a test sets some
	chain   *Chain
	key     *store.Key
}

// goodKey is a key that passes every check for a call of "search" from
// 10.0.0.7 at t0.
func goodKey() *store.Key {
	return &store.Key{ID: keyID, Name: "agent", Namespace: "default", CreatedAt: t0.Add(-time.Hour)}
}

func goodAccount() store.Account {
	return store.Account{Balance: 100, Day: store.DayOf(t0), Month: store.MonthOf(t0)}
}

// newEnv builds an env; mod may change the key, its account and the
// settings before the chain is built.
func newEnv(t testing.TB, s policy.Settings, mod func(k *store.Key, a *store.Account)) *env {
	t.Helper()
	k, a := goodKey(), goodAccount()
	if mod != nil {
		mod(k, &a)
	}
	e := &env{keys: newMemKeys(), limiter: ratelimit.NewLocal(ratelimit.Options{}), key: k}
	e.keys.add(secret, k, a)
	p, err := policy.New(s)
	if err != nil {
		t.Fatal(err)
	}
	if e.conc, err = NewConcurrency(ConcurrencyLimits{}); err != nil {
		t.Fatal(err)
	}
	e.chain, err = New(Options{Policy: p, Keys: e.keys, Limiter: e.limiter, Concurrency: e.conc})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// call returns a tools/call of tool by the good key.
func call(tool string) *Call {
	return &Call{
		Method:     "tools/call",
		Items:      []Item{{Tool: tool, Args: []byte(`{}`), ArgBytes: 2}},
		Credential: secret,
		ClientIP:   netip.MustParseAddr("10.0.0.7"),
		Now:        t0,
		RequestID:  "req-1",
	}
}

// batch returns a tools/call_batch of the tools by the good key.
func batch(tools ...string) *Call {
	c := call("")
	c.Method = "tools/call_batch"
	c.Items = c.Items[:0]
	for _, tool := range tools {
		c.Items = append(c.Items, Item{Tool: tool, Args: []byte(`{}`), ArgBytes: 2})
	}
	return c
}

// consume takes n rate-limit slots of scope at t0.
func (e *env) consume(t testing.TB, scope string, n, limit int64) {
	t.Helper()
	if r, err := e.limiter.AllowN(bg, scope, n, limit, time.Minute, t0); err != nil || !r.Allowed {
		t.Fatalf("pre-consume %s: %+v %v", scope, r, err)
	}
}

// denial runs err through the same test as callers: a *Denial or nothing.
func denial(t testing.TB, err error) *Denial {
	t.Helper()
	if err == nil {
		return nil
	}
	var d *Denial
	if !errors.As(err, &d) {
		t.Fatalf("fault, not a denial: %v", err)
	}
	return d
}

// expect checks a Run outcome: want "" means allowed.
func expect(t testing.TB, err error, want Reason, check string) *Denial {
	t.Helper()
	d := denial(t, err)
	switch {
	case want == "" && d != nil:
		t.Fatalf("denied %s by %s (%q), want allowed", d.Reason, d.Check, d.Detail)
	case want != "" && d == nil:
		t.Fatalf("allowed, want %s", want)
	case d != nil && (d.Reason != want || d.Check != check):
		t.Fatalf("denied %s by %s (%q), want %s by %s", d.Reason, d.Check, d.Detail, want, check)
	}
	return d
}
