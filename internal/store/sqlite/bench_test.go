package sqlite

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// bulkSecret is the secret of fixture key i.
func bulkSecret(i int) string { return fmt.Sprintf("pg_%048x", i) }

// buildKeys writes n plain keys with 1,000,000 credits each (and their
// grant lines) to a new database at path in one transaction, much faster
// than n CreateKey calls.
func buildKeys(tb testing.TB, path string, n int) {
	tb.Helper()
	s := openT(tb, Options{Path: path, Sync: SyncNormal})
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	err := s.w.exec(context.Background(), func(x *wtx) error {
		key, err := x.tx.Prepare("INSERT INTO keys (id, hash, prefix, suffix, name, namespace, created_at) VALUES (?, ?, ?, ?, ?, 'default', ?)")
		if err != nil {
			return err
		}
		acct, err := x.tx.Prepare("INSERT INTO accounts (key_id, balance) VALUES (?, 1000000)")
		if err != nil {
			return err
		}
		led, err := x.tx.Prepare("INSERT INTO ledger (seq, time, key_id, kind, delta, balance_after) VALUES (?, ?, ?, 'grant', 1000000, 1000000)")
		if err != nil {
			return err
		}
		for i := range n {
			sec := bulkSecret(i)
			h := sha256.Sum256([]byte(sec))
			id := fmt.Sprintf("key_%016x", i)
			if _, err := key.Exec(id, h[:], sec[:7], sec[len(sec)-4:], "key-"+strconv.Itoa(i), created+int64(i)); err != nil {
				return err
			}
			if _, err := acct.Exec(id); err != nil {
				return err
			}
			if _, err := led.Exec(i+1, created, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
}

// heapAfterGC returns the live heap.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryPerKey measures the Go heap one plain key costs once loaded
// (its rec, strings and index entries). The bound is loose on purpose: it
// catches a layout regression, the benchmark reports the number.
func TestMemoryPerKey(t *testing.T) {
	n := 100_000
	if raceEnabled || testing.Short() {
		n = 10_000 // the race detector makes the pure-Go SQLite ~10x slower
	}
	path := filepath.Join(t.TempDir(), "keys.db")
	buildKeys(t, path, n)
	before := heapAfterGC()
	start := time.Now()
	s := openT(t, Options{Path: path})
	took := time.Since(start)
	after := heapAfterGC()
	defer s.Close()
	perKey := float64(after-before) / float64(n)
	t.Logf("%d keys: Open %v, heap +%.1f MB, %.0f bytes/key (includes the call window and driver caches)",
		n, took.Round(time.Millisecond), float64(after-before)/1e6, perKey)
	if perKey > 450 {
		t.Fatalf("%.0f bytes per key, budget ~300", perKey)
	}
	// Lookups build the key view once and then allocate nothing.
	h := sha256.Sum256([]byte(bulkSecret(n / 2)))
	if k, err := s.LookupHash(ctx, h); err != nil || k.ID != fmt.Sprintf("key_%016x", n/2) {
		t.Fatalf("LookupHash: %v %v", k, err)
	}
	if allocs := testing.AllocsPerRun(100, func() { s.LookupHash(ctx, h) }); allocs != 0 {
		t.Fatalf("LookupHash allocates %.1f times per call", allocs)
	}
}

func BenchmarkOpen100k(b *testing.B) {
	const n = 100_000
	path := filepath.Join(b.TempDir(), "keys.db")
	buildKeys(b, path, n)
	var perKey float64
	for b.Loop() {
		before := heapAfterGC()
		s := openT(b, Options{Path: path})
		b.StopTimer()
		perKey = float64(heapAfterGC()-before) / n
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(perKey, "heapB/key")
}

func BenchmarkLookupHash(b *testing.B) {
	const n = 100_000
	path := filepath.Join(b.TempDir(), "keys.db")
	buildKeys(b, path, n)
	s := openT(b, Options{Path: path})
	defer s.Close()
	hashes := make([]store.Hash, 4096)
	for i := range hashes {
		hashes[i] = sha256.Sum256([]byte(bulkSecret(i * 24 % n)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.LookupHash(ctx, hashes[i%len(hashes)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkReserveParallel measures acknowledged reservations: each op is
// a Reserve plus its Wait, from 64 goroutines per core, so batches form
// as they would under gateway load.
func BenchmarkReserveParallel(b *testing.B) {
	for _, mode := range []string{SyncFull, SyncNormal, "memory"} {
		b.Run(mode, func(b *testing.B) {
			opts := Options{Path: filepath.Join(b.TempDir(), "db"), Sync: mode, RecentCalls: *recentCalls}
			if mode == "memory" {
				opts = Options{InMemory: true, RecentCalls: *recentCalls}
			}
			s := openT(b, opts)
			defer s.Close()
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = mkKey(b, s, i, 1<<40).ID
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(64)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					rc, err := s.Reserve(ctx, store.Reservation{KeyID: keys[i%int64(len(keys))], CallID: "c" + strconv.FormatInt(i, 10),
						Now: time.Now(), Items: []store.Item{{Tool: "search", Amount: 1}}})
					if err != nil {
						b.Fatal(err)
					}
					if err := rc.Wait(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reserves/s")
		})
	}
}

// BenchmarkLedgerCommit measures the writer alone: ledger lines queued as
// fast as four goroutines can, committed in batches, timed to the last
// commit.
func BenchmarkLedgerCommit(b *testing.B) {
	for _, mode := range []string{SyncFull, SyncNormal} {
		b.Run(mode, func(b *testing.B) {
			s := openT(b, Options{Path: filepath.Join(b.TempDir(), "db"), Sync: mode})
			defer s.Close()
			keys := make([]string, 100)
			for i := range keys {
				keys[i] = mkKey(b, s, i, 1).ID
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; i < b.N; i += 4 {
						if _, err := s.TopUp(ctx, keys[i%len(keys)], 1, store.EntryTopUp, store.Meta{}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := s.w.barrier().wait(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// recentCalls sizes the call window in BenchmarkReserveParallel. Past the
// window a Reserve asks the ledger whether its call id is new; set it
// large (1<<23) to measure reserves that never do.
var recentCalls = flag.Int("sqlite.recent-calls", 0, "Options.RecentCalls for BenchmarkReserveParallel (0: default)")
