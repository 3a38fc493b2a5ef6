package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
)

// TestConcurrentCallsNeverOverspend: 200 simultaneous tools/call against
// a key holding 50 credits: exactly 50 are served, the other 150 are
// refused for insufficient credits, the balance ends at 0 and the ledger
// holds exactly the 50 charges of the served calls.
func TestConcurrentCallsNeverOverspend(t *testing.T) {
	g := startGateway(t, "--server", billEcho(t), "--rate-limit", "0", "--price", "1")
	k := g.newBilledKey(50, nil)
	hc := billClient()

	const n = 200
	type outcome struct {
		reqID  string
		served bool
		reason string
		err    error
	}
	results := make([]outcome, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("conc-%d", i)
			<-start
			r, _, err := billRPC(hc, g.URL, map[string]string{"X-API-Key": k.Secret, "X-Request-Id": id}, i, "tools/call",
				map[string]any{"name": "echo", "arguments": map[string]any{"i": i}})
			results[i] = outcome{reqID: id, err: err, served: err == nil && r.Error == nil, reason: r.reason()}
			if err == nil && r.Error != nil && r.reason() == "" {
				results[i].err = fmt.Errorf("error %d %s", r.Error.Code, r.Error.Message)
			}
		}()
	}
	close(start)
	wg.Wait()

	served := map[string]bool{}
	refused := 0
	for _, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("%s: %v", r.reqID, r.err)
		case r.served:
			served[r.reqID] = true
		case r.reason == "insufficient_credits":
			refused++
		default:
			t.Errorf("%s refused for %q", r.reqID, r.reason)
		}
	}
	if len(served) != 50 || refused != 150 {
		t.Fatalf("%d served, %d refused; want 50 and 150", len(served), refused)
	}
	h := g.billCheckLedger(k.ID)
	if h.CurrentBalance != 0 || h.count("deduction") != 50 || h.count("refund") != 0 || h.sum("deduction") != -50 {
		t.Fatalf("balance %d, %d charges summing to %d, %d refunds", h.CurrentBalance, h.count("deduction"), h.sum("deduction"), h.count("refund"))
	}
	for _, e := range h.Entries {
		if e.Type == "deduction" && !served[e.RequestID] {
			t.Errorf("charge %+v belongs to no served call", e)
		}
		delete(served, e.RequestID)
	}
	if len(served) != 0 {
		t.Errorf("served calls without a charge: %v", served)
	}
}

// TestConcurrentBatchesAndTransfers: single calls, tools/call_batch and
// POST /keys/transfer race over a few keys. No key ever goes negative,
// every key's balance equals the sum of its ledger, credits are conserved
// (grants = balances + net charges), and what clients were told they were
// charged is what the ledger holds.
func TestConcurrentBatchesAndTransfers(t *testing.T) {
	g := startGateway(t, "--server", billEcho(t), "--rate-limit", "0", "--price", "1")
	const nKeys, grant = 4, 120
	keys := make([]billedKey, nKeys)
	for i := range keys {
		keys[i] = g.newBilledKey(grant, nil)
	}
	hc := billClient()

	var mu sync.Mutex
	var charged int64 // what served calls and batches told their clients
	var transferred int64
	var faults []string
	fault := func(format string, args ...any) {
		mu.Lock()
		faults = append(faults, fmt.Sprintf(format, args...))
		mu.Unlock()
	}

	var wg sync.WaitGroup
	worker := func(seed uint64, ops int, op func(r *rand.Rand, i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 7))
			for i := range ops {
				op(r, i)
			}
		}()
	}
	for w := range 6 { // single calls
		worker(uint64(w), 40, func(r *rand.Rand, i int) {
			k := keys[r.IntN(nKeys)]
			res, _, err := billRPC(hc, g.URL, map[string]string{"X-API-Key": k.Secret}, i, "tools/call",
				map[string]any{"name": "echo", "arguments": map[string]any{"w": w, "i": i}})
			switch {
			case err != nil:
				fault("call: %v", err)
			case res.Error == nil:
				mu.Lock()
				charged++
				mu.Unlock()
			case res.reason() != "insufficient_credits":
				fault("call refused: %+v", res.Error)
			}
		})
	}
	for w := range 6 { // batches of 1 to 6 items
		worker(uint64(100+w), 25, func(r *rand.Rand, i int) {
			k := keys[r.IntN(nKeys)]
			items := 1 + r.IntN(6)
			tools := make([]string, items)
			for j := range tools {
				tools[j] = "echo"
			}
			res, _, err := billRPC(hc, g.URL, map[string]string{"X-API-Key": k.Secret}, i, "tools/call_batch", billBatch(tools...))
			switch {
			case err != nil:
				fault("batch: %v", err)
			case res.Error == nil:
				var br billBatchResult
				if err := json.Unmarshal(res.Result, &br); err != nil || len(br.Results) != items || br.TotalCreditsCharged != int64(items) {
					fault("batch of %d: %s", items, res.Result)
					return
				}
				mu.Lock()
				charged += br.TotalCreditsCharged
				mu.Unlock()
			case res.reason() != "insufficient_credits":
				fault("batch refused: %+v", res.Error)
			}
		})
	}
	for w := range 4 { // transfers of 1 to 15 credits
		worker(uint64(200+w), 30, func(r *rand.Rand, i int) {
			from := r.IntN(nKeys)
			to := (from + 1 + r.IntN(nKeys-1)) % nKeys
			amount := int64(1 + r.IntN(15))
			code, body, err := billAdminPost(hc, g.URL, "/keys/transfer", map[string]any{"from": keys[from].ID, "to": keys[to].ID, "credits": amount})
			switch {
			case err != nil:
				fault("transfer: %v", err)
			case code == http.StatusOK:
				mu.Lock()
				transferred += amount
				mu.Unlock()
			case code != http.StatusBadRequest || !bytes.Contains(body, []byte("insufficient credits")):
				fault("transfer: %d %s", code, body)
			}
		})
	}
	wg.Wait()
	for _, f := range faults {
		t.Error(f)
	}

	var balances, charges, refunds, in, out int64
	for _, k := range keys {
		h := g.billCheckLedger(k.ID)
		balances += h.CurrentBalance
		charges += -h.sum("deduction")
		refunds += h.sum("refund")
		in += h.sum("transfer_in")
		out += -h.sum("transfer_out")
	}
	t.Logf("charged %d, transferred %d, balances %d", charges, in, balances)
	if in != out || in != transferred {
		t.Errorf("transfers: %d in, %d out, clients saw %d", in, out, transferred)
	}
	if charges-refunds != charged {
		t.Errorf("ledger charges %d − refunds %d, clients were charged %d", charges, refunds, charged)
	}
	if balances+charges-refunds != nKeys*grant {
		t.Errorf("credits not conserved: balances %d + net charges %d != grants %d", balances, charges-refunds, nKeys*grant)
	}
	if charged == 0 || transferred == 0 {
		t.Errorf("the load did nothing: charged %d, transferred %d", charged, transferred)
	}
}

