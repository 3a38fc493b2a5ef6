package gateway

// Benchmarks of the gate and charge path of toolsCall alone, without HTTP
// or a backend: the real check chain (policy, local rate limiter, gate)
// over a real SQLite store, then Reserve and the wait for durability, as
// pipeline.go runs them for every paid call.
//
//	go test ./internal/gateway -run '^$' -bench GateCharge -benchmem
//
// Stores: "memory" (InMemory), "normal" and "full" (a file in a temp dir
// with that sync mode). Keys: one key, or 100,000 keys with a random one
// per call. "serial" is one caller (per-call latency, a full-sync op
// includes its fsync); "parallel" is 64 callers per core, so group commit
// batches their ledger lines as it does under load.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/sqlite"
)

// benchSecret is the secret of fixture key i.
func benchSecret(i int) string { return fmt.Sprintf("pg_%048x", i) }

// benchEnv is one benchmark's gate and store.
type benchEnv struct {
	st      *sqlite.Store
	policy  *policy.Snapshot
	chain   *gate.Chain
	secrets []string
}

// createKeys adds keys [from, to) with a balance no benchmark exhausts,
// from many goroutines so the store's group commit batches them.
func createKeys(tb testing.TB, st *sqlite.Store, from, to int) {
	tb.Helper()
	const workers = 64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from + w; i < to; i += workers {
				sec := benchSecret(i)
				prefix, suffix := keys.Parts(sec)
				k := &store.Key{ID: fmt.Sprintf("key_%016x", i), Hash: keys.Hash(sec), Prefix: prefix, Suffix: suffix,
					Name: "bench", Namespace: "default", CreatedAt: time.Now()}
				if _, _, err := st.CreateKey(context.Background(), k, credits.Credits(1)<<50, store.Meta{Actor: "bench"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
}

// bulkDB builds, on first use, a database file holding n keys in dir (in
// a sync=normal store); each benchmark that needs it copies it.
type bulkDB struct {
	dir  string
	n    int
	path string
}

func (d *bulkDB) get(tb testing.TB) string {
	tb.Helper()
	if d.path != "" {
		return d.path
	}
	path := filepath.Join(d.dir, "keys.db")
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Sync: sqlite.SyncNormal})
	if err != nil {
		tb.Fatal(err)
	}
	createKeys(tb, st, 0, d.n)
	if err := st.Close(); err != nil {
		tb.Fatal(err)
	}
	d.path = path
	return path
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// newBenchEnv opens a store of the given mode ("memory", "normal", "full")
// holding n keys and builds the gate chain the app would build for a
// config with a global rate limit and quota large enough never to refuse
// (so both still do their work).
func newBenchEnv(b *testing.B, mode string, n int, bulk *bulkDB) *benchEnv {
	b.Helper()
	ctx := context.Background()
	opts := sqlite.Options{InMemory: true, RecentCalls: 1 << 20}
	if mode != "memory" {
		opts = sqlite.Options{Path: filepath.Join(b.TempDir(), "state.db"), Sync: mode, RecentCalls: 1 << 20}
		if n > 1 {
			copyFile(b, bulk.get(b), opts.Path)
		}
	}
	st, err := sqlite.Open(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if mode == "memory" || n == 1 {
		createKeys(b, st, 0, n)
	}
	rate := int64(1 << 40)
	p, err := policy.New(policy.Settings{
		GlobalRateLimitPerMin: &rate,
		GlobalQuota:           store.Quota{DailyCalls: 1 << 50, MonthlyCredits: 1 << 50},
		ToolPricing:           map[string]policy.ToolPolicy{"search": {CreditsPerKbInput: 1}},
	})
	if err != nil {
		b.Fatal(err)
	}
	chain, err := gate.New(gate.Options{Policy: p, Keys: st, Limiter: ratelimit.NewLocal(ratelimit.Options{})})
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{st: st, policy: p, chain: chain, secrets: make([]string, n)}
	for i := range n {
		e.secrets[i] = benchSecret(i)
	}
	return e
}

var benchArgs = []byte(`{"query":"paygate benchmarks","limit":10}`)

// gateAndCharge is toolsCall's gate and charge steps for one call by
// secret: chain.Run, Reserve, Receipt.Wait.
func (e *benchEnv) gateAndCharge(ctx context.Context, secret string) error {
	now := time.Now()
	c := &gate.Call{
		Method:     "tools/call",
		Items:      []gate.Item{{Tool: "search", Args: benchArgs, ArgBytes: len(benchArgs)}},
		Credential: secret,
		ClientIP:   netip.AddrFrom4([4]byte{127, 0, 0, 1}),
		Now:        now,
		RequestID:  "req_bench",
	}
	if err := e.chain.Run(ctx, c, false); err != nil {
		return err
	}
	receipt, err := e.st.Reserve(ctx, store.Reservation{
		KeyID:  c.Key.ID,
		CallID: newCallID(),
		Items:  []store.Item{{Tool: "search", Amount: c.Items[0].Price}},
		Limits: e.policy.Limits(c.Key),
		Now:    now,
		Meta:   store.Meta{RequestID: c.RequestID, Actor: "gateway"},
	})
	if err != nil {
		return err
	}
	return receipt.Wait(ctx)
}

func BenchmarkGateCharge(b *testing.B) {
	ctx := context.Background()
	bulk := &bulkDB{dir: b.TempDir(), n: 100_000}
	for _, mode := range []string{"memory", sqlite.SyncNormal, sqlite.SyncFull} {
		for _, n := range []int{1, 100_000} {
			b.Run(fmt.Sprintf("%s/keys=%d", mode, n), func(b *testing.B) {
				e := newBenchEnv(b, mode, n, bulk)
				b.Run("serial", func(b *testing.B) {
					r := rand.New(rand.NewPCG(1, 2))
					b.ReportAllocs()
					for b.Loop() {
						if err := e.gateAndCharge(ctx, e.secrets[r.IntN(n)]); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("parallel", func(b *testing.B) {
					var seed sync.Mutex
					next := uint64(0)
					b.ReportAllocs()
					b.SetParallelism(64)
					b.RunParallel(func(pb *testing.PB) {
						seed.Lock()
						next++
						r := rand.New(rand.NewPCG(next, 3))
						seed.Unlock()
						for pb.Next() {
							if err := e.gateAndCharge(ctx, e.secrets[r.IntN(n)]); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
				})
			})
		}
	}
}

// TestGateChargeBenchPath runs the benchmarked path a few times so it
// stays correct: each call is charged its price (1 credit per started KB
// of arguments) and the store stays consistent.
func TestGateChargeBenchPath(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "state.db"), Sync: sqlite.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	createKeys(t, st, 0, 3)
	p, err := policy.New(policy.Settings{ToolPricing: map[string]policy.ToolPolicy{"search": {CreditsPerKbInput: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := gate.New(gate.Options{Policy: p, Keys: st, Limiter: ratelimit.NewLocal(ratelimit.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	e := &benchEnv{st: st, policy: p, chain: chain, secrets: []string{benchSecret(0), benchSecret(1), benchSecret(2)}}
	for i := range 30 {
		if err := e.gateAndCharge(ctx, e.secrets[i%3]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		_, a, err := st.GetKey(ctx, fmt.Sprintf("key_%016x", i))
		// Price: defaultCreditsPerCall 1 + 1 KB × 1.
		if err != nil || a.Balance != credits.Credits(1)<<50-20 || a.Calls != 10 {
			t.Fatalf("key %d: %+v %v", i, a, err)
		}
	}
	if err := st.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
