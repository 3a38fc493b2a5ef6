package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/storetest"
)

// TestRedisFleetNoOverspend: three gateways on one Redis, 300 concurrent
// calls spread across them against a key with 100 credits: exactly 100
// are served, and the ledger in Redis accounts for every credit.
func TestRedisFleetNoOverspend(t *testing.T) {
	f := startRedisFleet(t, 3)
	secret := f.gws[0].createKey(100, nil)
	st := f.store()
	id := redisKeyID(t, st, secret)

	outs := make([]echoOutcome, 300)
	errs := make([]error, 300)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			outs[i], errs[i] = callEcho(f.gws[i%3].URL, secret, i)
		}()
	}
	close(start)
	wg.Wait()
	ok, short := 0, 0
	perGateway := [3]int{}
	for i, o := range outs {
		switch {
		case errs[i] != nil:
			t.Fatalf("call %d: %v", i, errs[i])
		case o.ok:
			ok++
			perGateway[i%3]++
		case o.reason == "insufficient_credits":
			short++
		default:
			t.Fatalf("call %d: unexpected answer %q", i, o.reason)
		}
	}
	if ok != 100 || short != 200 {
		t.Fatalf("%d calls served and %d refused, want 100 and 200", ok, short)
	}
	t.Logf("served per gateway: %v", perGateway)
	a, err := st.Account(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	charges, refunds := ledgerTotals(t, st, id)
	if a.Balance != 0 || charges-refunds != 100 || a.Calls != 100 {
		t.Fatalf("balance %d, ledger charges %d - refunds %d, calls %d; want 0, 100 net, 100", a.Balance, charges, refunds, a.Calls)
	}
	storetest.CheckInvariant(t, st, id)
	for _, g := range f.gws {
		if b := g.balance(secret); b != 0 {
			t.Fatalf("%s sees balance %d, want 0", g.URL, b)
		}
	}
}

// TestRedisFleetRevocation: a revocation and an ACL change made through
// instance A's admin API are enforced by B and C within one second.
func TestRedisFleetRevocation(t *testing.T) {
	f := startRedisFleet(t, 3)
	a, b, c := f.gws[0], f.gws[1], f.gws[2]
	revoked := a.createKey(1000, nil)
	limited := a.createKey(1000, nil)
	// B and C serve both keys (and cache them).
	for _, g := range []*gateway{b, c} {
		for _, k := range []string{revoked, limited} {
			if o, err := callEcho(g.URL, k, 1); err != nil || !o.ok {
				t.Fatalf("%s before the change: %+v %v", g.URL, o, err)
			}
		}
	}

	cases := []struct {
		name, key, path string
		body            map[string]any
		reason          string
	}{
		{"revoke", revoked, "/keys/revoke", map[string]any{"key": revoked}, "invalid_api_key"},
		{"acl", limited, "/keys/acl", map[string]any{"key": limited, "deniedTools": []string{"echo"}}, "tool_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code := a.admin("POST", tc.path, tc.body, nil); code != http.StatusOK {
				t.Fatalf("POST %s on A: %d", tc.path, code)
			}
			changed := time.Now()
			for _, g := range []*gateway{b, c} {
				var last echoOutcome
				for {
					o, err := callEcho(g.URL, tc.key, 2)
					if err != nil {
						t.Fatal(err)
					}
					if last = o; o.reason == tc.reason {
						break
					}
					if time.Since(changed) > time.Second {
						t.Fatalf("%s still answers %+v a second after %s on A", g.URL, last, tc.name)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			t.Logf("%s enforced by B and C %v after A's answer", tc.name, time.Since(changed))
		})
	}
}

// TestRedisKilledMidLoad: Redis is killed (SIGKILL) under load from three
// gateways and restarted on the same port and data directory (AOF,
// appendfsync always). No call is served uncharged, none is charged twice
// or left charged without being served, and every gateway recovers
// without a restart.
func TestRedisKilledMidLoad(t *testing.T) {
	f := startRedisFleet(t, 3)
	const initial = 100_000
	secret := f.gws[0].createKey(initial, nil)
	st := f.store()
	id := redisKeyID(t, st, secret)

	const workers, perWorker = 12, 60
	var (
		mu      sync.Mutex
		served  int
		reasons = map[string]int{}
		done    sync.WaitGroup
		half    sync.WaitGroup
	)
	half.Add(workers)
	for w := range workers {
		done.Add(1)
		go func() {
			defer done.Done()
			g := f.gws[w%3]
			for i := range perWorker {
				if i == perWorker/3 {
					half.Done()
				}
				o, err := callEcho(g.URL, secret, w*1000+i)
				mu.Lock()
				switch {
				case err != nil:
					reasons["transport: "+err.Error()]++
				case o.ok:
					served++
				default:
					reasons[o.reason]++
				}
				mu.Unlock()
				if err != nil || !o.ok {
					time.Sleep(10 * time.Millisecond) // a client backing off
				}
			}
		}()
	}
	half.Wait() // a third of the load is through
	f.redis.Kill()
	time.Sleep(300 * time.Millisecond) // calls keep coming while Redis is gone
	f.redis.Restart()
	done.Wait()
	t.Logf("served %d of %d; refused: %v", served, workers*perWorker, reasons)
	for r := range reasons {
		if r != "store_unavailable" {
			t.Fatalf("unexpected answers during the outage: %v", reasons)
		}
	}

	// Every gateway serves again, without a restart.
	for _, g := range f.gws {
		waitReady(t, g)
		if o, err := callEcho(g.URL, secret, 99999); err != nil || !o.ok {
			t.Fatalf("%s after Redis returned: %+v %v", g.URL, o, err)
		}
		served++
	}

	// Money: what was served is exactly what was charged, net of refunds
	// and voids (corrections of replies lost in the kill land once Redis
	// is back).
	var charges, refunds int64
	var a store.Account
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		if a, err = st.Account(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		charges, refunds = ledgerTotals(t, st, id)
		if int64(served) == initial-a.Balance && charges-refunds == initial-a.Balance || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := initial - a.Balance; got != int64(served) || charges-refunds != got {
		t.Fatalf("served %d calls, balance fell by %d, ledger charges %d - refunds %d", served, got, charges, refunds)
	}
	t.Logf("ledger: %d charges, %d refunded (voided replies lost in the kill)", charges, refunds)
	storetest.CheckInvariant(t, st, id)
}

func waitReady(t *testing.T, g *gateway) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(g.URL + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready 20s after Redis returned", g.URL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
