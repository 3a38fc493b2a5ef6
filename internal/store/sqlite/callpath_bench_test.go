package sqlite

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// BenchmarkCallPath measures what one allowed tools/call costs the store:
// Reserve, Wait (durable), and the asynchronous usage record, with 16
// concurrent callers on one key — the shape of the gateway's hot path.
func BenchmarkCallPath(b *testing.B) {
	for _, mode := range []string{"memory", SyncNormal, SyncFull, "full-nojournal"} {
		b.Run(mode, func(b *testing.B) {
			opts := Options{InMemory: mode == "memory"}
			switch mode {
			case "memory":
			case "full-nojournal":
				opts.Path, opts.Sync, opts.NoJournal = filepath.Join(b.TempDir(), "s.db"), SyncFull, true
			default:
				opts.Path, opts.Sync = filepath.Join(b.TempDir(), "s.db"), mode
			}
			s := openT(b, opts)
			defer s.Close()
			ctx := context.Background()
			k := &store.Key{ID: "key_bench", Hash: store.Hash{1}, Prefix: "pg_bench", Suffix: "abcd", Namespace: "default", CreatedAt: time.Now()}
			if _, _, err := s.CreateKey(ctx, k, 1<<50, store.Meta{}); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := "call_" + strconv.FormatInt(n.Add(1), 10)
					r, err := s.Reserve(ctx, store.Reservation{KeyID: k.ID, CallID: id, Items: []store.Item{{Tool: "echo", Amount: 1}}, Now: time.Now()})
					if err != nil {
						b.Fatal(err)
					}
					if err := r.Wait(ctx); err != nil {
						b.Fatal(err)
					}
					s.AppendUsage(store.UsageRecord{Time: time.Now(), KeyID: k.ID, KeyMask: "pg_bench...abcd", Namespace: "default", Method: "tools/call",
						Tool: "echo", Allowed: true, Credits: 1, Outcome: "ok", Duration: time.Millisecond, RequestID: "req_0123456789abcdef", CallID: id, ClientIP: "127.0.0.1"})
				}
			})
			b.StopTimer()
		})
	}
}

// TestMultiRowInserts: batches larger than one multi-row statement (and not
// a multiple of it) land completely and in order.
func TestMultiRowInserts(t *testing.T) {
	s := openT(t, Options{InMemory: true})
	ctx := context.Background()
	n := 3*multiRows + 5
	recs := make([]store.UsageRecord, n)
	for i := range recs {
		recs[i] = store.UsageRecord{Time: time.Unix(int64(i), 0), Tool: "t" + strconv.Itoa(i), Allowed: true}
	}
	s.AppendUsage(recs...)
	got, err := s.Usage(ctx, store.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d records, want %d", len(got), n)
	}
	for i, r := range got {
		if r.Tool != "t"+strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, r.Tool)
		}
	}
}
