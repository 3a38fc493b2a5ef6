package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/bench/echoserver"
)

func echoHTTP(t *testing.T, sse bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(&echoserver.HTTPHandler{Server: &echoserver.Server{}, SSE: sse})
	t.Cleanup(srv.Close)
	return srv
}

func TestRunAgainstEcho(t *testing.T) {
	tests := []struct {
		name      string
		serverSSE bool
		cfg       Config
		wantSSE   bool
	}{
		{name: "sessions, json", cfg: Config{Accept: AcceptJSON}},
		{name: "stateless, both", cfg: Config{Stateless: true, Accept: AcceptBoth}},
		{name: "sessions, sse only", cfg: Config{Accept: AcceptSSE}, wantSSE: true},
		{name: "server prefers sse", serverSSE: true, cfg: Config{Accept: AcceptBoth}, wantSSE: true},
		{name: "padded arguments", cfg: Config{ArgsSize: 4000}},
		{name: "keys", cfg: Config{Keys: []string{"k1", "k2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URL = echoHTTP(t, tc.serverSSE).URL
			cfg.Concurrency = 4
			cfg.Requests = 200
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 200 || res.OK != 200 || res.Errors.Total() != 0 {
				t.Fatalf("requests %d ok %d errors %s (first: %s), want 200 ok", res.Requests, res.OK, res.Errors.String(), res.FirstError)
			}
			if want := int64(0); tc.wantSSE {
				want = 200
				if res.SSEReplies != want {
					t.Errorf("SSE replies %d, want %d", res.SSEReplies, want)
				}
			} else if res.SSEReplies != want {
				t.Errorf("SSE replies %d, want %d", res.SSEReplies, want)
			}
			if res.CallsPerSec <= 0 || res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
				t.Errorf("implausible numbers: %.0f calls/s, latency %+v", res.CallsPerSec, res.Latency)
			}
		})
	}
}

// recorder wraps the echo handler and records what the load generator sent.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	ids  map[string]int // JSON-RPC id of tools/call → times seen
	keys map[string]int
	args []int // length of each tools/call's arguments
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Arguments json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) == nil && m.Method == "tools/call" {
		rec.mu.Lock()
		rec.ids[string(m.ID)]++
		rec.keys[r.Header.Get("X-API-Key")]++
		rec.args = append(rec.args, len(m.Params.Arguments))
		rec.mu.Unlock()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec.next.ServeHTTP(w, r)
}

