package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/paygate/paygate/internal/backend/flakytest"
)

// The call controls of issue 7 against the real binary and a real go-sdk
// MCP server that counts how often each tool ran (flakytest): concurrency
// caps, the response cache, dynamic discovery (through the go-sdk client)
// and tool aliases. Helpers start with gf.

// gfConfig wraps srv as the single backend (tools keep their names).
func gfConfig(srv *flakytest.Server, extra map[string]any) map[string]any {
	cfg := map[string]any{
		"remoteUrl":             srv.URL,
		"remoteTransport":       "streamable",
		"defaultCreditsPerCall": 2,
		"globalRateLimitPerMin": 0,
		"retryMaxRetries":       0,
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

// gfCall calls a tool and returns the answer and its headers.
func (g *gateway) gfCall(key, tool string, args any) (rpcResponse, http.Header) {
	g.t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	return g.rpc(key, 1, "tools/call", map[string]any{"name": tool, "arguments": args})
}

// gfOutcomes returns the outcomes of a key's allowed calls of tool, oldest first.
func (g *gateway) gfOutcomes(keyID, tool string, want int) []string {
	g.t.Helper()
	var got []string
	bkEventually(g.t, "the usage records", func() bool {
		var out struct {
			Events []struct {
				KeyID   string `json:"keyId"`
				Tool    string `json:"tool"`
				Outcome string `json:"outcome"`
				Credits int64  `json:"creditsCharged"`
			} `json:"events"`
		}
		g.admin("GET", "/usage?limit=1000", nil, &out)
		got = got[:0]
		for _, e := range out.Events {
			if e.KeyID == keyID && e.Tool == tool {
				got = append(got, e.Outcome)
			}
		}
		return len(got) >= want
	})
	slices.Reverse(got) // the API lists newest first
	return got
}

func (g *gateway) gfKeyID(key string) string {
	g.t.Helper()
	var out struct {
		ID string `json:"id"`
	}
	if g.do("GET", "/balance", map[string]string{"X-API-Key": key}, nil, &out); out.ID == "" {
		g.t.Fatal("GET /balance: no key id")
	}
	return out.ID
}

// TestFeaturesResponseCache: identical calls (same tool, same arguments
// however written, same key) are served from the cache without reaching
// the server; other arguments or keys miss; entries expire; hits are free
// by default and charged with cacheHitCharge "full"; DELETE /admin/cache
// empties the cache.
func TestFeaturesResponseCache(t *testing.T) {
	srv := flakytest.Start(t, flakytest.Options{})
	g := bkGateway(t, gfConfig(srv, map[string]any{
		"toolPricing": map[string]any{
			"count": map[string]any{"creditsPerCall": 3, "cacheTtlSeconds": 300},
			"echo":  map[string]any{"cacheTtlSeconds": 1},
		},
	}))
	alice, bob := g.createKey(100, nil), g.createKey(100, nil)

	r1, h1 := g.gfCall(alice, "count", map[string]any{"q": "x", "n": 1})
	r2, h2 := g.rpc(alice, 2, "tools/call", json.RawMessage(`{"name":"count","arguments":{ "n": 1.0, "q": "x" }}`))
	if h1.Get("X-Cache") != "MISS" || h2.Get("X-Cache") != "HIT" {
		t.Fatalf("X-Cache %q then %q", h1.Get("X-Cache"), h2.Get("X-Cache"))
	}
	if n := srv.Executions("count"); n != 1 {
		t.Fatalf("count ran %d times for two identical calls, want 1", n)
	}
	if a, b := bkText(t, r1), bkText(t, r2); a != "flaky count=1" || b != a {
		t.Fatalf("results %q and %q", a, b)
	}
	// Other arguments, another key: both miss and run.
	if _, h := g.gfCall(alice, "count", map[string]any{"q": "y", "n": 1}); h.Get("X-Cache") != "MISS" {
		t.Fatalf("other arguments: %q", h.Get("X-Cache"))
	}
	if _, h := g.gfCall(bob, "count", map[string]any{"q": "x", "n": 1}); h.Get("X-Cache") != "MISS" {
		t.Fatalf("other key: %q", h.Get("X-Cache"))
	}
	if n := srv.Executions("count"); n != 3 {
		t.Fatalf("count ran %d times, want 3", n)
	}
	// The hit was free: two charges of 3 for alice, a usage record for the hit.
	if bal := g.balance(alice); bal != 94 {
		t.Errorf("alice's balance %d, want 94: a cache hit is free by default", bal)
	}
	if n := bkCount(g.bkLedger(alice), "deduction", "count"); n != 2 {
		t.Errorf("%d charges, want 2", n)
	}
	if got := g.gfOutcomes(g.gfKeyID(alice), "count", 3); strings.Join(got, ",") != "ok,cache_hit,ok" {
		t.Errorf("usage outcomes %v", got)
	}

	// TTL: echo is cached for one second.
	g.gfCall(alice, "echo", map[string]any{"v": 1})
	if _, h := g.gfCall(alice, "echo", map[string]any{"v": 1}); h.Get("X-Cache") != "HIT" || srv.Executions("echo") != 1 {
		t.Fatalf("echo repeat: %q, ran %d", h.Get("X-Cache"), srv.Executions("echo"))
	}
	time.Sleep(1100 * time.Millisecond)
	if _, h := g.gfCall(alice, "echo", map[string]any{"v": 1}); h.Get("X-Cache") != "MISS" || srv.Executions("echo") != 2 {
		t.Fatalf("after the TTL: %q, ran %d", h.Get("X-Cache"), srv.Executions("echo"))
	}

	// Stats, then DELETE /admin/cache empties it: the next call runs.
	var stats struct {
		Entries int     `json:"entries"`
		Hits    int64   `json:"hits"`
		Misses  int64   `json:"misses"`
		HitRate float64 `json:"hitRate"`
	}
	if code := g.admin("GET", "/admin/cache", nil, &stats); code != 200 || stats.Entries != 4 || stats.Hits != 2 || stats.Misses != 5 {
		t.Fatalf("GET /admin/cache: %d %+v", code, stats)
	}
	var cleared struct {
		Cleared int `json:"cleared"`
	}
	if code := g.admin("DELETE", "/admin/cache?tool=count", nil, &cleared); code != 200 || cleared.Cleared != 3 {
		t.Fatalf("DELETE /admin/cache?tool=count: %d %+v", code, cleared)
	}
	if code := g.admin("DELETE", "/admin/cache", nil, &cleared); code != 200 || cleared.Cleared != 1 {
		t.Fatalf("DELETE /admin/cache: %d %+v", code, cleared)
	}
	if _, h := g.gfCall(alice, "count", map[string]any{"q": "x", "n": 1}); h.Get("X-Cache") != "MISS" || srv.Executions("count") != 4 {
		t.Fatalf("after clearing: %q, ran %d", h.Get("X-Cache"), srv.Executions("count"))
	}
}

// TestFeaturesCachedHitCharged: with cacheHitCharge "full" a hit is a
// normal charge; failed calls are never cached.
func TestFeaturesCachedHitCharged(t *testing.T) {
	srv := flakytest.Start(t, flakytest.Options{})
	g := bkGateway(t, gfConfig(srv, map[string]any{"cacheTtlSeconds": 300, "cacheHitCharge": "full",
		"toolPricing": map[string]any{"count": map[string]any{"creditsPerCall": 3}}}))
	key := g.createKey(100, nil)
	g.gfCall(key, "count", nil)
	if _, h := g.gfCall(key, "count", nil); h.Get("X-Cache") != "HIT" || srv.Executions("count") != 1 {
		t.Fatalf("repeat: %q, ran %d", h.Get("X-Cache"), srv.Executions("count"))
	}
	if bal, n := g.balance(key), bkCount(g.bkLedger(key), "deduction", "count"); bal != 94 || n != 2 {
		t.Fatalf("balance %d, %d charges: a charged hit costs like a call", bal, n)
	}
	// A backend failure is not cached: the next call runs.
	srv.FailNext(1)
	if r, _ := g.gfCall(key, "echo", nil); r.Error == nil {
		t.Fatalf("503 from the server: %s", r.Result)
	}
	if r, h := g.gfCall(key, "echo", nil); r.Error != nil || h.Get("X-Cache") != "MISS" || srv.Executions("echo") != 1 {
		t.Fatalf("after a failure: %+v %q ran %d", r.Error, h.Get("X-Cache"), srv.Executions("echo"))
	}
}

// TestFeaturesConcurrencyLimit: with maxConcurrentPerKey N, N+1
// concurrent slow calls get exactly one -32005 with a Retry-After header;
// slots come back after success, backend errors and timeouts; the caps
// change at runtime through /admin/concurrency.
func TestFeaturesConcurrencyLimit(t *testing.T) {
	const n = 3
	srv := flakytest.Start(t, flakytest.Options{})
	g := bkGateway(t, gfConfig(srv, map[string]any{"maxConcurrentPerKey": n, "circuitBreakerThreshold": 0,
		"toolPricing": map[string]any{"sleep": map[string]any{"timeoutMs": 800}}}))
	key := g.createKey(1000, nil)

	type res struct {
		r rpcResponse
		h http.Header
	}
	burst := func(calls int, ms int) []res {
		out := make([]res, calls)
		var wg sync.WaitGroup
		for i := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i].r, out[i].h = g.gfCall(key, "sleep", map[string]any{"ms": ms})
			}()
		}
		wg.Wait()
		return out
	}
	// full runs k slow calls and, once all k run at the server, one more:
	// k+1 concurrent calls, the last one certain to find the slots taken.
	full := func(k int) []res {
		ran := srv.Executions("sleep")
		out := make([]res, k+1)
		var wg sync.WaitGroup
		for i := range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i].r, out[i].h = g.gfCall(key, "sleep", map[string]any{"ms": 600})
			}()
		}
		bkEventually(t, "the slow calls to run", func() bool { return srv.Executions("sleep") == ran+k })
		out[k].r, out[k].h = g.gfCall(key, "sleep", map[string]any{"ms": 1})
		wg.Wait()
		return out
	}
	count := func(rs []res) (ok, limited int) {
		for _, x := range rs {
			switch {
			case x.r.Error == nil:
				ok++
			case x.r.Error.Code == -32005:
				limited++
				d := bkErrorData(t, x.r)
				if x.h.Get("Retry-After") != "1" || d["reason"] != "concurrency_limited" || d["retryAfter"] != 1.0 {
					t.Errorf("refusal %+v data %s, Retry-After %q", x.r.Error, x.r.Error.Data, x.h.Get("Retry-After"))
				}
			default:
				t.Errorf("unexpected error %+v", x.r.Error)
			}
		}
		return ok, limited
	}
	idle := func(when string) {
		t.Helper()
		var st struct {
			InFlight struct {
				Keys  map[string]int64 `json:"keys"`
				Tools map[string]int64 `json:"tools"`
			} `json:"inFlight"`
		}
		if code := g.admin("GET", "/admin/concurrency", nil, &st); code != 200 || len(st.InFlight.Keys) != 0 || len(st.InFlight.Tools) != 0 {
			t.Fatalf("%s: %d, in flight %+v", when, code, st.InFlight)
		}
	}

	before := g.balance(key)
	if ok, limited := count(full(n)); ok != n || limited != 1 {
		t.Fatalf("%d+1 concurrent calls with a cap of %d: %d served, %d refused", n, n, ok, limited)
	}
	if spent := before - g.balance(key); spent != 2*n {
		t.Errorf("spent %d, want %d: the refused call is not charged", spent, 2*n)
	}
	idle("after the burst")
	if ok, limited := count(burst(n, 100)); ok != n || limited != 0 {
		t.Fatalf("after completion: %d served, %d refused", ok, limited)
	}

	// Failures give their slots back too: backend errors, timeouts.
	srv.SetDown(true)
	for range n + 1 {
		if r, _ := g.gfCall(key, "echo", nil); r.Error == nil || r.Error.Code != -32003 {
			t.Fatalf("backend down: %+v", r.Error)
		}
	}
	srv.SetDown(false)
	idle("after backend errors")
	timeouts := burst(n, 60000)
	for _, x := range timeouts {
		if x.r.Error == nil || x.r.Error.Code != -32004 {
			t.Fatalf("hanging call: %+v", x.r.Error)
		}
	}
	idle("after timeouts")

	// Runtime change: one sleep at a time, no per-key cap.
	var st struct {
		PerKey int64            `json:"maxConcurrentPerKey"`
		Tools  map[string]int64 `json:"tools"`
	}
	if code := g.admin("POST", "/admin/concurrency", map[string]any{"maxConcurrentPerKey": 0, "tools": map[string]any{"sleep": 1}}, &st); code != 200 || st.PerKey != 0 || st.Tools["sleep"] != 1 {
		t.Fatalf("POST /admin/concurrency: %d %+v", code, st)
	}
	if ok, limited := count(full(1)); ok != 1 || limited != 1 {
		t.Fatalf("tool cap 1: %d served, %d refused", ok, limited)
	}
	idle("at the end")
}

