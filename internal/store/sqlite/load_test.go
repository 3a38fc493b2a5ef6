package sqlite

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// TestLoadKeysRoundTrip: thousands of keys come back from a reopen key for
// key and account for account (loadKeys, with its shared id/name string),
// including keys with every optional field, other namespaces and groups,
// charged accounts with quota counters, and ids of another form.
func TestLoadKeysRoundTrip(t *testing.T) {
	const n = 5597
	path := filepath.Join(t.TempDir(), "keys.db")
	s := openT(t, Options{Path: path, Sync: SyncNormal})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	newKey := func(i int) *store.Key {
		sec := fmt.Sprintf("pg_load_%08d_secret", i)
		h := sha256.Sum256([]byte(sec))
		k := &store.Key{
			ID: fmt.Sprintf("key_%016x", uint64(i)*0x9e3779b97f4a7c15), Hash: h, Prefix: sec[:7], Suffix: sec[len(sec)-4:],
			Name: fmt.Sprintf("load-%d", i), Namespace: "default", CreatedAt: t0.Add(time.Duration(i) * time.Second),
		}
		switch {
		case i == 1:
			k.ID = "aaa-imported" // sorts before every "key_" id
		case i == 2:
			k.ID = "zzz-imported" // and after
		}
		if i%7 == 0 {
			k.Namespace = fmt.Sprintf("ns-%d", i%3)
		}
		if i%11 == 0 {
			k.Alias = fmt.Sprintf("alias-%d", i)
			k.Group = fmt.Sprintf("grp-%d", i%4)
			k.AllowedTools = []string{"search", "fetch"}
			k.IPAllowlist = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			k.Quota = &store.Quota{DailyCalls: 1000, MonthlyCredits: 50000}
			k.Tags = map[string]string{"i": fmt.Sprint(i)}
			k.SpendingLimit = 100000
		}
		if i%13 == 0 {
			k.Suspended = true
		}
		if i%17 == 0 {
			k.ExpiresAt = t0.Add(48 * time.Hour)
		}
		if i%19 == 0 {
			k.Prefix = "pg_load_long_prefix" // too long to keep inline
		}
		return k
	}
	// Create concurrently: the writer commits them in groups.
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				k, _, err := s.CreateKey(ctx, newKey(i), int64(1000+i), store.Meta{})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = k.ID
				if i%5 == 0 { // quota counters, and a balance below the grant
					_, err := s.Reserve(ctx, store.Reservation{KeyID: k.ID, CallID: fmt.Sprintf("call-%d", i), Now: t0,
						Items: []store.Item{{Tool: "search", Amount: int64(i % 9)}}})
					if err != nil {
						errs <- fmt.Errorf("reserve %d: %w", i, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	type state struct {
		k *store.Key
		a store.Account
	}
	before := make(map[string]state, n)
	for _, id := range ids {
		k, a, err := s.GetKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		before[id] = state{k, a}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, Options{Path: path})
	defer s.Close()
	if got := len(s.keys.byID); got != n {
		t.Fatalf("%d keys loaded, want %d", got, n)
	}
	for i, id := range ids {
		k, a, err := s.GetKey(ctx, id)
		if err != nil {
			t.Fatalf("key %d (%s): %v", i, id, err)
		}
		b := before[id]
		if !reflect.DeepEqual(k, b.k) {
			t.Fatalf("key %d after reopen:\n got %+v\nwant %+v", i, k, b.k)
		}
		if a != b.a {
			t.Fatalf("account %d after reopen: got %+v, want %+v", i, a, b.a)
		}
		if got, err := s.LookupHash(ctx, k.Hash); err != nil || got.ID != id {
			t.Fatalf("key %d: lookup by hash: %v, %v", i, got, err)
		}
		if k.Alias != "" {
			if got, err := s.GetKeyByAlias(ctx, k.Alias); err != nil || got.ID != id {
				t.Fatalf("key %d: lookup by alias: %v, %v", i, got, err)
			}
		}
	}
}
