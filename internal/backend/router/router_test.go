package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/backend/backendtest"
	"github.com/paygate/paygate/internal/backend/flakytest"
	"github.com/paygate/paygate/internal/backend/httpmcp"
	"github.com/paygate/paygate/internal/backend/resilience"
	"github.com/paygate/paygate/internal/mcp"
)

// fixture is a router over two real MCP servers, alpha and beta, over
// Streamable HTTP. Their lists paginate (two items a page).
type fixture struct {
	r           *Router
	alpha, beta *flakytest.Server
	lis         *backendtest.Listener
}

func newFixture(t *testing.T, sep string) *fixture {
	t.Helper()
	f := &fixture{lis: &backendtest.Listener{}}
	f.alpha = flakytest.Start(t, flakytest.Options{Name: "alpha", PageSize: 2})
	f.beta = flakytest.Start(t, flakytest.Options{Name: "beta", PageSize: 2})
	var routes []Route
	for _, s := range []struct {
		prefix string
		srv    *flakytest.Server
	}{{"a", f.alpha}, {"b", f.beta}} {
		b := httpmcp.New(httpmcp.Config{Name: s.prefix, URL: s.srv.URL, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
		routes = append(routes, Route{Prefix: s.prefix, Backend: resilience.NewBreaker(b, resilience.BreakerConfig{Threshold: 100})})
	}
	var err error
	f.r, err = New(Config{Name: "gw", Version: "1.2.3", Separator: sep, Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	f.r.SetListener(f.lis)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.r.Close(ctx)
	})
	return f
}

func (f *fixture) call(t *testing.T, method, params string, p backend.Peer) (*mcp.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f.r.Call(ctx, &backend.Request{ID: mcp.ID(`"c1"`), Method: method, Params: json.RawMessage(params), Peer: p})
}

func (f *fixture) ok(t *testing.T, method, params string) json.RawMessage {
	t.Helper()
	m, err := f.call(t, method, params, nil)
	if err != nil || m.Error != nil {
		t.Fatalf("%s %s: %v %+v", method, params, err, m)
	}
	if string(m.ID) != `"c1"` {
		t.Fatalf("%s: id %s", method, m.ID)
	}
	return m.Result
}

func names(t *testing.T, result json.RawMessage, field string) []string {
	t.Helper()
	var r map[string][]struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range r[field] {
		out = append(out, it.Name)
	}
	return out
}

func text(result json.RawMessage) string {
	var r struct {
		Content []struct{ Text string }
	}
	_ = json.Unmarshal(result, &r)
	s := ""
	for _, c := range r.Content {
		s += c.Text
	}
	return s
}

// TestRouterTools: tools of both servers in one page, every page of each
// followed; calls routed by prefix with the prefix stripped; unknown
// prefixes refused.
func TestRouterTools(t *testing.T) {
	for _, sep := range []string{":", "__"} {
		t.Run("separator "+sep, func(t *testing.T) {
			f := newFixture(t, sep)
			res := f.ok(t, mcp.MethodToolsList, `{}`)
			got := names(t, res, "tools")
			for _, want := range []string{"a" + sep + "count", "a" + sep + "echo", "a" + sep + "sleep", "a" + sep + "ask", "b" + sep + "count", "b" + sep + "ask"} {
				if !slices.Contains(got, want) {
					t.Errorf("tools/list lacks %s: %v", want, got)
				}
			}
			if len(got) != 8 || strings.Contains(string(res), "nextCursor") {
				t.Errorf("want all 8 tools in one page: %s", res)
			}
			if r := f.ok(t, mcp.MethodToolsCall, `{"name":"b`+sep+`count","arguments":{}}`); text(r) != "beta count=1" {
				t.Errorf("b%scount: %s", sep, r)
			}
			if r := f.ok(t, mcp.MethodToolsCall, `{"arguments":{"x":1},"name":"a`+sep+`echo"}`); text(r) != `alpha echo {"x":1}` {
				t.Errorf("a%secho: %s", sep, r)
			}
			if f.alpha.Executions("count") != 0 || f.beta.Executions("count") != 1 {
				t.Error("count ran on the wrong server")
			}
			for _, name := range []string{"c" + sep + "count", "count", "a" + sep, sep + "count"} {
				m, err := f.call(t, mcp.MethodToolsCall, `{"name":"`+name+`"}`, nil)
				if err != nil || m.Error == nil || m.Error.Code != mcp.CodeInvalidParams || !strings.Contains(m.Error.Message, "Unknown tool") {
					t.Errorf("%s: %v %+v", name, err, m)
				}
				if err := f.r.Admit(mcp.MethodToolsCall, name); !errors.Is(err, backend.ErrUnknownTool) {
					t.Errorf("Admit %s: %v", name, err)
				}
			}
			if err := f.r.Admit(mcp.MethodToolsCall, "a"+sep+"count"); err != nil {
				t.Errorf("Admit a%scount: %v", sep, err)
			}
			if m, _ := f.call(t, mcp.MethodToolsList, `{"cursor":"x"}`, nil); m == nil || m.Error == nil {
				t.Error("a cursor the router never gave must be refused")
			}
		})
	}
}

// TestRouterPromptsAndResources: prompts by prefixed name; resources by
// URI, whether listed or only matching a template; unknown URIs refused.
func TestRouterPromptsAndResources(t *testing.T) {
	f := newFixture(t, ":")
	if got := names(t, f.ok(t, mcp.MethodPromptsList, `{}`), "prompts"); !slices.Equal(got, []string{"a:greet", "b:greet"}) {
		t.Errorf("prompts/list %v", got)
	}
	if r := f.ok(t, mcp.MethodPromptsGet, `{"name":"b:greet"}`); !strings.Contains(string(r), "hello from beta") {
		t.Errorf("prompts/get b:greet: %s", r)
	}

	// A template match before any listing: the router scans on a miss.
	if r := f.ok(t, mcp.MethodResourcesRead, `{"uri":"beta://items/42"}`); !strings.Contains(string(r), "beta item beta://items/42") {
		t.Errorf("read via template: %s", r)
	}
	if got := names(t, f.ok(t, mcp.MethodResourcesList, `{}`), "resources"); !slices.Equal(got, []string{"a:readme", "b:readme"}) {
		t.Errorf("resources/list %v", got)
	}
	if got := names(t, f.ok(t, mcp.MethodResourcesTemplates, `{}`), "resourceTemplates"); !slices.Equal(got, []string{"a:item", "b:item"}) {
		t.Errorf("resources/templates/list %v", got)
	}
	if r := f.ok(t, mcp.MethodResourcesRead, `{"uri":"alpha://readme"}`); !strings.Contains(string(r), "alpha readme") {
		t.Errorf("read alpha://readme: %s", r)
	}
	m, err := f.call(t, mcp.MethodResourcesRead, `{"uri":"gamma://x"}`, nil)
	if err != nil || m.Error == nil || m.Error.Code != mcp.CodeInvalidParams {
		t.Errorf("unknown URI: %v %+v", err, m)
	}

	// Subscriptions go to the owner, and its updates reach the listener.
	f.ok(t, mcp.MethodResourcesSubscribe, `{"uri":"beta://readme"}`)
	if err := f.beta.ResourceUpdated("beta://readme"); err != nil {
		t.Fatal(err)
	}
	backendtest.Eventually(t, "the update to reach the listener", func() bool {
		for _, m := range f.lis.Messages() {
			if m.Method == mcp.NotificationResourceUpdated && strings.Contains(string(m.Params), "beta://readme") {
				return true
			}
		}
		return false
	})
}

// TestRouterListChanged: a backend's list_changed reaches the listener, and
// the next listing has the new tool, prefixed.
func TestRouterListChanged(t *testing.T) {
	f := newFixture(t, ":")
	f.ok(t, mcp.MethodToolsList, `{}`)
	f.beta.AddTool("fresh")
	backendtest.Eventually(t, "tools/list_changed", func() bool {
		for _, m := range f.lis.Messages() {
			if m.Method == mcp.NotificationToolsListChanged {
				return true
			}
		}
		return false
	})
	if got := names(t, f.ok(t, mcp.MethodToolsList, `{}`), "tools"); !slices.Contains(got, "b:fresh") {
		t.Errorf("new tool missing: %v", got)
	}
}

// TestRouterServerRequests: both servers ask the same client to sample at
// once; their request ids cannot collide at the client and each answer
// goes back to the server that asked.
func TestRouterServerRequests(t *testing.T) {
	f := newFixture(t, ":")
	p := backendtest.NewPeer("s1", mcp.MethodSamplingCreateMessage)
	var mu sync.Mutex
	seen := map[string]bool{}
	p.AnswerWith(f.r, func(req *mcp.Message) *mcp.Message {
		mu.Lock()
		if seen[string(req.ID)] {
			t.Errorf("two server requests with id %s", req.ID)
		}
		seen[string(req.ID)] = true
		mu.Unlock()
		var params struct {
			Messages []struct{ Content struct{ Text string } }
		}
		_ = json.Unmarshal(req.Params, &params)
		who := params.Messages[0].Content.Text
		return &mcp.Message{Result: json.RawMessage(fmt.Sprintf(`{"role":"assistant","model":"m","content":{"type":"text","text":"for %s"}}`, who))}
	})
	var wg sync.WaitGroup
	for _, tool := range []string{"a:ask", "b:ask", "a:ask", "b:ask"} {
		wg.Go(func() {
			m, err := f.call(t, mcp.MethodToolsCall, `{"name":"`+tool+`","arguments":{}}`, p)
			server := map[string]string{"a": "alpha", "b": "beta"}[tool[:1]]
			if err != nil || m.Error != nil || text(m.Result) != server+" sampled for "+server {
				t.Errorf("%s: %v %+v %s", tool, err, m, m.Result)
			}
		})
	}
	wg.Wait()
	if len(seen) != 4 {
		t.Errorf("%d server requests, want 4", len(seen))
	}
}

// TestRouterBackendDown: with one server gone, its tools stay listed (from
// its last listing) but its calls fail, naming it; the other keeps
// serving, and Statuses shows which is down.
func TestRouterBackendDown(t *testing.T) {
	f := newFixture(t, ":")
	before := names(t, f.ok(t, mcp.MethodToolsList, `{}`), "tools")
	f.beta.Close()

	_, err := f.call(t, mcp.MethodToolsCall, `{"name":"b:count"}`, nil)
	var ce *backend.CallError
	if !errors.As(err, &ce) || ce.Status.Name != "b" {
		t.Fatalf("call to the dead server: %v", err)
	}
	if r := f.ok(t, mcp.MethodToolsCall, `{"name":"a:count"}`); text(r) != "alpha count=1" {
		t.Errorf("a:count: %s", r)
	}
	if got := names(t, f.ok(t, mcp.MethodToolsList, `{}`), "tools"); !slices.Equal(got, before) {
		t.Errorf("tools/list with beta down: %v, want the last known %v", got, before)
	}
	backendtest.Eventually(t, "beta to be reported down", func() bool {
		st := f.r.Statuses()
		return st[0].Name == "a" && st[0].State == backend.StateReady && st[1].Name == "b" && st[1].State != backend.StateReady
	})
	if st := f.r.Status(); st.State != backend.StateReady || !strings.Contains(st.LastError, "b ") {
		t.Errorf("summary status %+v", st)
	}
}

// TestRouterInitialize: the union of capabilities under the router's own
// name.
func TestRouterInitialize(t *testing.T) {
	f := newFixture(t, ":")
	init := f.r.Initialize()
	if init == nil {
		t.Fatal("nil")
	}
	var caps map[string]map[string]any
	if err := json.Unmarshal(init.Capabilities, &caps); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"tools", "prompts", "resources"} {
		if caps[c] == nil {
			t.Errorf("capability %s missing: %s", c, init.Capabilities)
		}
	}
	if caps["resources"]["subscribe"] != true {
		t.Errorf("resources.subscribe lost: %s", init.Capabilities)
	}
	if string(init.ServerInfo) != `{"name":"gw","version":"1.2.3"}` {
		t.Errorf("serverInfo %s", init.ServerInfo)
	}
	if !strings.Contains(init.Instructions, "[a] the alpha test server") || !strings.Contains(init.Instructions, "[b] the beta") {
		t.Errorf("instructions %q", init.Instructions)
	}
}

func TestNewRefusesBadRoutes(t *testing.T) {
	b := httpmcp.New(httpmcp.Config{Name: "x", URL: "http://127.0.0.1:1/mcp"})
	for _, routes := range [][]Route{nil, {{Prefix: "", Backend: b}}, {{Prefix: "a:b", Backend: b}}, {{Prefix: "a", Backend: b}, {Prefix: "a", Backend: b}}} {
		if _, err := New(Config{Routes: routes}); err == nil {
			t.Errorf("routes %+v accepted", routes)
		}
	}
}

func TestIDWrapping(t *testing.T) {
	for _, id := range []string{`"pg-s-1"`, `12`, `"a:b\"c"`} {
		w := wrapID(3, []byte(id))
		idx, orig, ok := unwrapID(w)
		if !ok || idx != 3 || string(orig) != id {
			t.Errorf("%s → %s → %d %s %v", id, w, idx, orig, ok)
		}
	}
	for _, bad := range []string{`"x"`, `"r:1"`, `"r1"`, `7`, `"r01:2"`} {
		if _, _, ok := unwrapID([]byte(bad)); ok {
			t.Errorf("%s unwrapped", bad)
		}
	}
}

func TestTemplates(t *testing.T) {
	tests := []struct {
		tmpl, uri string
		want      bool
	}{
		{"file:///{path}", "file:///a.txt", true},
		{"file:///{path}", "file:///dir/a.txt", false},
		{"file:///{+path}", "file:///dir/a.txt", true},
		{"db://{table}/rows{?limit,offset}", "db://users/rows?limit=3", true},
		{"db://{table}/rows{?limit,offset}", "db://users/rows", true},
		{"x://a{/seg}", "x://a/b/c", true},
		{"x://a.b", "x://aXb", false},
	}
	for _, tc := range tests {
		ct := compileTemplate(tc.tmpl)
		if ct == nil || ct.match(tc.uri) != tc.want {
			t.Errorf("%s ~ %s: want %v", tc.tmpl, tc.uri, tc.want)
		}
	}
}
