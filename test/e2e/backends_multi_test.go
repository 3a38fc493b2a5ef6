package e2e

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/testenv"
)

// multiConfig is two real servers behind one gateway: the npm reference
// memory server over stdio (prefix mem) and the go-sdk conformance server
// over Streamable HTTP (prefix conf), with prices on prefixed names.
func multiConfig(t *testing.T, confURL string) map[string]any {
	return map[string]any{
		"servers": []map[string]any{
			{"prefix": "mem", "serverCommand": testenv.NPMBin(t, "mcp-server-memory"),
				"env": map[string]string{"MEMORY_FILE_PATH": filepath.Join(t.TempDir(), "memory.jsonl")}},
			{"prefix": "conf", "remoteUrl": confURL, "remoteTransport": "streamable"},
		},
		"defaultCreditsPerCall": 1,
		"globalRateLimitPerMin": 0,
		"toolPricing": map[string]any{
			"mem:read_graph":        map[string]any{"creditsPerCall": 3},
			"conf:test_simple_text": map[string]any{"creditsPerCall": 5},
		},
	}
}

// TestBackendsTwoServersOneKey: tools of a stdio and an HTTP server under
// their prefixes, each call routed to its server and charged to the same
// key at the price of its prefixed name; unknown prefixes are refused
// without a charge.
func TestBackendsTwoServersOneKey(t *testing.T) {
	confURL, _ := bkConformanceHTTP(t)
	g := bkGateway(t, multiConfig(t, confURL))
	key := g.createKey(100, nil)

	// tools/list: both prefixes, priced by prefixed name.
	r, _ := g.rpc(key, 1, "tools/list", map[string]any{})
	var list struct {
		Tools []struct {
			Name    string `json:"name"`
			Pricing struct {
				CreditsPerCall int64 `json:"creditsPerCall"`
			} `json:"_pricing"`
		} `json:"tools"`
		NextCursor string `json:"nextCursor"`
	}
	if err := json.Unmarshal(r.Result, &list); err != nil || r.Error != nil {
		t.Fatalf("tools/list: %v %+v", err, r.Error)
	}
	price := map[string]int64{}
	for _, tl := range list.Tools {
		price[tl.Name] = tl.Pricing.CreditsPerCall
	}
	for name, want := range map[string]int64{"mem:read_graph": 3, "mem:create_entities": 1, "conf:test_simple_text": 5, "conf:test_image_content": 1} {
		if got, ok := price[name]; !ok || got != want {
			t.Errorf("tools/list: %s priced %d (listed %v), want %d", name, got, ok, want)
		}
	}
	for name := range price {
		if !strings.HasPrefix(name, "mem:") && !strings.HasPrefix(name, "conf:") {
			t.Errorf("unprefixed tool %s", name)
		}
	}
	if list.NextCursor != "" {
		t.Errorf("multi-server listings are one page; got nextCursor %q", list.NextCursor)
	}

	// Calls reach their own server and charge the one key.
	res, _ := g.bkCall(key, "mem:create_entities", map[string]any{"entities": []map[string]any{{"name": "paygate", "entityType": "gateway", "observations": []string{"routes by prefix"}}}})
	bkText(t, res)
	res, _ = g.bkCall(key, "mem:read_graph", nil)
	if txt := bkText(t, res); !strings.Contains(txt, "routes by prefix") {
		t.Errorf("mem:read_graph: %s", txt)
	}
	res, _ = g.bkCall(key, "conf:test_simple_text", nil)
	if txt := bkText(t, res); !strings.Contains(txt, "simple text") {
		t.Errorf("conf:test_simple_text: %s", txt)
	}
	if bal := g.balance(key); bal != 100-1-3-5 {
		t.Errorf("balance %d, want 91", bal)
	}
	led := g.bkLedger(key)
	for tool, want := range map[string]int64{"mem:create_entities": -1, "mem:read_graph": -3, "conf:test_simple_text": -5} {
		n := 0
		for _, e := range led {
			if e.Tool == tool && e.Type == "deduction" {
				n++
				if e.Amount != want {
					t.Errorf("%s charged %d, want %d", tool, e.Amount, want)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: %d charges in the ledger, want 1", tool, n)
		}
	}

	// Unknown prefix or no prefix: -32602 before any charge.
	before := len(g.bkLedger(key))
	for _, name := range []string{"nope:read_graph", "read_graph"} {
		res, _ = g.bkCall(key, name, nil)
		if res.Error == nil || res.Error.Code != -32602 || !strings.Contains(res.Error.Message, "Unknown tool") {
			t.Errorf("%s: %+v", name, res.Error)
		}
	}
	if after := len(g.bkLedger(key)); after != before || g.balance(key) != 91 {
		t.Errorf("unknown tools wrote %d ledger entries", after-before)
	}

	// Prompts and resources of the HTTP server, through the router.
	r, _ = g.rpc(key, 2, "prompts/list", map[string]any{})
	if r.Error != nil || !strings.Contains(string(r.Result), `"conf:test_simple_prompt"`) {
		t.Errorf("prompts/list: %+v %s", r.Error, r.Result)
	}
	r, _ = g.rpc(key, 3, "prompts/get", map[string]any{"name": "conf:test_simple_prompt"})
	if r.Error != nil || !strings.Contains(string(r.Result), "messages") {
		t.Errorf("prompts/get: %+v %s", r.Error, r.Result)
	}
	r, _ = g.rpc(key, 4, "resources/read", map[string]any{"uri": "test://static-text"})
	if r.Error != nil || !strings.Contains(string(r.Result), "contents") {
		t.Errorf("resources/read: %+v %s", r.Error, r.Result)
	}

	// initialize presents the gateway, with the union of capabilities.
	r, _ = g.rpc("", 5, "initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "e2e", "version": "1"}})
	var init struct {
		ServerInfo   struct{ Name string }      `json:"serverInfo"`
		Capabilities map[string]json.RawMessage `json:"capabilities"`
	}
	_ = json.Unmarshal(r.Result, &init)
	if init.ServerInfo.Name != "paygate" || init.Capabilities["tools"] == nil || init.Capabilities["prompts"] == nil || init.Capabilities["resources"] == nil {
		t.Errorf("initialize: %s", r.Result)
	}
	if status, bs := g.bkHealth(); status != "healthy" || bs["mem"].State != "ready" || bs["conf"].State != "ready" || bs["conf"].Circuit != "closed" {
		t.Errorf("/health %s %+v", status, bs)
	}
}

// TestBackendsOneKilledOtherServes: the HTTP server's process is killed.
// Its tools fail fast with -32003 and cost nothing, /health names it, its
// tools stay listed; the stdio server keeps serving and charging.
func TestBackendsOneKilledOtherServes(t *testing.T) {
	confURL, conf := bkConformanceHTTP(t)
	g := bkGateway(t, multiConfig(t, confURL))
	key := g.createKey(100, nil)
	res, _ := g.bkCall(key, "conf:test_simple_text", nil)
	bkText(t, res)
	listed := func() []string {
		r, _ := g.rpc(key, 1, "tools/list", map[string]any{})
		var list struct{ Tools []struct{ Name string } }
		_ = json.Unmarshal(r.Result, &list)
		var out []string
		for _, tl := range list.Tools {
			out = append(out, tl.Name)
		}
		slices.Sort(out)
		return out
	}
	before := listed()

	if err := syscall.Kill(-conf.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	balance := g.balance(key)
	for i := range 3 {
		res, took := g.bkCall(key, "conf:test_simple_text", nil)
		if res.Error == nil || res.Error.Code != -32003 {
			t.Fatalf("call %d to the dead server: %+v %s", i, res.Error, res.Result)
		}
		t.Logf("call %d: %s (%s)", i, res.Error.Message, took)
		if took > 5*time.Second {
			t.Errorf("call %d took %s; a dead backend must fail fast", i, took)
		}
		if d := bkErrorData(t, res); d["backend"] != "conf" {
			t.Errorf("error names backend %v, want conf: %s", d["backend"], res.Error.Message)
		}
	}
	if got := g.balance(key); got != balance {
		t.Errorf("balance %d after failed calls, want %d: they must not be charged", got, balance)
	}
	led := g.bkLedger(key)
	if c, r := bkCount(led, "deduction", "conf:test_simple_text"), bkCount(led, "refund", "conf:test_simple_text"); c != r+1 {
		t.Errorf("conf:test_simple_text: %d charges, %d refunds; every failed call must be refunded", c, r)
	}

	// The other server is unaffected.
	res, _ = g.bkCall(key, "mem:read_graph", nil)
	bkText(t, res)
	if got := g.balance(key); got != balance-3 {
		t.Errorf("balance %d, want %d", got, balance-3)
	}
	bkEventually(t, "/health to report conf down", func() bool {
		status, bs := g.bkHealth()
		return status == "degraded" && bs["mem"].State == "ready" && bs["conf"].State != "ready" && bs["conf"].State != ""
	})
	if after := listed(); !slices.Equal(after, before) {
		t.Errorf("tools/list with conf down:\n%v\nwant the last known list:\n%v", after, before)
	}
}
