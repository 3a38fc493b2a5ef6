package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/storetest"
	"github.com/paygate/paygate/internal/testenv"
)

var bg = context.Background()

func openOpts(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(bg, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mkKey(t testing.TB, s *Store, n int, initial int64) *store.Key {
	t.Helper()
	sec := fmt.Sprintf("pg_outage_%030d", n)
	k, _, err := s.CreateKey(bg, &store.Key{ID: fmt.Sprintf("key_%016x", n), Hash: storetest.HashOf(sec),
		Prefix: sec[:7], Suffix: sec[len(sec)-4:], Name: "k"}, initial, store.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// TestOutage kills Redis under a store: money operations and Ping fail
// with store.ErrUnavailable, cached keys still resolve, usage and audit
// records are buffered; after a restart on the same data directory the
// store recovers by itself, writes the buffered records and has lost no
// acknowledged charge.
func TestOutage(t *testing.T) {
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	s := openOpts(t, Options{URL: "redis://" + r.Addr, Prefix: "out", ResyncInterval: 50 * time.Millisecond})
	k := mkKey(t, s, 1, 100)
	if _, err := s.Reserve(bg, store.Reservation{KeyID: k.ID, CallID: "before", Now: storetest.T0,
		Items: []store.Item{{Tool: "t", Amount: 7}}}); err != nil {
		t.Fatal(err)
	}

	r.Kill()
	if err := s.Ping(bg); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping with Redis down: %v", err)
	}
	_, err := s.Reserve(bg, store.Reservation{KeyID: k.ID, CallID: "during", Now: storetest.T0,
		Items: []store.Item{{Tool: "t", Amount: 1}}})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Reserve with Redis down: %v", err)
	}
	if _, err := s.Account(bg, k.ID); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Account with Redis down: %v", err)
	}
	if got, err := s.LookupHash(bg, k.Hash); err != nil || got.ID != k.ID {
		t.Fatalf("cached LookupHash with Redis down: %v %v", got, err)
	}
	s.AppendUsage(store.UsageRecord{KeyID: k.ID, Tool: "t", Allowed: false, Reason: "store_unavailable"})
	s.AppendAudit(store.AuditEvent{Type: "gate.deny", Actor: "system", Message: "during the outage"})
	time.Sleep(100 * time.Millisecond) // the flusher tries and keeps them

	r.Restart()
	eventually(t, "Ping after restart", func() bool { return s.Ping(bg) == nil })
	a, err := s.Account(bg, k.ID)
	if err != nil || a.Balance != 93 || a.Calls != 1 {
		t.Fatalf("account after restart: %+v %v (the acknowledged charge must survive)", a, err)
	}
	// The call refused during the outage left nothing behind but, at most,
	// a void's tombstone; a retry uses a new call id.
	if _, err := s.Reserve(bg, store.Reservation{KeyID: k.ID, CallID: "after", Now: storetest.T0,
		Items: []store.Item{{Tool: "t", Amount: 1}}}); err != nil {
		t.Fatalf("Reserve after restart: %v", err)
	}
	eventually(t, "buffered usage written", func() bool {
		u, err := s.Usage(bg, store.UsageFilter{KeyID: k.ID})
		return err == nil && len(u) == 1 && u[0].Reason == "store_unavailable"
	})
	ev, err := s.Audit(bg, store.AuditFilter{Types: []string{"gate.deny"}})
	if err != nil || len(ev) != 1 || ev[0].Message != "during the outage" {
		t.Fatalf("audit after restart: %+v %v", ev, err)
	}
	if s.Dropped() != 0 {
		t.Fatalf("%d records dropped", s.Dropped())
	}
	storetest.CheckInvariant(t, s, k.ID)
}

// TestVoidLostReply makes a Reserve's reply miss its deadline while Redis
// is busy: the script still runs when Redis frees up, and the store voids
// it (refunds the charge) so the refused call is not left charged; the
// call id stays taken.
func TestVoidLostReply(t *testing.T) {
	addr, _ := testenv.RedisServer(t)
	s := openOpts(t, Options{URL: "redis://" + addr, Prefix: "void", ResyncInterval: 50 * time.Millisecond})
	k := mkKey(t, s, 1, 100)
	// Load the script so the timed-out call is one EVALSHA.
	if _, err := s.Reserve(bg, store.Reservation{KeyID: k.ID, CallID: "warm", Now: storetest.T0,
		Items: []store.Item{{Tool: "t", Amount: 1}}}); err != nil {
		t.Fatal(err)
	}
	busy := make(chan error, 1)
	// A script that spins for half a second keeps Redis busy (DEBUG SLEEP
	// is disabled by default in Redis 7).
	go func() {
		busy <- s.rdb.Eval(bg, `local s = redis.call('TIME')
local t0 = s[1] * 1000000 + s[2]
repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - t0 > 500000
return 1`, nil).Err()
	}()
	time.Sleep(100 * time.Millisecond) // the spin is running
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	_, err := s.Reserve(ctx, store.Reservation{KeyID: k.ID, CallID: "lost", Now: storetest.T0,
		Items: []store.Item{{Tool: "t", Amount: 5}, {Tool: "u", Amount: 3}}})
	cancel()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Reserve past its deadline: %v", err)
	}
	if err := <-busy; err != nil {
		t.Fatalf("busy script: %v", err)
	}
	eventually(t, "void applied", func() bool { return s.fixes.len() == 0 })
	a, err := s.Account(bg, k.ID)
	if err != nil || a.Balance != 99 || a.Calls != 1 {
		t.Fatalf("account after the void: %+v %v, want only the warm-up charge", a, err)
	}
	_, err = s.Reserve(bg, store.Reservation{KeyID: k.ID, CallID: "lost", Now: storetest.T0, Items: []store.Item{{Tool: "t", Amount: 1}}})
	if !errors.Is(err, store.ErrDuplicateCall) {
		t.Fatalf("the voided call id was reusable: %v", err)
	}
	es, err := s.Entries(bg, store.LedgerFilter{KeyID: k.ID, Kinds: []store.EntryKind{store.EntryRefund}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.CallID != "lost" || !strings.HasPrefix(e.Note, "void") {
			t.Fatalf("refund entry %+v", e)
		}
	}
	t.Logf("the lost Reserve %s", map[bool]string{true: "ran and was refunded", false: "never ran (tombstoned)"}[len(es) > 0])
	storetest.CheckInvariant(t, s, k.ID)
}

// TestResyncCatchesMissedEvents changes a key record behind the store's
// back (no event published, as when events are lost during a disconnect):
// the periodic check reloads it.
func TestResyncCatchesMissedEvents(t *testing.T) {
	addr, _ := testenv.RedisServer(t)
	s := openOpts(t, Options{URL: "redis://" + addr, Prefix: "resync", ResyncInterval: 20 * time.Millisecond})
	k := mkKey(t, s, 1, 10)
	cur, err := s.rdb.HGet(bg, s.k.keys, k.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	_, doc, _ := strings.Cut(cur, ":")
	ver, err := s.rdb.Incr(bg, s.k.kver).Result()
	if err != nil {
		t.Fatal(err)
	}
	doc = strings.Replace(doc, `"id":`, `"su":true,"id":`, 1)
	if err := s.rdb.HSet(bg, s.k.keys, k.ID, fmt.Sprintf("%d:%s", ver, doc)).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "suspension seen through resync", func() bool {
		got, err := s.LookupHash(bg, k.Hash)
		return err == nil && got.Suspended
	})
}

// TestEventsReachOtherInstance: a change on one handle reaches the other's
// cache through pub/sub, without a resync (the interval is an hour).
func TestEventsReachOtherInstance(t *testing.T) {
	addr, _ := testenv.RedisServer(t)
	o := Options{URL: "redis://" + addr, Prefix: "events", ResyncInterval: time.Hour}
	a, b := openOpts(t, o), openOpts(t, o)
	k := mkKey(t, a, 1, 10)
	eventually(t, "create seen by b", func() bool { return b.cache.byHashOf(k.Hash) != nil })
	sec := "pg_rotated_events_0000000000000000"
	if _, err := a.RotateKey(bg, k.ID, storetest.HashOf(sec), sec[:7], sec[len(sec)-4:]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rotation seen by b", func() bool {
		return b.cache.byHashOf(k.Hash) == nil && b.cache.byHashOf(storetest.HashOf(sec)) != nil
	})
	if _, err := a.UpdateKey(bg, k.ID, func(k *store.Key) error { k.Revoked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "revocation seen by b", func() bool {
		got := b.cache.byHashOf(storetest.HashOf(sec))
		return got != nil && got.Revoked
	})
}
