package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// priceConfig is a config file body charging price per echo call, with no
// per-key rate limit (the load would trip the default 60/min).
func priceConfig(price int) map[string]any {
	return map[string]any{
		"globalRateLimitPerMin": 0,
		"defaultCreditsPerCall": 1,
		"toolPricing":           map[string]any{"echo": map[string]any{"creditsPerCall": price}},
	}
}

// TestOpsReloadUnderLoad rewrites the config file with new prices and
// reloads it, alternately through POST /config/reload and SIGHUP, while
// concurrent callers keep calling: no call may fail, a broken file is
// refused with its errors named and changes nothing, and the last price
// is the one charged.
func TestOpsReloadUnderLoad(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "paygate.json")
	writeFileAtomic(t, cfgPath, priceConfig(1))
	g := startGateway(t, "--config", cfgPath, "--server", echoServer(t, 0))
	key := g.createKey(1_000_000_000, nil)

	const workers = 8
	var total, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ok, code, body, err := callTool(client, g.URL, key, "echo", map[string]any{"w": w, "i": i})
				total.Add(1)
				if !ok {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("worker %d call %d: %v %d %s", w, i, err, code, body))
				}
			}
		}()
	}
	// progress waits until the callers have made n more calls, so every
	// reload overlaps calls in flight.
	progress := func(n int64) {
		t.Helper()
		target := total.Load() + n
		deadline := time.Now().Add(30 * time.Second)
		for total.Load() < target {
			if time.Now().After(deadline) {
				t.Fatalf("load stalled at %d calls", total.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}

	progress(50)
	for i := 1; i <= 12; i++ {
		writeFileAtomic(t, cfgPath, priceConfig(1+i%5))
		if i%2 == 0 {
			var res struct {
				OK bool `json:"ok"`
			}
			if code := g.admin("POST", "/config/reload", nil, &res); code != 200 || !res.OK {
				t.Fatalf("reload %d: %d", i, code)
			}
		} else if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		progress(2 * workers)
		if i == 6 {
			// A broken file is refused, names its errors, changes nothing.
			bad := priceConfig(3)
			bad["toolPricing"] = map[string]any{"echo": map[string]any{"creditsPerCall": -5}}
			writeFileAtomic(t, cfgPath, bad)
			r := g.raw("POST", "/config/reload", map[string]string{"X-Admin-Key": testAdminKey}, "")
			if r.status != 400 || !strings.Contains(string(r.body), "toolPricing.echo.creditsPerCall") {
				t.Fatalf("broken file: %d %s", r.status, r.body)
			}
			progress(2 * workers)
		}
	}
	const final = 7
	writeFileAtomic(t, cfgPath, priceConfig(final))
	var res struct {
		OK      bool     `json:"ok"`
		Changed []string `json:"changed"`
		Message string   `json:"message"`
	}
	if code := g.admin("POST", "/config/reload", nil, &res); code != 200 || !res.OK || !strings.HasPrefix(res.Message, "Config reloaded") {
		t.Fatalf("final reload: %d %+v", code, res)
	}
	progress(2 * workers)
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d calls failed during reloads; first: %v", n, total.Load(), firstFailure.Load())
	}
	t.Logf("%d calls, none failed, across 13 reloads", total.Load())

	before := g.balance(key)
	if ok, code, body, err := callTool(client, g.URL, key, "echo", nil); !ok {
		t.Fatalf("call after reloads: %v %d %s", err, code, body)
	}
	if charged := before - g.balance(key); charged != final {
		t.Fatalf("charged %d after the reloads, want the new price %d", charged, final)
	}
	var pricing struct {
		Tools []struct {
			Name           string `json:"name"`
			CreditsPerCall int64  `json:"creditsPerCall"`
		} `json:"tools"`
	}
	if g.do("GET", "/pricing", nil, nil, &pricing); len(pricing.Tools) != 1 || pricing.Tools[0].CreditsPerCall != final {
		t.Fatalf("/pricing after reload = %+v", pricing)
	}
}

// callOutcome is how one call during a drain ended.
type callOutcome int

const (
	outcomeOK      callOutcome = iota // a result
	outcomeRefused                    // 503 from the draining gateway
	outcomeGone                       // connection refused or closed: the listener is down
	outcomeWrong                      // anything else: a bug
)

func classify(ok bool, code int, err error) callOutcome {
	switch {
	case err != nil:
		return outcomeGone
	case ok:
		return outcomeOK
	case code == http.StatusServiceUnavailable:
		return outcomeRefused
	}
	return outcomeWrong
}

// TestOpsDrainOnSIGTERM: SIGTERM while calls are in flight. Every call
// the gateway had accepted before the signal completes and is charged
// once; calls that arrive during the drain are refused with 503 (or find
// the listener closed) and are not charged; the process exits cleanly
// and no call ends any other way.
func TestOpsDrainOnSIGTERM(t *testing.T) {
	const delay = 1500 * time.Millisecond
	g := startGateway(t, "--server", echoServer(t, delay), "--rate-limit", "0", "--public-rate-limit", "0", "--drain-timeout", "30s")
	const credits = 10_000
	key := g.createKey(credits, nil)

	// Phase 1: calls in flight when the signal comes. Wait until the
	// gateway reports all of them in flight: only then have they
	// "started" as far as the server can know.
	const inFlight = 8
	type result struct {
		ok   bool
		code int
		body []byte
		err  error
	}
	first := make(chan result, inFlight)
	for i := range inFlight {
		go func() {
			ok, code, body, err := callTool(&http.Client{}, g.URL, key, "echo", map[string]any{"i": i})
			first <- result{ok, code, body, err}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var h struct {
			InFlight int `json:"inflight"`
		}
		g.do("GET", "/health", nil, nil, &h)
		if h.InFlight == inFlight {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d calls in flight", h.InFlight)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// Phase 2: load during the drain, until the process is gone.
	var counts [4]atomic.Int64
	var wrong atomic.Value
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			for i := 0; ; i++ {
				ok, code, body, err := callTool(client, g.URL, key, "echo", map[string]any{"w": w, "i": i})
				o := classify(ok, code, err)
				counts[o].Add(1)
				if o == outcomeWrong {
					wrong.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, body))
				}
				switch o {
				case outcomeGone:
					return
				case outcomeRefused:
					time.Sleep(time.Millisecond) // as a client honouring Retry-After would, briefly
				}
			}
		}()
	}

	for range inFlight {
		r := <-first
		if !r.ok {
			t.Errorf("a call in flight at SIGTERM failed: %v %d %s", r.err, r.code, r.body)
		}
	}
	select {
	case <-g.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("paygate did not exit after draining:\n%s", g.out.String())
	}
	if code := g.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM:\n%s", code, g.out.String())
	}
	wg.Wait()
	if w := wrong.Load(); w != nil {
		t.Errorf("%d calls during the drain ended wrongly; first: %v", counts[outcomeWrong].Load(), w)
	}
	if counts[outcomeRefused].Load()+counts[outcomeGone].Load() == 0 {
		t.Error("no call was refused after SIGTERM")
	}
	if _, err := g.try("GET", "/health", nil, ""); err == nil {
		t.Error("the listener still accepts connections after exit")
	}
	t.Logf("during the drain: %d served (accepted before the drain began), %d refused with 503, %d found the listener closed",
		counts[outcomeOK].Load(), counts[outcomeRefused].Load(), counts[outcomeGone].Load())

	if !strings.Contains(g.out.String(), "draining") {
		t.Error("no drain in the log")
	}

	// The ledger agrees: exactly the calls that got a result were charged.
	g.restart()
	served := int64(inFlight) + counts[outcomeOK].Load()
	if b := g.balance(key); b != credits-served {
		t.Fatalf("balance %d after restart, want %d (%d calls served)", b, credits-served, served)
	}
}