// billAdminPost posts body to an admin route and returns the status and body;
// unlike gateway.admin it reports transport errors, for goroutines.
func billAdminPost(hc *http.Client, base, path string, body any) (int, []byte, error) {
	return billAdminRequest(hc, base, path, nil, body)
}

// billAdminRequest is billAdminPost with extra request headers.
func billAdminRequest(hc *http.Client, base, path string, hdr map[string]string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Admin-Key", testAdminKey)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// TestConcurrentLimitsNeverOverspend: concurrent calls never pass a
// spending limit, a call quota or a balance (batches), and every refusal
// has the same shape whether the gate's pre-check or the store's atomic
// charge refused it: the call's price as creditsRequired, the key's
// balance as remainingCredits, retryAfter for quotas, failedIndex for
// batches.
func TestConcurrentLimitsNeverOverspend(t *testing.T) {
	g := startGateway(t, "--server", billEcho(t), "--rate-limit", "0", "--price", "2")
	hc := billClient()
	// burst sends n copies of one request at once and returns the answers.
	burst := func(n int, key, method string, params any) []rpcResponse {
		out := make([]rpcResponse, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r, _, err := billRPC(hc, g.URL, map[string]string{"X-API-Key": key}, i, method, params)
				if err != nil {
					t.Error(err)
				}
				out[i] = r
			}()
		}
		close(start)
		wg.Wait()
		return out
	}
	echo := map[string]any{"name": "echo", "arguments": map[string]any{}}

	for _, tc := range []struct {
		name    string
		setup   func(k billedKey)
		method  string
		params  any
		credits int64
		served  int
		reason  string
		check   func(t *testing.T, d denialInfo)
	}{
		{
			name: "spending_limit",
			setup: func(k billedKey) {
				g.billAdmin("POST", "/limits", map[string]any{"key": k.ID, "spendingLimit": 20}, nil)
			},
			method: "tools/call", params: echo, credits: 1000, served: 10, reason: "spending_limit_exceeded",
			check: func(t *testing.T, d denialInfo) {
				if *d.CreditsRequired != 2 || *d.RemainingCredits < 980 || *d.RemainingCredits > 1000 {
					t.Errorf("creditsRequired %d, remainingCredits %d; want 2 and the key's balance", *d.CreditsRequired, *d.RemainingCredits)
				}
			},
		},
		{
			name: "daily_call_quota",
			setup: func(k billedKey) {
				g.billAdmin("POST", "/keys/quota", map[string]any{"key": k.ID, "dailyCallLimit": 15}, nil)
			},
			method: "tools/call", params: echo, credits: 1000, served: 15, reason: "quota_exceeded",
			check: func(t *testing.T, d denialInfo) {
				if *d.CreditsRequired != 2 || *d.RemainingCredits < 970 || d.RetryAfter == nil || *d.RetryAfter < 1 {
					t.Errorf("creditsRequired %d, remainingCredits %d, retryAfter %v; want 2, the balance and the end of the day",
						*d.CreditsRequired, *d.RemainingCredits, d.RetryAfter)
				}
			},
		},
		{
			name:   "batch_balance",
			setup:  func(billedKey) {},
			method: "tools/call_batch", params: billBatch("echo", "echo", "echo"), credits: 20, served: 3, reason: "insufficient_credits",
			check: func(t *testing.T, d denialInfo) {
				if d.FailedIndex == nil || *d.CreditsRequired != 6 || *d.RemainingCredits > 20 {
					t.Errorf("failedIndex %v, creditsRequired %d, remainingCredits %d", d.FailedIndex, *d.CreditsRequired, *d.RemainingCredits)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := g.newBilledKey(tc.credits, nil)
			tc.setup(k)
			served := 0
			for _, r := range burst(60, k.Secret, tc.method, tc.params) {
				if r.Error == nil {
					served++
					continue
				}
				d := billDenial(t, r)
				if d.Reason != tc.reason {
					t.Errorf("refused for %s (%s), want %s", d.Reason, r.Error.Message, tc.reason)
					continue
				}
				tc.check(t, d)
			}
			price := int64(2) // per call, per batch item
			if tc.method == "tools/call_batch" {
				price = 6 // three items
			}
			h := g.billCheckLedger(k.ID)
			if served != tc.served || h.CurrentBalance != tc.credits-price*int64(tc.served) {
				t.Errorf("%d served (want %d), balance %d (want %d)", served, tc.served, h.CurrentBalance, tc.credits-price*int64(tc.served))
			}
		})
	}
}
