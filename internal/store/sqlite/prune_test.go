package sqlite

import (
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/storetest"
)

// TestPruneUsageInSteps prunes more rows than one step deletes while
// charges keep committing: every charge lands, the right rows go, and the
// newest row's seq is kept.
func TestPruneUsageInSteps(t *testing.T) {
	s := openT(t, Options{Path: filepath.Join(t.TempDir(), "db"), Sync: SyncNormal})
	defer s.Close()
	k := mkKey(t, s, 1, 1_000_000)
	const n = 3*pruneStep + 17
	recs := make([]store.UsageRecord, n)
	for i := range recs {
		recs[i] = store.UsageRecord{Time: storetest.T0.Add(time.Duration(i) * time.Second), KeyID: k.ID, Method: "tools/call", Tool: "t", Allowed: true}
	}
	s.AppendUsage(recs...)

	// Charges run while the prune does.
	var charged atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := reserve(s, k.ID, "call-"+strconv.Itoa(i), 1); err != nil {
				t.Error(err)
				return
			}
			charged.Add(1)
		}
	}()

	// By age: the first pruneStep+5 records are older than the cut.
	cut := storetest.T0.Add(time.Duration(pruneStep+5) * time.Second)
	got, err := s.PruneUsage(ctx, cut, 0)
	if err != nil || got != pruneStep+5 {
		t.Fatalf("prune by age: %d, %v", got, err)
	}
	// By count: keep the newest 100.
	left := n - (pruneStep + 5)
	if got, err = s.PruneUsage(ctx, time.Time{}, 100); err != nil || got != left-100 {
		t.Fatalf("prune by count: %d, %v (want %d)", got, err, left-100)
	}
	close(stop)
	wg.Wait()

	rows, err := s.Usage(ctx, store.UsageFilter{})
	if err != nil || len(rows) != 100 {
		t.Fatalf("%d rows left, %v", len(rows), err)
	}
	if !rows[0].Time.Equal(recs[n-100].Time) || !rows[99].Time.Equal(recs[n-1].Time) {
		t.Fatalf("kept %v … %v, want the newest 100", rows[0].Time, rows[99].Time)
	}
	// Everything is old now: the newest row stays, so seqs go on.
	if _, err := s.PruneUsage(ctx, storetest.T0.Add(100*24*time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	rows, err = s.Usage(ctx, store.UsageFilter{})
	if err != nil || len(rows) != 1 || rows[0].Seq != int64(n) {
		t.Fatalf("after pruning all: %+v %v (want only seq %d)", rows, err, n)
	}
	if a, _ := s.Account(ctx, k.ID); a.Balance != 1_000_000-charged.Load() || charged.Load() == 0 {
		t.Fatalf("balance %d after %d charges", a.Balance, charged.Load())
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