// TestFeaturesDynamicDiscovery drives --discovery dynamic with the go-sdk
// client: tools/list shows the three meta-tools; search finds a tool;
// paygate_call_tool calls it and the ledger charges that tool's price; a
// tool the key's ACL denies is neither listed, found nor callable.
func TestFeaturesDynamicDiscovery(t *testing.T) {
	srv := flakytest.Start(t, flakytest.Options{})
	g := bkGateway(t, gfConfig(srv, map[string]any{"toolPricing": map[string]any{"echo": map[string]any{"creditsPerCall": 5}}}),
		"--discovery", "dynamic")
	key := g.createKey(100, map[string]any{"deniedTools": []string{"sleep"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := g.connect(ctx, key, nil)

	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range lt.Tools {
		names = append(names, tool.Name)
	}
	if strings.Join(names, ",") != "paygate_list_tools,paygate_search_tools,paygate_call_tool" {
		t.Fatalf("tools/list: %v", names)
	}

	type listing struct {
		Tools []struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			InputSchema json.RawMessage `json:"inputSchema"`
			Pricing     struct {
				CreditsPerCall int64 `json:"creditsPerCall"`
			} `json:"_pricing"`
		} `json:"tools"`
		NextCursor string `json:"nextCursor"`
		Total      int    `json:"total"`
	}
	meta := func(name string, args map[string]any) listing {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", name, err, res)
		}
		var l listing
		if err := json.Unmarshal([]byte(textOf(t, res)), &l); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return l
	}
	found := meta("paygate_search_tools", map[string]any{"query": "answers arguments"})
	if len(found.Tools) == 0 || found.Tools[0].Name != "echo" || found.Tools[0].Pricing.CreditsPerCall != 5 || len(found.Tools[0].InputSchema) == 0 {
		t.Fatalf("search: %+v", found)
	}
	all := meta("paygate_list_tools", map[string]any{"limit": 100})
	var listed []string
	for _, tool := range all.Tools {
		listed = append(listed, tool.Name)
	}
	slices.Sort(listed)
	if strings.Join(listed, ",") != "ask,count,echo" || all.Total != 3 {
		t.Fatalf("listing: %v (total %d); sleep is denied to the key", listed, all.Total)
	}
	if s := meta("paygate_search_tools", map[string]any{"query": "sleep"}); s.Total != 0 {
		t.Fatalf("search found a denied tool: %+v", s)
	}

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "paygate_call_tool",
		Arguments: map[string]any{"name": "echo", "arguments": map[string]any{"x": 1}}})
	if err != nil || res.IsError || textOf(t, res) != `flaky echo {"x":1}` {
		t.Fatalf("paygate_call_tool echo: %v %+v", err, res)
	}
	if srv.Executions("echo") != 1 || g.balance(key) != 95 {
		t.Fatalf("echo ran %d times, balance %d: the call is charged echo's price", srv.Executions("echo"), g.balance(key))
	}
	led := g.bkLedger(key)
	if bkCount(led, "deduction", "echo") != 1 || bkCount(led, "deduction", "paygate_call_tool") != 0 {
		t.Fatalf("ledger %+v", led)
	}

	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "paygate_call_tool",
		Arguments: map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 1}}})
	if err == nil || !strings.Contains(err.Error(), "tool_not_allowed") || srv.Executions("sleep") != 0 {
		t.Fatalf("denied tool through paygate_call_tool: %v, ran %d", err, srv.Executions("sleep"))
	}
	if g.balance(key) != 95 {
		t.Fatalf("balance %d after a denied call", g.balance(key))
	}
}