func TestRunIDsStartAtOnePerWorkerAndKeysSpread(t *testing.T) {
	rec := &recorder{next: &echoserver.HTTPHandler{Server: &echoserver.Server{}}, ids: map[string]int{}, keys: map[string]int{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		URL: srv.URL, Concurrency: 4, Duration: 200 * time.Millisecond,
		Keys: []string{"a", "b"}, ArgsSize: 500,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK == 0 || res.Errors.Total() != 0 {
		t.Fatalf("ok %d errors %s", res.OK, res.Errors.String())
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.ids["1"] != 4 || rec.ids["2"] != 4 {
		t.Errorf("id 1 sent %d times and id 2 %d times, want 4 each (one per worker)", rec.ids["1"], rec.ids["2"])
	}
	if rec.ids["0"] != 0 {
		t.Errorf("tools/call with id 0 (initialize's id) sent %d times", rec.ids["0"])
	}
	if rec.keys["a"] == 0 || rec.keys["b"] == 0 || len(rec.keys) != 2 {
		t.Errorf("keys used: %v, want a and b", rec.keys)
	}
	for _, n := range rec.args {
		if n < 490 || n > 510 {
			t.Fatalf("arguments of %d bytes, want about 500", n)
		}
	}
}

// crossing answers each tools/call with the previous call's arguments: a
// gateway that delivers replies to the wrong caller.
type crossing struct {
	mu   sync.Mutex
	prev json.RawMessage
}

func (c *crossing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Params struct {
			Arguments json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	_ = json.NewDecoder(r.Body).Decode(&m)
	c.mu.Lock()
	args := c.prev
	if args == nil {
		args = m.Params.Arguments
	}
	c.prev = m.Params.Arguments
	c.mu.Unlock()
	text, _ := json.Marshal(string(args))
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":%s}]}}`, m.ID, text)
}

func TestRunCountsWrongDeliveries(t *testing.T) {
	srv := httptest.NewServer(&crossing{})
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Concurrency: 1, Requests: 50, Stateless: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 1 || res.Errors.Mismatches != 49 {
		t.Fatalf("ok %d mismatches %d, want 1 and 49", res.OK, res.Errors.Mismatches)
	}
	if res.FirstError == "" {
		t.Error("no first error recorded")
	}
}

// gatekeeper answers by API key: 401 for "bad", a -32402 error for "poor",
// and the echo for anyone else.
func gatekeeper(echo http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-API-Key") {
		case "bad":
			http.Error(w, "invalid_api_key", http.StatusUnauthorized)
		case "poor":
			var m struct {
				ID json.RawMessage `json:"id"`
			}
			_ = json.NewDecoder(r.Body).Decode(&m)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32402,"message":"insufficient_credits"}}`, m.ID)
		default:
			echo.ServeHTTP(w, r)
		}
	})
}

func TestRunCountsErrors(t *testing.T) {
	srv := httptest.NewServer(gatekeeper(&echoserver.HTTPHandler{Server: &echoserver.Server{}}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		URL: srv.URL, Concurrency: 3, Duration: 200 * time.Millisecond, Stateless: true,
		Keys: []string{"good", "bad", "poor"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Errors
	if res.OK == 0 || e.HTTP[401] == 0 || e.JSONRPC[-32402] == 0 || e.Mismatches != 0 {
		t.Fatalf("ok %d, errors %s: want some of each of ok, http 401 and jsonrpc -32402", res.OK, e.String())
	}
	if res.OK+e.Total() != res.Requests {
		t.Errorf("ok %d + errors %d != requests %d", res.OK, e.Total(), res.Requests)
	}
}

func TestRunTimeouts(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	res, err := Run(context.Background(), Config{
		URL: srv.URL, Concurrency: 2, Requests: 4, Stateless: true, Timeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors.Timeouts != 4 || res.OK != 0 {
		t.Fatalf("timeouts %d ok %d, want 4 and 0 (errors %s)", res.Errors.Timeouts, res.OK, res.Errors.String())
	}
}

func TestRunFailsWhenSessionsCannotStart(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()
	_, err := Run(context.Background(), Config{URL: srv.URL, Concurrency: 2, Requests: 10})
	if err == nil {
		t.Fatal("Run succeeded against a server that refuses initialize")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"duration", Config{URL: "http://x", Concurrency: 1, Duration: time.Second}, true},
		{"requests", Config{URL: "http://x", Concurrency: 1, Requests: 5}, true},
		{"no url", Config{Concurrency: 1, Requests: 5}, false},
		{"no workers", Config{URL: "http://x", Requests: 5}, false},
		{"no limit", Config{URL: "http://x", Concurrency: 1}, false},
		{"bad accept", Config{URL: "http://x", Concurrency: 1, Requests: 5, Accept: "xml"}, false},
		{"negative warmup", Config{URL: "http://x", Concurrency: 1, Requests: 5, Warmup: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestRunCallsOnMeasureStartOnceAfterWarmup(t *testing.T) {
	srv := echoHTTP(t, false)
	start := time.Now()
	var calls int
	var at time.Duration
	res, err := Run(context.Background(), Config{
		URL: srv.URL, Concurrency: 2, Warmup: 100 * time.Millisecond, Duration: 100 * time.Millisecond,
		OnMeasureStart: func() { calls++; at = time.Since(start) },
	})
	if err != nil {
		t.Fatal(err)
	}
	// Run returned after the callback did, so reading calls is race-free.
	if calls != 1 || at < 100*time.Millisecond {
		t.Fatalf("OnMeasureStart called %d times, at %v; want once, after the 100ms warmup", calls, at)
	}
	// On a loaded machine every call may straddle the short window, so
	// only check the window when something was measured in it.
	if res.OK > 0 && (res.Elapsed <= 0 || res.Elapsed > 2) {
		t.Errorf("ok %d in %.3fs, want calls over about 0.1s", res.OK, res.Elapsed)
	}
}
