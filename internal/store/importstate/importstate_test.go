package importstate_test

import (
	"context"
	"crypto/sha256"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/importstate"
	"github.com/paygate/paygate/internal/store/sqlite"
)

var now = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Options{InMemory: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func importFixture(t *testing.T, st store.Store) importstate.Report {
	t.Helper()
	f, err := os.Open("testdata/state.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := importstate.Import(context.Background(), st, f, now)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func hashOf(s string) store.Hash { return sha256.Sum256([]byte(s)) }

func TestImport(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	rep := importFixture(t, s)

	if rep.Entries != 11 || rep.Imported != 5 || rep.Revoked != 1 || rep.Credits != 950+950+10+42+0 {
		t.Fatalf("report %+v", rep)
	}
	var skipped []int
	for _, sk := range rep.Skipped {
		skipped = append(skipped, sk.Index)
	}
	if !slices.Equal(skipped, []int{3, 4, 5, 7, 8, 10}) {
		t.Fatalf("skipped %v: %v", skipped, rep.Skipped)
	}
	reasons := map[int]string{3: "whole number", 4: "negative", 5: "10.0.0.300", 7: "duplicate", 8: "alias", 10: "pair"}
	for _, sk := range rep.Skipped {
		if !strings.Contains(sk.Reason, reasons[sk.Index]) && !strings.Contains(sk.String(), reasons[sk.Index]) {
			t.Errorf("skip %d reason %q, want it to mention %q", sk.Index, sk.Reason, reasons[sk.Index])
		}
		if sk.Index == 7 && !strings.Contains(sk.Reason, "entry 0") {
			t.Errorf("duplicate reason %q does not name the first entry", sk.Reason)
		}
	}
	joined := strings.Join(rep.Warnings, "\n")
	for _, w := range []string{"allowedCountries", "autoTopup", `alias "prod-backend" belongs to a live key`} {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings do not mention %q:\n%s", w, joined)
		}
	}

	// The live key: hashed, masked, every field carried.
	sec := "pg_0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071"
	k, err := s.LookupHash(ctx, hashOf(sec))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.ID, "key_") || len(k.ID) != 20 || k.Prefix != "pg_0a1b" || k.Suffix != "6071" || k.Mask() != "pg_0a1b...6071" {
		t.Fatalf("identity %+v", k)
	}
	if k.Name != "Production backend" || k.Namespace != "acme" || k.Alias != "prod-backend" || k.Group != "grp_gold" ||
		k.Revoked || k.Suspended || k.SpendingLimit != 5000 ||
		!slices.Equal(k.AllowedTools, []string{"search", "fetch"}) || !slices.Equal(k.DeniedTools, []string{"delete_all"}) ||
		!slices.Equal(k.IPAllowlist, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}) ||
		k.Tags["team"] != "search" || *k.Quota != (store.Quota{DailyCalls: 100, MonthlyCalls: 2000, MonthlyCredits: 10000}) ||
		!k.CreatedAt.Equal(time.Date(2025, 2, 1, 9, 30, 0, 0, time.UTC)) || !k.ExpiresAt.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("live key %+v", k)
	}
	_, a, _ := s.GetKey(ctx, k.ID)
	if a.Balance != 950 || a.Spent != 50 || a.Calls != 17 || a.Day != 20250314 || a.DailyCalls != 4 || a.DailyCredits != 12 ||
		a.Month != 202503 || a.MonthlyCalls != 17 || a.MonthlyCredits != 50 ||
		!a.LastUsedAt.Equal(time.Date(2025, 3, 14, 11, 59, 58, 123e6, time.UTC)) {
		t.Fatalf("live account %+v", a)
	}
	// Credits became one grant line; spent and calls fabricated nothing.
	es, _ := s.Entries(ctx, store.LedgerFilter{KeyID: k.ID})
	if len(es) != 1 || es[0].Kind != store.EntryGrant || es[0].Delta != 950 || es[0].Actor != "import" {
		t.Fatalf("ledger %+v", es)
	}

	// The rotated-away record: revoked, without the alias its successor holds.
	old, err := s.LookupHash(ctx, hashOf("pg_old0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee00"))
	if err != nil || !old.Revoked || old.RevokedAt.IsZero() || old.Alias != "" {
		t.Fatalf("inactive key %+v %v", old, err)
	}
	sus, _ := s.LookupHash(ctx, hashOf("pg_5u5pended5u5pended5u5pended5u5pended5u5pended5u"))
	if sus == nil || !sus.Suspended || sus.Revoked {
		t.Fatalf("suspended key %+v", sus)
	}
	v1, _ := s.LookupHash(ctx, hashOf("pg_v1formatv1formatv1formatv1formatv1formatv1forma"))
	if v1 == nil || v1.Namespace != "default" || len(v1.AllowedTools) != 0 || !v1.ExpiresAt.IsZero() {
		t.Fatalf("v1-format key %+v", v1)
	}
	zero, _ := s.LookupHash(ctx, hashOf("pg_zer0zer0zer0zer0zer0zer0zer0zer0zer0zer0zer0zer0"))
	if zero == nil || zero.Namespace != "beta-tenant" {
		t.Fatalf("zero-credit key %+v", zero)
	}
	// Secrets are not stored anywhere readable.
	for _, v := range []*store.Key{k, old, sus, v1, zero} {
		if strings.Contains(v.Prefix+v.Suffix+v.Name+v.ID, sec[7:len(sec)-4]) {
			t.Fatalf("secret leaked into %+v", v)
		}
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}

	// The imported key works: its quota counters continue the same day.
	rc, err := s.Reserve(ctx, store.Reservation{KeyID: k.ID, CallID: "first", Now: now, Items: []store.Item{{Tool: "search", Amount: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if rc.Account.DailyCalls != 5 || rc.Account.Spent != 52 || rc.Account.Calls != 18 || rc.BalanceAfter != 948 {
		t.Fatalf("after first call %+v", rc.Account)
	}

	// Running it again imports nothing twice.
	again := importFixture(t, s)
	if again.Imported != 0 || len(again.Skipped) != 11 {
		t.Fatalf("re-run %+v", again)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestImportRejectsOtherFormats(t *testing.T) {
	for _, in := range []string{`{"keys": []}`, `not json`, ``} {
		if _, err := importstate.Import(context.Background(), openStore(t), strings.NewReader(in), now); err == nil {
			t.Errorf("Import(%q) succeeded", in)
		}
	}
	rep, err := importstate.Import(context.Background(), openStore(t), strings.NewReader(`[]`), now)
	if err != nil || rep.Entries != 0 || rep.Imported != 0 {
		t.Fatalf("empty file: %+v %v", rep, err)
	}
}

// plainStore hides the Importer capability.
type plainStore struct{ store.Store }

func TestImportWithoutImporter(t *testing.T) {
	s := openStore(t)
	rep := importFixture(t, plainStore{s})
	if rep.Imported != 5 || !strings.Contains(strings.Join(rep.Warnings, "\n"), "cannot carry totalSpent") {
		t.Fatalf("report %+v", rep)
	}
	k, _ := s.LookupHash(context.Background(), hashOf("pg_0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071"))
	_, a, _ := s.GetKey(context.Background(), k.ID)
	if a.Balance != 950 || a.Spent != 0 {
		t.Fatalf("account %+v", a)
	}
}
