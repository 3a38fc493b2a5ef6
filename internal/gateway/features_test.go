package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/cache"
	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/sqlite"
	"github.com/paygate/paygate/internal/toolalias"
)

// In-process tests of the call controls in the pipeline: the real gateway,
// gate chain, streamable transport and SQLite store, in front of a fake
// backend that counts tool executions. The end-to-end tests in test/e2e
// repeat the main cases against the real binary and a real MCP server.

// fakeBackend answers tools/list with its tools and tools/call by name:
//
//	echo    "echo <arguments>"
//	fail    a result with isError
//	rpcerr  a JSON-RPC error
//	down    no answer (the backend is unreachable)
//	slow    waits for release (or the call's context)
type fakeBackend struct {
	release chan struct{}
	started chan string

	mu   sync.Mutex
	runs map[string]int
	last map[string]json.RawMessage // params each tool last got
}

var fakeTools = []string{"echo", "fail", "rpcerr", "down", "slow", "read_file", "write_file", "admin_reset"}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{release: make(chan struct{}), started: make(chan string, 100), runs: map[string]int{}, last: map[string]json.RawMessage{}}
}

func (f *fakeBackend) Name() string                { return "fake" }
func (f *fakeBackend) Start(context.Context) error { return nil }
func (f *fakeBackend) Notify(context.Context, *mcp.Message, backend.Peer) error {
	return nil
}
func (f *fakeBackend) Reply(context.Context, *mcp.Message, backend.Peer) error { return nil }
func (f *fakeBackend) Initialize() *backend.InitializeResult {
	return &backend.InitializeResult{ProtocolVersion: mcp.LatestVersion, Capabilities: json.RawMessage(`{"tools":{}}`),
		ServerInfo: json.RawMessage(`{"name":"fake","version":"1"}`)}
}
func (f *fakeBackend) Status() backend.Status {
	return backend.Status{Name: "fake", State: backend.StateReady}
}
func (f *fakeBackend) SetListener(backend.Listener) {}
func (f *fakeBackend) Close(context.Context) error  { return nil }

func (f *fakeBackend) Call(ctx context.Context, req *backend.Request) (*mcp.Message, error) {
	if req.Method == mcp.MethodToolsList {
		var tools []string
		for _, name := range fakeTools {
			tools = append(tools, fmt.Sprintf(`{"name":%q,"description":"the %s tool","inputSchema":{"type":"object"}}`, name, strings.ReplaceAll(name, "_", " ")))
		}
		return &mcp.Message{ID: req.ID, Result: json.RawMessage(`{"tools":[` + strings.Join(tools, ",") + `]}`)}, nil
	}
	p, err := mcp.ParseCallTool(req.Params)
	if err != nil {
		return &mcp.Message{ID: req.ID, Error: &mcp.WireError{Code: mcp.CodeInvalidParams, Message: err.Error()}}, nil
	}
	f.mu.Lock()
	f.runs[p.Name]++
	n := f.runs[p.Name]
	f.last[p.Name] = append(json.RawMessage(nil), req.Params...)
	f.mu.Unlock()
	f.started <- p.Name
	text := func(s string, isErr bool) *mcp.Message {
		b, _ := json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}, "isError": isErr})
		return &mcp.Message{ID: req.ID, Result: b}
	}
	switch p.Name {
	case "fail":
		return text("failed", true), nil
	case "rpcerr":
		return &mcp.Message{ID: req.ID, Error: &mcp.WireError{Code: -32000, Message: "tool broke"}}, nil
	case "down":
		return nil, errors.New("connection refused")
	case "slow":
		select {
		case <-f.release:
			return text("slow done", false), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return text(fmt.Sprintf("%s #%d %s", p.Name, n, p.Arguments), false), nil
}

func (f *fakeBackend) ran(tool string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs[tool]
}

func (f *fakeBackend) params(tool string) json.RawMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last[tool]
}

// fakeClock is a settable clock for cache expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// featEnv is one test's gateway.
type featEnv struct {
	t       *testing.T
	st      *sqlite.Store
	be      *fakeBackend
	gw      *Gateway
	url     string
	clock   *fakeClock
	conc    *gate.Concurrency
	cache   *cache.Cache
	aliases *toolalias.Table
	keys    map[string]string // secret → key id
}

type featOptions struct {
	settings    policy.Settings
	limits      gate.ConcurrencyLimits
	aliases     []toolalias.Alias
	discovery   bool
	listAliases bool
}

