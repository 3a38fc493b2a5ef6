package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store/sqlite"
)

// TestCrashSafety runs concurrent paying load (tools/call and top-ups)
// against the real binary, kills it with SIGKILL at a random moment, and
// restarts it on the same state file. Every call and top-up a client saw
// succeed must be in the ledger (matched by X-Request-Id), every key's
// balance must equal grants + top-ups − charges + refunds exactly, and the
// restarted gateway keeps charging from there. Several rounds, random kill
// points, both sync modes.
func TestCrashSafety(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, sync := range []string{"full", "normal"} {
		t.Run("sync="+sync, func(t *testing.T) {
			g := startGateway(t, "--server", billEcho(t), "--rate-limit", "0", "--price", "1", "--sync", sync)
			for round := range 3 {
				killAfter := time.Duration(100+rng.IntN(600)) * time.Millisecond
				t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
					billCrashRound(t, g, round, killAfter)
				})
				if t.Failed() {
					return
				}
			}
			// Offline, the store's own audit agrees: every account equals
			// its ledger, in the accounts table as in memory.
			g.stop()
			// sync=full makes charges durable through the money journal
			// next to the state file; sync=normal keeps none.
			_, err := os.Stat(g.StateFile + ".ledger-log")
			if journal := err == nil; journal != (sync == "full") {
				t.Fatalf("sync=%s: money journal present %v (%v)", sync, journal, err)
			}
			st, err := sqlite.Open(context.Background(), sqlite.Options{Path: g.StateFile})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Verify(context.Background()); err != nil {
				t.Fatalf("verify after %d crashes: %v", 3, err)
			}
		})
	}
}

// billCrashLoad is what the clients of one round saw succeed.
type billCrashLoad struct {
	mu      sync.Mutex
	calls   map[string]string // request id → key id of served calls
	topups  map[string]string // request id → key id of acknowledged top-ups
	tried   map[string]int    // key id → calls and top-ups sent
	unknown []string          // answers that were neither success nor an expected refusal
}

func billCrashRound(t *testing.T, g *gateway, round int, killAfter time.Duration) {
	const nKeys, grant = 4, 600 // < maxLedgerPage lines per key
	keys := make([]billedKey, nKeys)
	for i := range keys {
		keys[i] = g.newBilledKey(grant, nil)
	}
	load := &billCrashLoad{calls: map[string]string{}, topups: map[string]string{}, tried: map[string]int{}}
	hc := billClient()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				k := keys[(w+i)%nKeys]
				id := fmt.Sprintf("crash-%d-%d-%d", round, w, i)
				if w == 0 { // one worker tops up, a credit at a time
					if i >= 40 {
						time.Sleep(time.Millisecond)
						continue
					}
					code, body, err := billAdminPostID(hc, g.URL, "/topup", id, map[string]any{"key": k.ID, "credits": 1})
					load.record(load.topups, id, k.ID, err == nil && code == http.StatusOK, err == nil && code != http.StatusOK, string(body))
					continue
				}
				r, _, err := billRPC(hc, g.URL, map[string]string{"X-API-Key": k.Secret, "X-Request-Id": id}, i, "tools/call",
					map[string]any{"name": "echo", "arguments": map[string]any{"id": id}})
				ok := err == nil && r.Error == nil
				odd := err == nil && r.Error != nil && r.reason() != "insufficient_credits"
				detail := ""
				if odd {
					detail = r.Error.Message
				}
				load.record(load.calls, id, k.ID, ok, odd, detail)
			}
		}()
	}
	time.Sleep(killAfter)
	g.kill9()
	stop()
	wg.Wait()
	for _, u := range load.unknown {
		t.Errorf("unexpected answer before the crash: %s", u)
	}
	t.Logf("killed after %v: %d calls and %d top-ups acknowledged", killAfter, len(load.calls), len(load.topups))
	if len(load.calls) == 0 {
		t.Fatalf("no call succeeded before the kill; the round tested nothing")
	}

	g.restart()
	for _, k := range keys {
		h := g.billCheckLedger(k.ID)
		charges := map[string]int{}
		topups := map[string]int{}
		for _, e := range h.Entries {
			switch e.Type {
			case "deduction":
				charges[e.RequestID]++
			case "topup":
				topups[e.RequestID]++
			case "refund":
				t.Errorf("key %s: refund %+v (echo never fails)", k.ID, e)
			}
		}
		seen := 0
		for id, kid := range load.calls {
			if kid != k.ID {
				continue
			}
			seen++
			if charges[id] != 1 {
				t.Errorf("key %s: served call %s has %d charge lines after the crash", k.ID, id, charges[id])
			}
		}
		acked := 0
		for id, kid := range load.topups {
			if kid != k.ID {
				continue
			}
			acked++
			if topups[id] != 1 {
				t.Errorf("key %s: acknowledged top-up %s has %d ledger lines after the crash", k.ID, id, topups[id])
			}
		}
		// Lines the clients never heard of are calls cut off by the kill
		// after their charge was committed: possible, but never more than
		// the requests sent.
		nCharges, nTopups := h.count("deduction"), h.count("topup")
		if nCharges < seen || nTopups < acked || nCharges+nTopups > load.tried[k.ID] {
			t.Errorf("key %s: %d charges for %d served calls, %d top-ups for %d acknowledged, %d requests sent",
				k.ID, nCharges, seen, nTopups, acked, load.tried[k.ID])
		}
		if want := int64(grant + nTopups - nCharges); h.CurrentBalance != want {
			t.Errorf("key %s: balance %d, want grant %d + top-ups %d − charges %d = %d", k.ID, h.CurrentBalance, grant, nTopups, nCharges, want)
		}
		// The restarted gateway charges from where the ledger stands.
		if h.CurrentBalance > 0 {
			r, hdr := g.billCall(k.Secret, "echo", map[string]any{"after": "restart"})
			billResult(t, "call after restart", r)
			if got, want := hdr.Get("X-Credits-Remaining"), fmt.Sprint(h.CurrentBalance-1); got != want {
				t.Errorf("key %s: X-Credits-Remaining %s after restart, want %s", k.ID, got, want)
			}
		}
	}
}

// record notes one answer: ok ones by request id, odd ones for the report.
func (l *billCrashLoad) record(into map[string]string, id, keyID string, ok, odd bool, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tried[keyID]++
	if ok {
		into[id] = keyID
	}
	if odd {
		l.unknown = append(l.unknown, id+": "+detail)
	}
}

// billAdminPostID is billAdminPost with an X-Request-Id.
func billAdminPostID(hc *http.Client, base, path, reqID string, body any) (int, []byte, error) {
	return billAdminRequest(hc, base, path, map[string]string{"X-Request-Id": reqID}, body)
}
