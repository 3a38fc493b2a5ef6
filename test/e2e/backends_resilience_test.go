package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend/flakytest"
)

// flakyConfig puts one flaky test server (a real go-sdk MCP server that
// counts executions and fails on command) behind the gateway as prefix f.
func flakyConfig(srv *flakytest.Server, extra map[string]any) map[string]any {
	cfg := map[string]any{
		"servers":               []map[string]any{{"prefix": "f", "remoteUrl": srv.URL, "remoteTransport": "streamable"}},
		"defaultCreditsPerCall": 2,
		"globalRateLimitPerMin": 0,
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

// TestBackendsToolTimeout: a tool that hangs is answered -32004 once its
// timeout (its own timeoutMs, else toolTimeoutMs) passes; the call is
// cancelled upstream and refunded.
func TestBackendsToolTimeout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra map[string]any
	}{
		{"per tool", map[string]any{"toolTimeoutMs": 60000, "toolPricing": map[string]any{"f:sleep": map[string]any{"creditsPerCall": 4, "timeoutMs": 300}}}},
		{"global", map[string]any{"toolTimeoutMs": 300, "toolPricing": map[string]any{"f:sleep": map[string]any{"creditsPerCall": 4}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := flakytest.Start(t, flakytest.Options{})
			g := bkGateway(t, flakyConfig(srv, tc.extra))
			key := g.createKey(50, nil)

			res, took := g.bkCall(key, "f:sleep", map[string]any{"ms": 20000})
			if res.Error == nil || res.Error.Code != -32004 {
				t.Fatalf("hanging tool: %+v %s", res.Error, res.Result)
			}
			if took < 250*time.Millisecond || took > 5*time.Second {
				t.Errorf("answered after %s; the timeout is 300ms", took)
			}
			if bal := g.balance(key); bal != 50 {
				t.Errorf("balance %d, want 50: a timed-out call is refunded", bal)
			}
			led := g.bkLedger(key)
			if bkCount(led, "deduction", "f:sleep") != 1 || bkCount(led, "refund", "f:sleep") != 1 {
				t.Errorf("ledger %+v: want one charge and its refund", led)
			}
			// The server was told to stop: notifications/cancelled reached it
			// and the tool's context ended.
			bkEventually(t, "the cancellation to reach the server", func() bool {
				return srv.Cancels() >= 1 && srv.Interrupted() >= 1
			})

			// A fast call under the same timeout is served and charged.
			res, _ = g.bkCall(key, "f:sleep", map[string]any{"ms": 1})
			if txt := bkText(t, res); txt != "slept" {
				t.Errorf("fast sleep: %s", txt)
			}
			if bal := g.balance(key); bal != 46 {
				t.Errorf("balance %d, want 46", bal)
			}
		})
	}
}

// TestBackendsCircuitBreaker: a backend failing every call opens its
// breaker after circuitBreakerThreshold failures; calls are then refused
// at once with -32003 and leave no ledger entries. Once the backend is
// back and the cooldown has passed, the trial call closes the breaker.
// POST /admin/circuit closes it at once.
func TestBackendsCircuitBreaker(t *testing.T) {
	srv := flakytest.Start(t, flakytest.Options{})
	g := bkGateway(t, flakyConfig(srv, map[string]any{"circuitBreakerThreshold": 3, "circuitBreakerCooldownSeconds": 2}))
	key := g.createKey(100, nil)
	res, _ := g.bkCall(key, "f:count", nil)
	bkText(t, res)
	if c := g.bkCircuits()["f"]; c.State != "closed" || c.Failures != 0 {
		t.Fatalf("circuit %+v", c)
	}

	openIt := func() {
		t.Helper()
		srv.SetDown(true)
		for i := range 3 {
			res, _ := g.bkCall(key, "f:count", nil)
			if res.Error == nil || res.Error.Code != -32003 || bkErrorData(t, res)["reason"] == "circuit_breaker_open" {
				t.Fatalf("failure %d: %+v", i, res.Error)
			}
		}
	}
	openIt()
	balance, entries := g.balance(key), len(g.bkLedger(key))
	if balance != 98 {
		t.Errorf("balance %d, want 98: failed calls are refunded", balance)
	}
	for i := range 3 {
		res, took := g.bkCall(key, "f:count", nil)
		d := bkErrorData(t, res)
		if res.Error.Code != -32003 || d["reason"] != "circuit_breaker_open" || d["backend"] != "f" {
			t.Fatalf("call %d with the breaker open: %+v %v", i, res.Error, d)
		}
		if took > time.Second {
			t.Errorf("refused after %s; an open breaker answers at once", took)
		}
	}
	if n := len(g.bkLedger(key)); n != entries || g.balance(key) != balance {
		t.Errorf("breaker refusals wrote %d ledger entries; they must write none", n-entries)
	}
	c := g.bkCircuits()["f"]
	if c.State != "open" || c.Failures != 3 || c.Rejections < 3 || c.OpenedAt == "" {
		t.Errorf("circuit %+v", c)
	}
	if _, bs := g.bkHealth(); bs["f"].Circuit != "open" {
		t.Errorf("/health: %+v", bs["f"])
	}

	// Back up: after the cooldown the trial call closes the breaker.
	srv.SetDown(false)
	ran := srv.Executions("count")
	bkEventually(t, "the trial call to close the breaker", func() bool {
		res, _ := g.bkCall(key, "f:count", nil)
		return res.Error == nil
	})
	if c := g.bkCircuits()["f"]; c.State != "closed" || c.Failures != 0 {
		t.Errorf("after the trial: %+v", c)
	}
	if srv.Executions("count") != ran+1 {
		t.Errorf("count ran %d times while the breaker recovered, want 1", srv.Executions("count")-ran)
	}

	// Opened again, an admin resets it without waiting for the cooldown.
	openIt()
	if c := g.bkCircuits()["f"]; c.State != "open" {
		t.Fatalf("not open again: %+v", c)
	}
	var reset struct {
		Reset []string `json:"reset"`
	}
	if code := g.admin("POST", "/admin/circuit", map[string]any{"backend": "f"}, &reset); code != 200 || len(reset.Reset) != 1 {
		t.Fatalf("POST /admin/circuit: %d %+v", code, reset)
	}
	srv.SetDown(false)
	res, _ = g.bkCall(key, "f:count", nil)
	if txt := bkText(t, res); !strings.Contains(txt, "count=") {
		t.Errorf("after reset: %s", txt)
	}
	if c := g.bkCircuits()["f"]; c.State != "closed" {
		t.Errorf("after reset: %+v", c)
	}
}

// TestBackendsRetriesNeverDuplicate: a counting tool behind a front that
// fails on purpose. Requests refused with 503 before the server saw them
// are retried and the tool runs once; a request whose connection dropped
// after the tool ran is not retried: it ran once, the caller gets -32003
// and is refunded.
func TestBackendsRetriesNeverDuplicate(t *testing.T) {
	srv := flakytest.Start(t, flakytest.Options{})
	g := bkGateway(t, flakyConfig(srv, map[string]any{"retryMaxRetries": 2, "retryBaseDelayMs": 10, "retryMaxDelayMs": 50}))
	key := g.createKey(100, nil)

	srv.FailNext(2)
	res, _ := g.bkCall(key, "f:count", nil)
	if txt := bkText(t, res); txt != "flaky count=1" {
		t.Fatalf("after two 503s: %s", txt)
	}
	if n := srv.Executions("count"); n != 1 {
		t.Fatalf("count ran %d times, want 1", n)
	}
	if bal := g.balance(key); bal != 98 {
		t.Errorf("balance %d, want 98: one call, one charge", bal)
	}

	srv.DropNext(1)
	res, _ = g.bkCall(key, "f:count", nil)
	if res.Error == nil || res.Error.Code != -32003 {
		t.Fatalf("dropped connection: %+v %s", res.Error, res.Result)
	}
	time.Sleep(300 * time.Millisecond) // a retry, if there were one, would have run
	if n := srv.Executions("count"); n != 2 {
		t.Fatalf("count ran %d times, want 2: a call that may have run is never retried", n)
	}
	if bal := g.balance(key); bal != 98 {
		t.Errorf("balance %d, want 98: the dropped call is refunded", bal)
	}

	// Three 503s are more than two retries: the caller learns it, unbilled.
	srv.FailNext(3)
	res, _ = g.bkCall(key, "f:count", nil)
	if res.Error == nil || res.Error.Code != -32003 {
		t.Fatalf("three 503s: %+v", res.Error)
	}
	if n := srv.Executions("count"); n != 2 {
		t.Errorf("count ran %d times, want 2", n)
	}
	bkEventually(t, "the backend to serve again", func() bool {
		res, _ := g.bkCall(key, "f:count", nil)
		return res.Error == nil
	})
	if bal := g.balance(key); bal != 96 {
		t.Errorf("balance %d, want 96", bal)
	}
}