func newFeatEnv(t *testing.T, o featOptions) *featEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &featEnv{t: t, st: st, be: newFakeBackend(), clock: &fakeClock{t: time.Now()}, aliases: &toolalias.Table{}, keys: map[string]string{}}
	if err := e.aliases.Replace(o.aliases); err != nil {
		t.Fatal(err)
	}
	if e.conc, err = gate.NewConcurrency(o.limits); err != nil {
		t.Fatal(err)
	}
	e.cache = cache.New(cache.Options{MaxEntries: 100, MaxBytes: 1 << 20, Now: e.clock.Now})
	p, err := policy.New(o.settings)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := gate.New(gate.Options{Policy: p, Keys: st, Limiter: ratelimit.NewLocal(ratelimit.Options{}), Concurrency: e.conc})
	if err != nil {
		t.Fatal(err)
	}
	e.gw = New(Options{Backend: e.be, Store: st, Rules: &Rules{Policy: p, Chain: chain, ListAliases: o.listAliases},
		Cache: e.cache, Aliases: e.aliases, Discovery: o.discovery})
	srv := httptest.NewServer(streamable.New(e.gw, streamable.Options{}))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// key creates a key with balance credits in namespace ns and returns its secret.
func (e *featEnv) key(balance int64, ns string, mod func(*store.Key)) string {
	e.t.Helper()
	n := len(e.keys)
	sec := fmt.Sprintf("pg_%048x", 0xfeed00+n)
	prefix, suffix := keys.Parts(sec)
	k := &store.Key{ID: fmt.Sprintf("key_%016x", 0xfeed00+n), Hash: keys.Hash(sec), Prefix: prefix, Suffix: suffix,
		Name: "test", Namespace: ns, CreatedAt: time.Now()}
	if mod != nil {
		mod(k)
	}
	if _, _, err := e.st.CreateKey(context.Background(), k, credits.Credits(balance), store.Meta{Actor: "test"}); err != nil {
		e.t.Fatal(err)
	}
	e.keys[sec] = k.ID
	return sec
}

type rpcReply struct {
	Result json.RawMessage `json:"result"`
	Error  *mcp.WireError  `json:"error"`
	header http.Header
}