// TestFeaturesToolAliases: a call of a deprecated name runs the new tool,
// priced as it, with Deprecation, Sunset and Link headers; tools/list
// shows the alias as deprecated; aliases are managed at runtime through
// /admin/tool-aliases, without chains.
func TestFeaturesToolAliases(t *testing.T) {
	srv := flakytest.Start(t, flakytest.Options{})
	g := bkGateway(t, gfConfig(srv, map[string]any{
		"toolPricing":     map[string]any{"echo": map[string]any{"creditsPerCall": 5}},
		"toolAliases":     map[string]any{"old_echo": map[string]any{"to": "echo", "sunset": "2027-01-01T00:00:00Z"}},
		"listToolAliases": true,
	}))
	key := g.createKey(100, nil)

	r, h := g.gfCall(key, "old_echo", map[string]any{"v": 2})
	if txt := bkText(t, r); txt != `flaky echo {"v":2}` {
		t.Fatalf("old_echo: %q", txt)
	}
	if h.Get("Deprecation") != "true" || h.Get("Sunset") != "Fri, 01 Jan 2027 00:00:00 GMT" ||
		!strings.Contains(h.Get("Link"), `</pricing#echo>; rel="successor-version"`) {
		t.Fatalf("headers Deprecation %q Sunset %q Link %q", h.Get("Deprecation"), h.Get("Sunset"), h.Get("Link"))
	}
	led := g.bkLedger(key)
	if g.balance(key) != 95 || bkCount(led, "deduction", "echo") != 1 {
		t.Fatalf("balance %d, ledger %+v: an alias is charged as its target", g.balance(key), led)
	}
	if _, h := g.gfCall(key, "echo", nil); h.Get("Deprecation") != "" {
		t.Fatal("Deprecation header on the current name")
	}

	list, _ := g.rpc(key, 1, "tools/list", map[string]any{})
	var tl struct {
		Tools []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
			Deprecated  *struct {
				To string `json:"to"`
			} `json:"_deprecated"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(list.Result, &tl); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(tl.Tools, func(x struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Deprecated  *struct {
			To string `json:"to"`
		} `json:"_deprecated"`
	}) bool {
		return x.Name == "old_echo"
	})
	if i < 0 || tl.Tools[i].Deprecated == nil || tl.Tools[i].Deprecated.To != "echo" || !strings.HasPrefix(tl.Tools[i].Description, "Deprecated: use echo") {
		t.Fatalf("tools/list: %s", list.Result)
	}

	// Runtime management: add one, refuse a chain, count calls, remove.
	if code := g.admin("POST", "/admin/tool-aliases", map[string]any{"from": "tally", "to": "count"}, nil); code != 200 {
		t.Fatalf("POST /admin/tool-aliases: %d", code)
	}
	if code := g.admin("POST", "/admin/tool-aliases", map[string]any{"from": "older_echo", "to": "old_echo"}, nil); code != 400 {
		t.Fatalf("a chain was accepted: %d", code)
	}
	if r, _ := g.gfCall(key, "tally", nil); bkText(t, r) != "flaky count=1" {
		t.Fatalf("tally: %s", r.Result)
	}
	var al struct {
		Aliases []struct {
			From  string `json:"from"`
			Calls int64  `json:"calls"`
		} `json:"aliases"`
	}
	g.admin("GET", "/admin/tool-aliases", nil, &al)
	if len(al.Aliases) != 2 || al.Aliases[0].From != "old_echo" || al.Aliases[0].Calls != 1 || al.Aliases[1].Calls != 1 {
		t.Fatalf("GET /admin/tool-aliases: %+v", al)
	}
	if code := g.admin("DELETE", "/admin/tool-aliases?from=tally", nil, nil); code != 200 {
		t.Fatalf("DELETE: %d", code)
	}
	if r, _ := g.gfCall(key, "tally", nil); r.Error == nil {
		t.Fatalf("a removed alias still works: %s", r.Result)
	}
}
