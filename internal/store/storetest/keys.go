package storetest

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

func ptr[T any](v T) *T { return &v }

// sameKey compares the fields a store must keep, times by instant.
func sameKey(t *testing.T, what string, got, want *store.Key) {
	t.Helper()
	g, w := *got, *want
	if !g.CreatedAt.Equal(w.CreatedAt) || !g.ExpiresAt.Equal(w.ExpiresAt) || !g.RevokedAt.Equal(w.RevokedAt) {
		t.Fatalf("%s: times differ: got %v/%v/%v want %v/%v/%v", what, g.CreatedAt, g.ExpiresAt, g.RevokedAt,
			w.CreatedAt, w.ExpiresAt, w.RevokedAt)
	}
	g.CreatedAt, g.ExpiresAt, g.RevokedAt = w.CreatedAt, w.ExpiresAt, w.RevokedAt
	// Empty and nil collections are the same thing.
	norm := func(k *store.Key) {
		if len(k.AllowedTools) == 0 {
			k.AllowedTools = nil
		}
		if len(k.DeniedTools) == 0 {
			k.DeniedTools = nil
		}
		if len(k.IPAllowlist) == 0 {
			k.IPAllowlist = nil
		}
		if len(k.Tags) == 0 {
			k.Tags = nil
		}
	}
	norm(&g)
	norm(&w)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func fullKey(k *store.Key) {
	k.Alias = "prod-backend"
	k.Namespace = "acme"
	k.ExpiresAt = T0.Add(30 * 24 * time.Hour)
	k.AllowedTools = []string{"search", "fetch"}
	k.DeniedTools = []string{"delete"}
	k.IPAllowlist = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	k.SpendingLimit = 5000
	k.Quota = &store.Quota{DailyCalls: 100, MonthlyCalls: 1000, DailyCredits: 500, MonthlyCredits: 5000}
	k.RateLimitPerMin = ptr(int64(0))
	k.Tags = map[string]string{"team": "search", "env": "prod"}
	k.Group = "grp_gold"
	k.Suspended = true
}

func testCreateAndGet(f *fixture) {
	t := f.t
	in := f.newKey(fullKey)
	got, a, err := f.st.CreateKey(f.ctx, in, 250, store.Meta{Actor: "admin", RequestID: "req-1", Note: "welcome"})
	if err != nil {
		t.Fatal(err)
	}
	if got == in {
		t.Fatal("CreateKey returned the caller's pointer; the store must keep its own copy")
	}
	sameKey(t, "CreateKey result", got, in)
	if a.Balance != 250 || a.Spent != 0 || a.Calls != 0 {
		t.Fatalf("account after create: %+v", a)
	}
	in.Tags["env"] = "mutated" // the caller's value is not the store's
	in.AllowedTools[0] = "mutated"

	k, a2, err := f.st.GetKey(f.ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, "GetKey", k, got)
	if a2 != a {
		t.Fatalf("GetKey account %+v, want %+v", a2, a)
	}
	if k.Tags["env"] != "prod" || k.AllowedTools[0] != "search" {
		t.Fatal("store shares slices or maps with the caller's key")
	}
	if k.Mask() != in.Prefix+"..."+in.Suffix {
		t.Fatalf("mask %q", k.Mask())
	}
	byHash, err := f.st.LookupHash(f.ctx, got.Hash)
	if err != nil || byHash.ID != got.ID {
		t.Fatalf("LookupHash: %v, %v", byHash, err)
	}
	byAlias, err := f.st.GetKeyByAlias(f.ctx, "prod-backend")
	if err != nil || byAlias.ID != got.ID {
		t.Fatalf("GetKeyByAlias: %v, %v", byAlias, err)
	}
	es := f.entries(store.LedgerFilter{KeyID: got.ID})
	if len(es) != 1 || es[0].Kind != store.EntryGrant || es[0].Delta != 250 || es[0].BalanceAfter != 250 ||
		es[0].Actor != "admin" || es[0].RequestID != "req-1" || es[0].Note != "welcome" {
		t.Fatalf("grant entries: %+v", es)
	}

	// No credits: no ledger line. Namespace defaults and is lower-cased.
	plain := f.key(0, func(k *store.Key) { k.Namespace = "" })
	if es := f.entries(store.LedgerFilter{KeyID: plain.ID}); len(es) != 0 {
		t.Fatalf("zero grant wrote entries: %+v", es)
	}
	if plain.Namespace != "default" {
		t.Fatalf("namespace %q, want default", plain.Namespace)
	}
	upper := f.key(0, func(k *store.Key) { k.Namespace = "Tenant-A" })
	if upper.Namespace != "tenant-a" {
		t.Fatalf("namespace %q, want tenant-a", upper.Namespace)
	}
	CheckInvariant(t, f.st, got.ID, plain.ID)
}

func testCreateConflicts(f *fixture) {
	t := f.t
	a := f.key(10, func(k *store.Key) { k.Alias = "alpha" })

	dupHash := f.newKey()
	dupHash.Hash = a.Hash
	_, _, err := f.st.CreateKey(f.ctx, dupHash, 5, store.Meta{})
	wantErr(t, "same hash", err, store.ErrAlreadyExists)

	dupID := f.newKey()
	dupID.ID = a.ID
	_, _, err = f.st.CreateKey(f.ctx, dupID, 5, store.Meta{})
	wantErr(t, "same id", err, store.ErrAlreadyExists)
	if _, err := f.st.LookupHash(f.ctx, dupID.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused create left its hash behind: %v", err)
	}

	dupAlias := f.newKey(func(k *store.Key) { k.Alias = "alpha" })
	_, _, err = f.st.CreateKey(f.ctx, dupAlias, 5, store.Meta{})
	wantErr(t, "same alias", err, store.ErrConflict)
	if _, _, err := f.st.GetKey(f.ctx, dupAlias.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused create left its id behind: %v", err)
	}
	// The refused keys wrote nothing.
	if es := f.entries(store.LedgerFilter{}); len(es) != 1 {
		t.Fatalf("entries after refused creates: %+v", es)
	}
	CheckInvariant(t, f.st, a.ID)
}

func testNotFound(f *fixture) {
	t := f.t
	ctx := f.ctx
	_, _, err := f.st.GetKey(ctx, "key_missing")
	wantErr(t, "GetKey", err, store.ErrNotFound)
	_, err = f.st.GetKeyByAlias(ctx, "missing")
	wantErr(t, "GetKeyByAlias", err, store.ErrNotFound)
	_, err = f.st.GetKeyByAlias(ctx, "")
	wantErr(t, "GetKeyByAlias empty", err, store.ErrNotFound)
	_, err = f.st.LookupHash(ctx, HashOf("nope"))
	wantErr(t, "LookupHash", err, store.ErrNotFound)
	_, err = f.st.UpdateKey(ctx, "key_missing", func(*store.Key) error { return nil })
	wantErr(t, "UpdateKey", err, store.ErrNotFound)
	_, err = f.st.RotateKey(ctx, "key_missing", HashOf("x"), "pg_xxxx", "xxxx")
	wantErr(t, "RotateKey", err, store.ErrNotFound)
	_, err = f.st.Account(ctx, "key_missing")
	wantErr(t, "Account", err, store.ErrNotFound)
	_, err = f.st.TopUp(ctx, "key_missing", 5, store.EntryTopUp, store.Meta{})
	wantErr(t, "TopUp", err, store.ErrNotFound)
	_, err = f.st.Reserve(ctx, store.Reservation{KeyID: "key_missing", CallID: "c1", Now: T0, Items: []store.Item{{Tool: "t", Amount: 1}}})
	wantErr(t, "Reserve", err, store.ErrNotFound)
	a := f.key(10)
	_, _, err = f.st.Transfer(ctx, a.ID, "key_missing", 1, store.Meta{})
	wantErr(t, "Transfer to", err, store.ErrNotFound)
	_, _, err = f.st.Transfer(ctx, "key_missing", a.ID, 1, store.Meta{})
	wantErr(t, "Transfer from", err, store.ErrNotFound)
	_, err = f.st.Refund(ctx, store.Refund{KeyID: a.ID, CallID: "never", Item: 0, Amount: 1, Now: T0})
	wantErr(t, "Refund", err, store.ErrNotFound)
	// A call id refused because the key was missing is still free.
	f.reserve(a.ID, "c1", 1)
	CheckInvariant(t, f.st, a.ID)
}

func testRotate(f *fixture) {
	t := f.t
	a := f.key(40, func(k *store.Key) { k.Alias = "rot" })
	f.reserve(a.ID, "c1", 5)
	newSecret := "pg_rotated_secret_0123456789abcdef"
	k, err := f.st.RotateKey(f.ctx, a.ID, HashOf(newSecret), newSecret[:7], newSecret[len(newSecret)-4:])
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != a.ID || k.Hash != HashOf(newSecret) || k.Prefix != "pg_rota" || k.Suffix != "cdef" || k.Alias != "rot" {
		t.Fatalf("rotated key %+v", k)
	}
	if a.Hash == k.Hash {
		t.Fatal("the earlier *Key changed under the caller")
	}
	_, err = f.st.LookupHash(f.ctx, a.Hash)
	wantErr(t, "old hash after rotate", err, store.ErrNotFound)
	got, err := f.st.LookupHash(f.ctx, HashOf(newSecret))
	if err != nil || got.ID != a.ID {
		t.Fatalf("new hash: %v %v", got, err)
	}
	if acc := f.account(a.ID); acc.Balance != 35 || acc.Calls != 1 {
		t.Fatalf("account after rotate %+v", acc)
	}
	// Rotating onto another key's secret is refused.
	b := f.key(1)
	_, err = f.st.RotateKey(f.ctx, a.ID, b.Hash, "x", "y")
	wantErr(t, "rotate to taken hash", err, store.ErrAlreadyExists)
	if got, _ := f.st.LookupHash(f.ctx, b.Hash); got == nil || got.ID != b.ID {
		t.Fatal("refused rotate disturbed the other key")
	}
	// Back to the old secret works: it is free again.
	if _, err := f.st.RotateKey(f.ctx, a.ID, a.Hash, a.Prefix, a.Suffix); err != nil {
		t.Fatalf("rotate back: %v", err)
	}
	CheckInvariant(t, f.st, a.ID, b.ID)
}

func testUpdatePurity(f *fixture) {
	t := f.t
	a := f.key(10, fullKey)
	before, _, _ := f.st.GetKey(f.ctx, a.ID)

	// fn works on a copy: its edits are dropped when it fails.
	boom := errors.New("boom")
	_, err := f.st.UpdateKey(f.ctx, a.ID, func(k *store.Key) error {
		k.Name = "changed"
		k.Tags["team"] = "changed"
		k.AllowedTools[0] = "changed"
		k.Quota.DailyCalls = 1
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateKey: %v, want the updater's error", err)
	}
	after, _, _ := f.st.GetKey(f.ctx, a.ID)
	sameKey(t, "after failed update", after, before)

	// A successful update returns a new value and leaves old ones alone.
	up, err := f.st.UpdateKey(f.ctx, a.ID, func(k *store.Key) error {
		k.Name = "renamed"
		k.Tags["team"] = "billing"
		k.Suspended = false
		k.Quota = nil
		k.AllowedTools = nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "renamed" || up.Tags["team"] != "billing" || up.Suspended || up.Quota != nil || len(up.AllowedTools) != 0 {
		t.Fatalf("updated key %+v", up)
	}
	if before.Name != a.Name || before.Tags["team"] != "search" || !before.Suspended || before.Quota == nil {
		t.Fatal("an earlier *Key changed after UpdateKey")
	}
	got, _, _ := f.st.GetKey(f.ctx, a.ID)
	sameKey(t, "GetKey after update", got, up)

	// Identity cannot change through UpdateKey.
	_, err = f.st.UpdateKey(f.ctx, a.ID, func(k *store.Key) error { k.ID = "key_other"; return nil })
	if err == nil {
		t.Fatal("UpdateKey changed the id")
	}
	_, err = f.st.UpdateKey(f.ctx, a.ID, func(k *store.Key) error { k.Hash = HashOf("other"); return nil })
	if err == nil {
		t.Fatal("UpdateKey changed the hash")
	}
	if _, err := f.st.LookupHash(f.ctx, HashOf("other")); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("refused hash change took effect")
	}

	// Revocation is permanent.
	rv, err := f.st.UpdateKey(f.ctx, a.ID, func(k *store.Key) error { k.Revoked = true; return nil })
	if err != nil || !rv.Revoked || rv.RevokedAt.IsZero() {
		t.Fatalf("revoke: %+v %v", rv, err)
	}
	if _, err := f.st.UpdateKey(f.ctx, a.ID, func(k *store.Key) error { k.Revoked = false; return nil }); err == nil {
		t.Fatal("UpdateKey un-revoked a key")
	}
	CheckInvariant(t, f.st, a.ID)
}

func testUpdateAlias(f *fixture) {
	t := f.t
	a := f.key(1, func(k *store.Key) { k.Alias = "one" })
	b := f.key(1, func(k *store.Key) { k.Alias = "two" })
	_, err := f.st.UpdateKey(f.ctx, b.ID, func(k *store.Key) error { k.Alias = "one"; return nil })
	wantErr(t, "take a used alias", err, store.ErrConflict)
	if got, err := f.st.GetKeyByAlias(f.ctx, "two"); err != nil || got.ID != b.ID {
		t.Fatalf("refused alias change disturbed b: %v %v", got, err)
	}
	// Renaming frees the old alias for others.
	if _, err := f.st.UpdateKey(f.ctx, a.ID, func(k *store.Key) error { k.Alias = "uno"; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = f.st.GetKeyByAlias(f.ctx, "one")
	wantErr(t, "old alias", err, store.ErrNotFound)
	if _, err := f.st.UpdateKey(f.ctx, b.ID, func(k *store.Key) error { k.Alias = "one"; return nil }); err != nil {
		t.Fatalf("take a freed alias: %v", err)
	}
	if got, err := f.st.GetKeyByAlias(f.ctx, "one"); err != nil || got.ID != b.ID {
		t.Fatalf("alias one: %v %v", got, err)
	}
	// Clearing an alias.
	if _, err := f.st.UpdateKey(f.ctx, a.ID, func(k *store.Key) error { k.Alias = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = f.st.GetKeyByAlias(f.ctx, "uno")
	wantErr(t, "cleared alias", err, store.ErrNotFound)
	// Setting a key's own alias again is no conflict.
	if _, err := f.st.UpdateKey(f.ctx, b.ID, func(k *store.Key) error { k.Alias = "one"; k.Name = "x"; return nil }); err != nil {
		t.Fatal(err)
	}
}

func testListKeys(f *fixture) {
	t := f.t
	now := T0.Add(24 * time.Hour)
	mk := func(initial credits.Credits, mod func(*store.Key)) string { return f.key(initial, mod).ID }
	k1 := mk(100, func(k *store.Key) {
		k.Name = "Alpha"
		k.Tags = map[string]string{"env": "prod", "team": "a"}
		k.Group = "g1"
	})
	k2 := mk(50, func(k *store.Key) { k.Name = "alpine"; k.Tags = map[string]string{"env": "prod"} })
	k3 := mk(10, func(k *store.Key) { k.Name = "beta"; k.Namespace = "other"; k.Suspended = true })
	k4 := mk(0, func(k *store.Key) { k.Name = "gamma"; k.ExpiresAt = T0 })
	k5 := mk(75, func(k *store.Key) { k.Name = "delta"; k.Group = "g1" })
	if _, err := f.st.UpdateKey(f.ctx, k5, func(k *store.Key) error { k.Revoked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	f.reserveAt(k2, "c1", 20, T0)               // k2: balance 30, spent 20, calls 1
	f.reserveAt(k1, "c2", 1, T0.Add(time.Hour)) // k1: balance 99, spent 1, calls 1
	f.reserveAt(k1, "c3", 1, T0.Add(time.Hour)) // k1: balance 98, spent 2, calls 2

	list := func(fl store.KeyFilter) ([]string, int) {
		t.Helper()
		fl.Now = now
		vs, total, err := f.st.ListKeys(f.ctx, fl)
		if err != nil {
			t.Fatalf("ListKeys %+v: %v", fl, err)
		}
		ids := make([]string, len(vs))
		for i, v := range vs {
			ids[i] = v.Key.ID
			if a := f.account(v.Key.ID); a.Balance != v.Account.Balance {
				t.Fatalf("ListKeys account of %s: %+v, want %+v", v.Key.ID, v.Account, a)
			}
		}
		return ids, total
	}
	cases := []struct {
		name  string
		f     store.KeyFilter
		want  []string
		total int
	}{
		{"all by createdAt", store.KeyFilter{}, []string{k1, k2, k3, k4, k5}, 5},
		{"desc", store.KeyFilter{Desc: true}, []string{k5, k4, k3, k2, k1}, 5},
		{"namespace", store.KeyFilter{Namespace: "other"}, []string{k3}, 1},
		{"active", store.KeyFilter{Status: "active"}, []string{k1, k2}, 2},
		{"suspended", store.KeyFilter{Status: "suspended"}, []string{k3}, 1},
		{"expired", store.KeyFilter{Status: "expired"}, []string{k4}, 1},
		{"revoked", store.KeyFilter{Status: "revoked"}, []string{k5}, 1},
		{"name prefix, any case", store.KeyFilter{NamePrefix: "ALP"}, []string{k1, k2}, 2},
		{"min credits", store.KeyFilter{MinCredits: ptr(credits.Credits(30))}, []string{k1, k2, k5}, 3},
		{"max credits", store.KeyFilter{MaxCredits: ptr(credits.Credits(30))}, []string{k2, k3, k4}, 3},
		{"credit range", store.KeyFilter{MinCredits: ptr(credits.Credits(30)), MaxCredits: ptr(credits.Credits(80))}, []string{k2, k5}, 2},
		{"tags all match", store.KeyFilter{Tags: map[string]string{"env": "prod", "team": "a"}}, []string{k1}, 1},
		{"tag", store.KeyFilter{Tags: map[string]string{"env": "prod"}}, []string{k1, k2}, 2},
		{"group", store.KeyFilter{Group: "g1"}, []string{k1, k5}, 2},
		{"sort name", store.KeyFilter{SortBy: "name"}, []string{k1, k2, k3, k5, k4}, 5},
		{"sort credits desc", store.KeyFilter{SortBy: "credits", Desc: true}, []string{k1, k5, k2, k3, k4}, 5},
		{"sort totalSpent desc", store.KeyFilter{SortBy: "totalSpent", Desc: true, Limit: 2}, []string{k2, k1}, 5},
		{"sort totalCalls desc", store.KeyFilter{SortBy: "totalCalls", Desc: true, Limit: 1}, []string{k1}, 5},
		{"sort lastUsedAt desc", store.KeyFilter{SortBy: "lastUsedAt", Desc: true, Status: "active"}, []string{k1, k2}, 2},
		{"page", store.KeyFilter{Limit: 2, Offset: 1}, []string{k2, k3}, 5},
		{"page past end", store.KeyFilter{Limit: 2, Offset: 9}, []string{}, 5},
	}
	for _, tc := range cases {
		got, total := list(tc.f)
		if !slices.Equal(got, tc.want) || total != tc.total {
			t.Errorf("%s: got %v (total %d), want %v (total %d)", tc.name, got, total, tc.want, tc.total)
		}
	}
	CheckInvariant(t, f.st, k1, k2, k3, k4, k5)
}