// text is the text content of a tools/call result.
func (r rpcReply) text(t *testing.T) string {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("error %d %s %s", r.Error.Code, r.Error.Message, r.Error.Data)
	}
	var res struct {
		Content []struct{ Text string } `json:"content"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil || len(res.Content) == 0 {
		t.Fatalf("result %s: %v", r.Result, err)
	}
	return res.Content[0].Text
}

func (e *featEnv) rpc(secret, method string, params any) rpcReply {
	e.t.Helper()
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	req, _ := http.NewRequest("POST", e.url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if secret != "" {
		req.Header.Set("X-API-Key", secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r rpcReply
	if err := json.Unmarshal(raw, &r); err != nil {
		e.t.Fatalf("%d %s: %v", resp.StatusCode, raw, err)
	}
	r.header = resp.Header
	return r
}

func (e *featEnv) call(secret, tool string, args any) rpcReply {
	e.t.Helper()
	p := map[string]any{"name": tool}
	if args != nil {
		p["arguments"] = args
	}
	return e.rpc(secret, mcp.MethodToolsCall, p)
}

func (e *featEnv) balance(secret string) int64 {
	e.t.Helper()
	a, err := e.st.Account(context.Background(), e.keys[secret])
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Balance
}

// ledger counts secret's ledger entries by kind.
func (e *featEnv) ledger(secret string) map[store.EntryKind]int {
	e.t.Helper()
	es, err := e.st.Entries(context.Background(), store.LedgerFilter{KeyID: e.keys[secret]})
	if err != nil {
		e.t.Fatal(err)
	}
	n := map[store.EntryKind]int{}
	for _, en := range es {
		n[en.Kind]++
	}
	return n
}

func (e *featEnv) outcomes(secret string) []string {
	e.t.Helper()
	recs, err := e.st.Usage(context.Background(), store.UsageFilter{KeyID: e.keys[secret]})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Outcome)
	}
	return out
}

func ttl(d time.Duration) *time.Duration { return &d }

func price(n int64) *credits.Credits { c := credits.Credits(n); return &c }

func TestCacheInPipeline(t *testing.T) {
	e := newFeatEnv(t, featOptions{settings: policy.Settings{
		ToolPricing: map[string]policy.ToolPolicy{
			"echo": {CreditsPerCall: price(3), CacheTTL: ttl(time.Minute)},
			"fail": {CacheTTL: ttl(time.Minute)}, "rpcerr": {CacheTTL: ttl(time.Minute)}, "down": {CacheTTL: ttl(time.Minute)},
		},
	}})
	alice := e.key(100, "default", nil)
	bob := e.key(100, "default", nil)

	first := e.call(alice, "echo", map[string]any{"q": "x", "n": 1})
	if first.header.Get("X-Cache") != "MISS" || e.be.ran("echo") != 1 {
		t.Fatalf("first call: X-Cache %q, ran %d", first.header.Get("X-Cache"), e.be.ran("echo"))
	}
	// The same arguments, written differently: a hit, served free (the
	// default), with the first call's result.
	hit := e.rpc(alice, mcp.MethodToolsCall, json.RawMessage(`{"name":"echo","arguments":{ "n" : 1.0, "q":"x" }}`))
	if hit.header.Get("X-Cache") != "HIT" || e.be.ran("echo") != 1 || hit.text(t) != first.text(t) {
		t.Fatalf("repeat: X-Cache %q, ran %d, %q vs %q", hit.header.Get("X-Cache"), e.be.ran("echo"), hit.text(t), first.text(t))
	}
	if hit.header.Get("X-Credits-Remaining") != "97" {
		t.Errorf("X-Credits-Remaining %q on a free hit", hit.header.Get("X-Credits-Remaining"))
	}
	if e.balance(alice) != 97 || e.ledger(alice)[store.EntryCharge] != 1 {
		t.Fatalf("balance %d, ledger %v: a free hit writes no ledger entry", e.balance(alice), e.ledger(alice))
	}
	if got := e.outcomes(alice); strings.Join(got, ",") != "ok,cache_hit" {
		t.Fatalf("usage outcomes %v", got)
	}

	// Other arguments, another key: misses.
	for _, tc := range []struct {
		who  string
		args any
	}{{alice, map[string]any{"q": "y", "n": 1}}, {bob, map[string]any{"q": "x", "n": 1}}} {
		if r := e.call(tc.who, "echo", tc.args); r.header.Get("X-Cache") != "MISS" {
			t.Fatalf("%v: X-Cache %q", tc.args, r.header.Get("X-Cache"))
		}
	}
	if e.be.ran("echo") != 3 {
		t.Fatalf("echo ran %d times, want 3", e.be.ran("echo"))
	}

	// Expiry (fake clock): a miss again.
	e.clock.Add(time.Minute)
	if r := e.call(alice, "echo", map[string]any{"q": "x", "n": 1}); r.header.Get("X-Cache") != "MISS" || e.be.ran("echo") != 4 {
		t.Fatalf("after the TTL: X-Cache %q, ran %d", r.header.Get("X-Cache"), e.be.ran("echo"))
	}

	// Failures are never cached.
	for _, tool := range []string{"fail", "rpcerr", "down"} {
		e.call(alice, tool, nil)
		if r := e.call(alice, tool, nil); r.header.Get("X-Cache") != "MISS" || e.be.ran(tool) != 2 {
			t.Fatalf("%s: X-Cache %q, ran %d", tool, r.header.Get("X-Cache"), e.be.ran(tool))
		}
	}

	// Checks still run on a hit: a key without access is refused.
	if _, err := e.st.UpdateKey(context.Background(), e.keys[alice], func(k *store.Key) error {
		k.DeniedTools = []string{"echo"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := e.call(alice, "echo", map[string]any{"q": "x", "n": 1}); r.Error == nil || !strings.Contains(string(r.Error.Data), "tool_not_allowed") {
		t.Fatalf("denied key got %+v", r)
	}
}

func TestCacheChargedHitsAndScopes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		scope     policy.CacheScope
		charge    bool
		sharedNS  bool // a key of the same namespace hits
		sharedAll bool // a key of another namespace hits
	}{
		{"key scope, free hits", policy.CacheScopeKey, false, false, false},
		{"namespace scope, charged hits", policy.CacheScopeNamespace, true, true, false},
		{"global scope", policy.CacheScopeGlobal, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFeatEnv(t, featOptions{settings: policy.Settings{
				ToolPricing: map[string]policy.ToolPolicy{"echo": {CreditsPerCall: price(3)}},
				Cache:       policy.CacheSettings{TTL: time.Minute, Scope: tc.scope, ChargeHits: tc.charge},
			}})
			a, b, other := e.key(100, "team", nil), e.key(100, "team", nil), e.key(100, "other", nil)
			e.call(a, "echo", map[string]any{"q": 1})
			ra := e.call(a, "echo", map[string]any{"q": 1})
			rb := e.call(b, "echo", map[string]any{"q": 1})
			ro := e.call(other, "echo", map[string]any{"q": 1})
			got := []string{ra.header.Get("X-Cache"), rb.header.Get("X-Cache"), ro.header.Get("X-Cache")}
			want := []string{"HIT", map[bool]string{true: "HIT", false: "MISS"}[tc.sharedNS], map[bool]string{true: "HIT", false: "MISS"}[tc.sharedAll]}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("X-Cache %v, want %v", got, want)
			}
			wantA := int64(97)
			if tc.charge {
				wantA = 94
			}
			if e.balance(a) != wantA {
				t.Fatalf("balance %d, want %d", e.balance(a), wantA)
			}
			if tc.charge && e.ledger(a)[store.EntryCharge] != 2 {
				t.Fatalf("a charged hit is a normal charge: %v", e.ledger(a))
			}
		})
	}
}

// TestCacheOffNoHeader: tools without a TTL get no X-Cache header.
func TestCacheOffNoHeader(t *testing.T) {
	e := newFeatEnv(t, featOptions{settings: policy.Settings{ToolPricing: map[string]policy.ToolPolicy{"fail": {CacheTTL: ttl(time.Minute)}}}})
	k := e.key(100, "default", nil)
	for range 2 {
		if r := e.call(k, "echo", nil); r.header.Get("X-Cache") != "" {
			t.Fatalf("X-Cache %q on an uncached tool", r.header.Get("X-Cache"))
		}
	}
	if e.be.ran("echo") != 2 {
		t.Fatal("an uncached tool was served from the cache")
	}
}

func TestConcurrencyInPipeline(t *testing.T) {
	e := newFeatEnv(t, featOptions{
		settings: policy.Settings{ToolPricing: map[string]policy.ToolPolicy{"slow": {TimeoutMs: 300}, "echo": {CacheTTL: ttl(time.Minute)}}},
		limits:   gate.ConcurrencyLimits{PerKey: 2},
	})
	k := e.key(100, "default", nil)
	inFlight := func() int64 { return e.conc.Status().InFlight.Keys[e.keys[k]] }

	// Two slow calls fill the key's slots; a third is refused at once.
	var wg sync.WaitGroup
	results := make([]rpcReply, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = e.call(k, "slow", map[string]any{"i": i}) }()
	}
	<-e.be.started
	<-e.be.started
	r := e.call(k, "echo", nil)
	if r.Error == nil || r.Error.Code != mcp.CodeConcurrencyLimited || r.header.Get("Retry-After") != "1" {
		t.Fatalf("third call: %+v, Retry-After %q", r.Error, r.header.Get("Retry-After"))
	}
	var data struct {
		Reason     string `json:"reason"`
		RetryAfter int64  `json:"retryAfter"`
	}
	if json.Unmarshal(r.Error.Data, &data); data.Reason != "concurrency_limited" || data.RetryAfter != 1 {
		t.Fatalf("error data %s", r.Error.Data)
	}
	if e.balance(k) != 98 || e.ledger(k)[store.EntryCharge] != 2 {
		t.Fatalf("the refused call was charged: balance %d", e.balance(k))
	}
	close(e.be.release)
	wg.Wait()
	if results[0].text(t) != "slow done" || inFlight() != 0 {
		t.Fatalf("after completion: %+v, %d in flight", results[0], inFlight())
	}

	// Every other way out gives the slot back: a backend error, a tool
	// error, a timeout, a denial after the slot was taken, a cache hit.
	e.be.release = make(chan struct{}) // slow hangs again: its 300ms timeout ends it
	poor := e.key(0, "default", nil)
	for _, tc := range []struct {
		who, tool string
		code      int64
	}{
		{k, "down", mcp.CodeBackendUnavailable},
		{k, "rpcerr", -32000},
		{k, "fail", 0},
		{k, "slow", mcp.CodeToolTimeout},
		{poor, "echo", mcp.CodePaymentRequired},
		{k, "echo", 0},
		{k, "echo", 0}, // a hit
	} {
		r := e.call(tc.who, tc.tool, nil)
		if (r.Error == nil) != (tc.code == 0) || (r.Error != nil && r.Error.Code != tc.code) {
			t.Fatalf("%s: %+v", tc.tool, r.Error)
		}
		if s := e.conc.Status(); len(s.InFlight.Keys) != 0 || len(s.InFlight.Tools) != 0 {
			t.Fatalf("after %s: slots leaked: %+v", tc.tool, s.InFlight)
		}
	}

	// A batch takes one slot per item, all or nothing.
	r = e.rpc(k, mcp.MethodToolsCallBatch, map[string]any{"calls": []any{
		map[string]any{"name": "echo"}, map[string]any{"name": "echo"}, map[string]any{"name": "echo"}}})
	if r.Error == nil || r.Error.Code != mcp.CodeConcurrencyLimited {
		t.Fatalf("batch of 3 with a cap of 2: %+v", r.Error)
	}
	r = e.rpc(k, mcp.MethodToolsCallBatch, map[string]any{"calls": []any{map[string]any{"name": "echo"}, map[string]any{"name": "read_file"}}})
	if r.Error != nil || inFlight() != 0 {
		t.Fatalf("batch of 2: %+v, %d in flight", r.Error, inFlight())
	}
}

func TestAliasesInPipeline(t *testing.T) {
	sunset := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newFeatEnv(t, featOptions{
		settings: policy.Settings{ToolPricing: map[string]policy.ToolPolicy{"read_file": {CreditsPerCall: price(5)}, "old_read": {CreditsPerCall: price(1)}}},
		aliases: []toolalias.Alias{{From: "old_read", To: "read_file", Sunset: sunset, Link: "https://docs.example.com/deprecations"},
			{From: "old_write", To: "write_file"}},
		listAliases: true,
	})
	k := e.key(100, "default", func(k *store.Key) { k.DeniedTools = []string{"write_file"} })

	r := e.call(k, "old_read", map[string]any{"path": "/a"})
	if txt := r.text(t); !strings.HasPrefix(txt, "read_file #1") {
		t.Fatalf("alias ran %q", txt)
	}
	h := r.header
	if h.Get("Deprecation") != "true" || h.Get("Sunset") != "Fri, 01 Jan 2027 00:00:00 GMT" {
		t.Fatalf("headers %v", h)
	}
	links := strings.Join(h.Values("Link"), ", ")
	if !strings.Contains(links, `</pricing#read_file>; rel="successor-version"`) || !strings.Contains(links, `<https://docs.example.com/deprecations>; rel="deprecation"`) {
		t.Fatalf("Link %q", links)
	}
	// Forwarded as the new tool with the same arguments; priced as it.
	var fwd struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	_ = json.Unmarshal(e.be.params("read_file"), &fwd)
	if fwd.Name != "read_file" || string(fwd.Arguments) != `{"path":"/a"}` {
		t.Fatalf("backend got %s", e.be.params("read_file"))
	}
	if e.balance(k) != 95 {
		t.Fatalf("balance %d: an alias call is priced as its target (5)", e.balance(k))
	}
	es, _ := e.st.Entries(context.Background(), store.LedgerFilter{KeyID: e.keys[k], Kinds: []store.EntryKind{store.EntryCharge}})
	if len(es) != 1 || es[0].Tool != "read_file" {
		t.Fatalf("ledger %+v", es)
	}
	// ACL'd as the target.
	if r := e.call(k, "old_write", nil); r.Error == nil || !strings.Contains(string(r.Error.Data), "tool_not_allowed") {
		t.Fatalf("old_write: %+v", r.Error)
	}
	// A plain call has no deprecation headers.
	if r := e.call(k, "read_file", nil); r.header.Get("Deprecation") != "" {
		t.Fatal("Deprecation on a current tool")
	}
	if l := e.aliases.List(); l[0].Calls != 1 || l[1].Calls != 1 {
		t.Fatalf("alias counts %+v", l)
	}

	// tools/list shows the alias as a deprecated copy; the denied target's
	// alias is hidden with it.
	list := e.rpc(k, mcp.MethodToolsList, map[string]any{})
	var tl struct {
		Tools []struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Deprecated  json.RawMessage `json:"_deprecated"`
			Pricing     json.RawMessage `json:"_pricing"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(list.Result, &tl); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tl.Tools {
		names = append(names, tool.Name)
		if tool.Name == "old_read" && (!strings.HasPrefix(tool.Description, "Deprecated: use read_file instead.") ||
			string(tool.Deprecated) != `{"to":"read_file","sunset":"2027-01-01T00:00:00Z"}` || !strings.Contains(string(tool.Pricing), `"creditsPerCall":5`)) {
			t.Fatalf("alias entry %+v", tool)
		}
	}
	if got := strings.Join(names, ","); !strings.HasSuffix(got, "admin_reset,old_read") || strings.Contains(got, "write") {
		t.Fatalf("tools/list %s", got)
	}

	// A batch item naming an alias runs the target.
	r = e.rpc(k, mcp.MethodToolsCallBatch, map[string]any{"calls": []any{map[string]any{"name": "old_read"}}})
	if r.Error != nil || e.be.ran("read_file") != 3 || r.header.Get("Deprecation") != "true" {
		t.Fatalf("batch: %+v, read_file ran %d", r.Error, e.be.ran("read_file"))
	}
}

func TestDiscoveryInPipeline(t *testing.T) {
	e := newFeatEnv(t, featOptions{
		settings:  policy.Settings{ToolPricing: map[string]policy.ToolPolicy{"read_file": {CreditsPerCall: price(4)}}},
		discovery: true,
		aliases:   []toolalias.Alias{{From: "cat", To: "read_file"}},
	})
	k := e.key(100, "default", func(k *store.Key) { k.DeniedTools = []string{"admin_*"} })

	list := e.rpc(k, mcp.MethodToolsList, map[string]any{})
	var tl struct {
		Tools []struct{ Name string } `json:"tools"`
	}
	_ = json.Unmarshal(list.Result, &tl)
	if len(tl.Tools) != 3 || tl.Tools[0].Name != metaListTools || tl.Tools[2].Name != metaCallTool {
		t.Fatalf("tools/list %s", list.Result)
	}

	type listing struct {
		Tools []struct {
			Name    string `json:"name"`
			Pricing struct {
				CreditsPerCall int64 `json:"creditsPerCall"`
			} `json:"_pricing"`
		} `json:"tools"`
		NextCursor string `json:"nextCursor"`
		Total      int    `json:"total"`
	}
	meta := func(name string, args any) listing {
		t.Helper()
		r := e.call(k, name, args)
		var res struct {
			Structured listing `json:"structuredContent"`
		}
		if r.Error != nil || json.Unmarshal(r.Result, &res) != nil {
			t.Fatalf("%s: %+v %s", name, r.Error, r.Result)
		}
		return res.Structured
	}
	// Paged listing of what the key may call (admin_reset is denied).
	p1 := meta(metaListTools, map[string]any{"limit": 4})
	p2 := meta(metaListTools, map[string]any{"limit": 4, "cursor": p1.NextCursor})
	if p1.Total != 7 || len(p1.Tools) != 4 || p1.NextCursor != "4" || len(p2.Tools) != 3 || p2.NextCursor != "" {
		t.Fatalf("pages %+v / %+v", p1, p2)
	}
	for _, tool := range append(p1.Tools, p2.Tools...) {
		if tool.Name == "admin_reset" {
			t.Fatal("a denied tool was listed")
		}
	}
	found := meta(metaSearchTools, map[string]any{"query": "read file"})
	if len(found.Tools) == 0 || found.Tools[0].Name != "read_file" || found.Tools[0].Pricing.CreditsPerCall != 4 {
		t.Fatalf("search %+v", found)
	}
	if s := meta(metaSearchTools, map[string]any{"query": "admin reset"}); s.Total != 0 {
		t.Fatalf("search found a denied tool: %+v", s)
	}
	if e.balance(k) != 100 || len(e.ledger(k)) != 1 { // the grant only
		t.Fatalf("listing was charged: %d %v", e.balance(k), e.ledger(k))
	}

	// paygate_call_tool runs the named tool, priced as it.
	r := e.call(k, metaCallTool, map[string]any{"name": "read_file", "arguments": map[string]any{"path": "/x"}})
	if txt := r.text(t); txt != `read_file #1 {"path":"/x"}` || e.balance(k) != 96 {
		t.Fatalf("call: %q, balance %d", txt, e.balance(k))
	}
	es, _ := e.st.Entries(context.Background(), store.LedgerFilter{KeyID: e.keys[k], Kinds: []store.EntryKind{store.EntryCharge}})
	if len(es) != 1 || es[0].Tool != "read_file" {
		t.Fatalf("ledger %+v", es)
	}
	// Through an alias too.
	if r := e.call(k, metaCallTool, map[string]any{"name": "cat"}); r.header.Get("Deprecation") != "true" || e.be.ran("read_file") != 2 {
		t.Fatalf("alias through the meta-tool: %+v", r.Error)
	}
	// Denied by the key's ACL.
	if r := e.call(k, metaCallTool, map[string]any{"name": "admin_reset"}); r.Error == nil || !strings.Contains(string(r.Error.Data), "tool_not_allowed") || e.be.ran("admin_reset") != 0 {
		t.Fatalf("denied tool: %+v", r.Error)
	}
	for _, bad := range []map[string]any{{}, {"name": metaListTools}, {"name": "echo", "arguments": []int{1}}} {
		if r := e.call(k, metaCallTool, bad); r.Error == nil || r.Error.Code != mcp.CodeInvalidParams {
			t.Fatalf("%v: %+v", bad, r.Error)
		}
	}
	// Without a valid key the listing tools refuse.
	if r := e.call("", metaListTools, nil); r.Error == nil || !strings.Contains(string(r.Error.Data), "missing_api_key") {
		t.Fatalf("no key: %+v", r.Error)
	}
}

