package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/storetest"
)

var ctx = context.Background()

func mkKey(t testing.TB, s *Store, n int, initial int64) *store.Key {
	t.Helper()
	sec := fmt.Sprintf("pg_secret_%030d", n)
	k, _, err := s.CreateKey(ctx, &store.Key{ID: fmt.Sprintf("key_%016x", n), Hash: storetest.HashOf(sec),
		Prefix: sec[:7], Suffix: sec[len(sec)-4:], Name: fmt.Sprintf("k%d", n)}, initial, store.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func reserve(s *Store, keyID, call string, amount int64) error {
	rc, err := s.Reserve(ctx, store.Reservation{KeyID: keyID, CallID: call, Now: storetest.T0,
		Items: []store.Item{{Tool: "t", Amount: amount}}})
	if err != nil {
		return err
	}
	return rc.Wait(ctx)
}

// TestCallWindowEviction drives more calls through than the in-memory
// window holds: duplicates and refunds of evicted calls must still be
// answered, from the ledger.
func TestCallWindowEviction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openT(t, Options{Path: path, RecentCalls: 8, Sync: SyncNormal})
	k := mkKey(t, s, 1, 1000)
	for i := range 40 {
		if err := reserve(s, k.ID, "call-"+strconv.Itoa(i), 2); err != nil {
			t.Fatal(err)
		}
	}
	if s.calls.complete {
		t.Fatal("window still claims to be complete after evictions")
	}
	if err := reserve(s, k.ID, "call-0", 2); !errors.Is(err, store.ErrDuplicateCall) {
		t.Fatalf("evicted duplicate: %v", err)
	}
	for range 2 { // the second refund must be a no-op
		rc, err := s.Refund(ctx, store.Refund{KeyID: k.ID, CallID: "call-1", Item: 0, Amount: 2, Now: storetest.T0})
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a, _ := s.Account(ctx, k.ID); a.Balance != 1000-40*2+2 {
		t.Fatalf("balance %d", a.Balance)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened with a window smaller than the ledger: still refused.
	s = openT(t, Options{Path: path, RecentCalls: 8})
	defer s.Close()
	if s.calls.complete {
		t.Fatal("window loaded as complete from a larger ledger")
	}
	for _, c := range []string{"call-2", "call-39"} {
		if err := reserve(s, k.ID, c, 1); !errors.Is(err, store.ErrDuplicateCall) {
			t.Fatalf("%s after reopen: %v", c, err)
		}
	}
	rc, err := s.Refund(ctx, store.Refund{KeyID: k.ID, CallID: "call-1", Item: 0, Amount: 2, Now: storetest.T0})
	if err != nil || rc.Wait(ctx) != nil {
		t.Fatalf("refund again after reopen: %v", err)
	}
	if err := reserve(s, k.ID, "fresh", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CheckInvariant(t, s, k.ID)
}

// TestFailClosed fills the database (max_page_count stands in for a full
// disk): the commit's Wait reports the failure, and from then on every
// money operation is refused with ErrUnavailable, never served for free.
func TestFailClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openT(t, Options{Path: path})
	defer s.Close()
	k := mkKey(t, s, 1, 1_000_000)
	if err := s.w.exec(ctx, func(x *wtx) error {
		_, err := x.exec("PRAGMA max_page_count = " + strconv.Itoa(pageCount(t, s)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; werr == nil; i++ {
		if i > 100_000 {
			t.Fatal("the database never filled")
		}
		werr = reserve(s, k.ID, fmt.Sprintf("fill-%d-%s", i, strings.Repeat("x", 200)), 1)
	}
	if !errors.Is(werr, store.ErrUnavailable) {
		t.Fatalf("Wait after a failed commit: %v, want ErrUnavailable", werr)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping: %v", err)
	}
	_, err := s.Reserve(ctx, store.Reservation{KeyID: k.ID, CallID: "after", Now: storetest.T0, Items: []store.Item{{Amount: 1}}})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Reserve after failure: %v", err)
	}
	if _, err := s.TopUp(ctx, k.ID, 1, "", store.Meta{}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("TopUp after failure: %v", err)
	}
	if _, err := s.UpdateKey(ctx, k.ID, func(*store.Key) error { return nil }); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("UpdateKey after failure: %v", err)
	}
	// Reads keep serving what was committed.
	if _, err := s.LookupHash(ctx, k.Hash); err != nil {
		t.Fatalf("LookupHash after failure: %v", err)
	}
	if _, err := s.Entries(ctx, store.LedgerFilter{Limit: 1}); err != nil {
		t.Fatalf("Entries after failure: %v", err)
	}
	s.Close()

	// What was acknowledged survived, and the books balance.
	s2 := openT(t, Options{Path: path})
	defer s2.Close()
	if err := s2.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

func pageCount(t *testing.T, s *Store) int {
	var n int
	if err := s.rdb.QueryRow("PRAGMA page_count").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSingleWriterLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paygate.db")
	s := openT(t, Options{Path: path})
	_, err := Open(ctx, Options{Path: path})
	if err == nil {
		t.Fatal("second Open of the same database succeeded")
	}
	for _, want := range []string{path + ".lock", "pid " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %q", err, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, Options{Path: path}) // released by Close
	s.Close()
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openT(t, Options{Path: path})
	var v int
	if err := s.rdb.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("user_version %d (%v), want %d", v, err, SchemaVersion)
	}
	var mode string
	if err := s.rdb.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q %v", mode, err)
	}
	if _, err := s.wdb.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(ctx, Options{Path: path})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

func TestOpenOptions(t *testing.T) {
	for _, o := range []Options{{}, {Path: "a", InMemory: true}, {Path: "a?b"}, {Path: "a", Sync: "off"}} {
		if _, err := Open(ctx, o); err == nil {
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
	// Close is safe after a failed Open and twice.
	_, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "missing-dir", "db")})
	if err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
	s := openT(t, Options{InMemory: true})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, store.Reservation{KeyID: "k", CallID: "c", Items: []store.Item{{Amount: 1}}}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Reserve after Close: %v", err)
	}
	if _, err := s.LookupHash(ctx, store.Hash{}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("LookupHash after Close: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
	s.AppendUsage(store.UsageRecord{}) // dropped, no panic
}

// TestRecordsFlushOnTimer checks that usage records reach the table within
// FlushInterval with no query forcing them (polled, bounded).
func TestRecordsFlushOnTimer(t *testing.T) {
	s := openT(t, Options{Path: filepath.Join(t.TempDir(), "db"), FlushInterval: 5 * time.Millisecond})
	defer s.Close()
	s.AppendUsage(store.UsageRecord{Tool: "search", Allowed: true})
	s.AppendAudit(store.AuditEvent{Type: "key.created"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := s.rdb.QueryRow("SELECT (SELECT COUNT(*) FROM usage) + (SELECT COUNT(*) FROM audit)").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not flushed: %d of 2", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestImportKeyOpening checks the import path: opening counters without
// charge lines, and Verify still balancing.
func TestImportKeyOpening(t *testing.T) {
	s := openT(t, Options{InMemory: true})
	defer s.Close()
	k, a, err := s.ImportKey(ctx, &store.Key{ID: "key_imp", Hash: storetest.HashOf("imp"), Prefix: "imp", Suffix: ""}, 40,
		store.Account{Spent: 60, Calls: 12, LastUsedAt: storetest.T0, Day: store.DayOf(storetest.T0), DailyCalls: 2,
			Month: store.MonthOf(storetest.T0), MonthlyCalls: 5, MonthlyCredits: 30, Balance: 999}, store.Meta{Actor: "import"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != 40 || a.Spent != 60 || a.Calls != 12 || a.DailyCalls != 2 || a.MonthlyCredits != 30 {
		t.Fatalf("imported account %+v", a)
	}
	if err := reserve(s, k.ID, "c", 5); err != nil {
		t.Fatal(err)
	}
	es, _ := s.Entries(ctx, store.LedgerFilter{KeyID: k.ID})
	if len(es) != 2 || es[0].Kind != store.EntryGrant || es[0].Delta != 40 {
		t.Fatalf("entries %+v", es)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestQueryPlans pins the indexes the hot and admin queries rely on: a
// query that silently falls back to a table scan is correct but slow.
func TestQueryPlans(t *testing.T) {
	s := openT(t, Options{InMemory: true})
	defer s.Close()
	cases := []struct {
		query string
		args  []any
		index string
	}{
		{qCallCharged, []any{"c"}, "ledger_call"},
		{qCallLines, []any{"c"}, "ledger_call"},
		{"SELECT seq FROM ledger WHERE key_id = ? ORDER BY seq", []any{"k"}, "ledger_key"},
		{"SELECT seq FROM ledger WHERE time >= ? ORDER BY seq", []any{1}, ""},
		{"SELECT seq FROM usage WHERE key_id = ? ORDER BY seq DESC LIMIT 10", []any{"k"}, "usage_key"},
		// Usage by tool or namespace scans in seq order: those are rare admin
		// queries, and every index on usage costs each tool call a B-tree insert.
		{"SELECT seq FROM usage WHERE json_extract(rec, '$.tool') = ? ORDER BY seq", []any{"t"}, ""},
		{"SELECT seq FROM usage WHERE json_extract(rec, '$.ns') = ? ORDER BY seq", []any{"n"}, ""},
		{"SELECT seq FROM audit WHERE type IN (?, ?) ORDER BY seq", []any{"a", "b"}, "audit_type"},
		{"SELECT seq FROM audit WHERE actor = ? ORDER BY seq", []any{"a"}, "audit_actor"},
		{"SELECT id FROM admin_keys WHERE hash = ?", []any{[]byte{1}}, "sqlite_autoindex_admin_keys"},
	}
	for _, tc := range cases {
		rows, err := s.rdb.Query("EXPLAIN QUERY PLAN "+tc.query, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if tc.index != "" && !strings.Contains(p, tc.index) || strings.Contains(p, "SCAN ledger") && tc.index != "" {
			t.Errorf("%s\n  plan: %s\n  want index %s", tc.query, p, tc.index)
		}
	}
}