// BenchmarkToolsCall is one stateless tools/call through the transport and
// the whole pipeline to a fake backend, with the call controls off (the
// default config) and on (a concurrency cap, a cached tool that misses, an
// alias table that does not name the tool). "off" is the cost every
// gateway pays, the same path as before the controls existed. It runs in
// shadow mode (every check, no reservation): BenchmarkGateCharge measures
// the charge.
//
//	go test ./internal/gateway -run '^$' -bench ToolsCall -benchmem
func BenchmarkToolsCall(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "on"}[on]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, sqlite.Options{InMemory: true, RecentCalls: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			createKeys(b, st, 0, 1)
			// Shadow mode: the checks run but nothing is reserved, so the
			// ledger's commit latency does not drown what is measured.
			rate := int64(1 << 40)
			s := policy.Settings{GlobalRateLimitPerMin: &rate, Shadow: true}
			var limits gate.ConcurrencyLimits
			aliases := &toolalias.Table{}
			if on {
				s.Cache = policy.CacheSettings{TTL: time.Minute}
				limits = gate.ConcurrencyLimits{PerKey: 1000}
				_ = aliases.Replace([]toolalias.Alias{{From: "old", To: "echo"}})
			}
			p := policy.MustNew(s)
			conc, _ := gate.NewConcurrency(limits)
			chain, _ := gate.New(gate.Options{Policy: p, Keys: st, Limiter: ratelimit.NewLocal(ratelimit.Options{}), Concurrency: conc})
			be := &benchBackend{}
			g := New(Options{Backend: be, Store: st, Rules: &Rules{Policy: p, Chain: chain},
				Cache: cache.New(cache.Options{MaxEntries: 1 << 20, MaxBytes: 1 << 30}), Aliases: aliases})
			h := streamable.New(g, streamable.Options{})
			secret := benchSecret(0)
			var seq atomic.Int64
			call := func() error {
				// Distinct arguments: with caching on every call misses,
				// so both variants reach the backend.
				body := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"i":%d}}}`, seq.Add(1))
				req := httptest.NewRequest("POST", "http://127.0.0.1/mcp", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json")
				req.Header.Set("X-API-Key", secret)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 || bytes.Contains(w.Body.Bytes(), []byte(`"error"`)) {
					return fmt.Errorf("%d %s", w.Code, w.Body)
				}
				return nil
			}
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := call(); err != nil {
						b.Fatal(err)
					}
				}
			})
			// Many callers, so the store's group commit batches their
			// charges and the time per call is the CPU the path costs.
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(64)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := call(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}

// benchBackend answers every call at once.
type benchBackend struct{ fakeBackend }

func (*benchBackend) Call(_ context.Context, req *backend.Request) (*mcp.Message, error) {
	return &mcp.Message{ID: req.ID, Result: json.RawMessage(`{"content":[{"type":"text","text":"ok"}]}`)}, nil
}
