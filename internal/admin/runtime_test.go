package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/store"
)

// fakeGateway plays the app's side of a Runtime.
type fakeGateway struct {
	mu        sync.Mutex
	status    RuntimeStatus
	maint     atomic.Pointer[string]
	reloadErr error
	reloads   int
	tools     []string
	known     bool
	mcp       atomic.Int32
}

func (g *fakeGateway) runtime() *Runtime {
	return &Runtime{
		Name: "test-server", Version: "v-test", Started: t0,
		Status: func() RuntimeStatus { g.mu.Lock(); defer g.mu.Unlock(); return g.status },
		Server: func() ServerInfo {
			return ServerInfo{Transport: "stdio", ProtocolVersion: "2025-11-25",
				ServerInfo: json.RawMessage(`{"name":"backend","version":"1.0.0"}`), Capabilities: json.RawMessage(`{"tools":{}}`)}
		},
		Tools: func() ([]string, bool) { g.mu.Lock(); defer g.mu.Unlock(); return slices.Clone(g.tools), g.known },
		MCP: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.mcp.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
		}),
		Metrics:        http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("up 1\n")) }),
		Maintenance:    g.maint.Load,
		SetMaintenance: g.maint.Store,
		Reload: func() (ReloadResult, error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.reloads++
			if g.reloadErr != nil {
				return ReloadResult{}, g.reloadErr
			}
			return ReloadResult{Changed: []string{"defaultCreditsPerCall"}}, nil
		},
		ConfigFile:            "/etc/paygate/paygate.json",
		PublicRateLimitPerMin: 0,
		Features:              map[string]bool{"redis": false},
	}
}

func (g *fakeGateway) set(fn func(g *fakeGateway)) { g.mu.Lock(); fn(g); g.mu.Unlock() }

func readyBackend() []backend.Status {
	return []backend.Status{{Name: "backend", Transport: "stdio", State: backend.StateReady}}
}

// newRuntimeFixture is a fixture whose API has a Runtime.
func newRuntimeFixture(t *testing.T, mod func(*Runtime)) (*fixture, *fakeGateway) {
	g := &fakeGateway{status: RuntimeStatus{Backends: readyBackend()}}
	f := newFixture(t, func(o *Options) {
		o.Runtime = g.runtime()
		if mod != nil {
			mod(o.Runtime)
		}
	})
	return f, g
}

// wantRuntimeRoutes are the routes a Runtime adds, with their least role.
var wantRuntimeRoutes = map[string]store.AdminRole{
	"GET /{$}":                     RolePublic,
	"GET /health":                  RolePublic,
	"GET /ready":                   RolePublic,
	"GET /metrics":                 RolePublic,
	"GET /info":                    RolePublic,
	"GET /pricing":                 RolePublic,
	"GET /.well-known/mcp-payment": RolePublic,
	"GET /.well-known/mcp.json":    RolePublic,
	"GET /robots.txt":              RolePublic,
	"GET /openapi.json":            RolePublic,
	"GET /docs":                    RolePublic,
	"GET /docs/docs.js":            RolePublic,
	"GET /docs/docs.css":           RolePublic,
	"GET /maintenance":             store.RoleViewer,
	"POST /maintenance":            store.RoleAdmin,
	"POST /config/reload":          store.RoleAdmin,
	"POST /mcp":                    RoleGateway,
	"GET /mcp":                     RoleGateway,
	"DELETE /mcp":                  RoleGateway,
}

func TestRuntimeRoutes(t *testing.T) {
	plain := newFixture(t)
	f, _ := newRuntimeFixture(t, nil)
	base := map[string]bool{}
	for _, rt := range plain.api.Routes() {
		base[rt.Method+" "+rt.Pattern] = true
	}
	got := map[string]store.AdminRole{}
	for _, rt := range f.api.Routes() {
		id := rt.Method + " " + rt.Pattern
		if base[id] {
			continue
		}
		got[id] = rt.Role
		if rt.Handler == nil || rt.Doc.Summary == "" || rt.Doc.Tag == "" || rt.Doc.Response == nil {
			t.Errorf("%s: incomplete route", id)
		}
		if rt.Method == "POST" && rt.Role != RoleGateway && roleRank(rt.Role) < roleRank(store.RoleAdmin) {
			t.Errorf("%s: a write open to %q", id, rt.Role)
		}
	}
	for id, role := range wantRuntimeRoutes {
		if g, ok := got[id]; !ok {
			t.Errorf("missing route %s", id)
		} else if g != role {
			t.Errorf("%s: role %q, want %q", id, g, role)
		}
	}
	for id := range got {
		if _, ok := wantRuntimeRoutes[id]; !ok {
			t.Errorf("unexpected route %s (add it to wantRuntimeRoutes)", id)
		}
	}
}

// TestEveryRouteServedAndDocumented mounts the table on a mux, checks that
// each route's own pattern serves it, and that the OpenAPI document has
// exactly the table's operations.
func TestEveryRouteServedAndDocumented(t *testing.T) {
	f, _ := newRuntimeFixture(t, nil)
	mux := http.NewServeMux()
	f.api.Mount(mux)
	doc := f.api.OpenAPI("paygate", "test")
	paths := doc["paths"].(map[string]any)
	ops := 0
	for _, item := range paths {
		ops += len(item.(map[string]any))
	}
	routes := f.api.Routes()
	if ops != len(routes) {
		t.Errorf("%d operations documented, %d routes", ops, len(routes))
	}
	for _, rt := range routes {
		path := openAPIPath(rt.Pattern)
		req := httptest.NewRequest(rt.Method, path, nil)
		if _, pattern := mux.Handler(req); pattern != rt.Method+" "+rt.Pattern {
			t.Errorf("%s %s is served by pattern %q", rt.Method, path, pattern)
		}
		item, _ := paths[path].(map[string]any)
		if item == nil || item[strings.ToLower(rt.Method)] == nil {
			t.Errorf("%s %s is not documented", rt.Method, path)
		}
	}
}

// validateOpenAPI validates doc against the OpenAPI 3.1 schema published
// by the OpenAPI Initiative (testdata/oas-3.1-schema.json), and compiles
// every component schema as a JSON Schema 2020-12 schema.
func validateOpenAPI(doc []byte) error {
	meta, err := os.ReadFile(filepath.Join("testdata", "oas-3.1-schema.json"))
	if err != nil {
		return err
	}
	metaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(meta))
	if err != nil {
		return err
	}
	id := metaDoc.(map[string]any)["$id"].(string)
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, metaDoc); err != nil {
		return err
	}
	sch, err := c.Compile(id)
	if err != nil {
		return fmt.Errorf("compile the OpenAPI meta-schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("the OpenAPI document does not validate against %s:\n%w", id, err)
	}
	// Each component schema must itself be a valid JSON Schema.
	const docURL = "https://paygate.invalid/openapi.json"
	sc := jsonschema.NewCompiler()
	sc.DefaultDraft(jsonschema.Draft2020)
	if err := sc.AddResource(docURL, inst); err != nil {
		return err
	}
	schemas := inst.(map[string]any)["components"].(map[string]any)["schemas"].(map[string]any)
	var errs []error
	for name := range schemas {
		if _, err := sc.Compile(docURL + "#/components/schemas/" + name); err != nil {
			errs = append(errs, fmt.Errorf("component schema %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func TestOpenAPIValidatesAgainstMetaSchema(t *testing.T) {
	plain := newFixture(t)
	f, _ := newRuntimeFixture(t, nil)
	for name, api := range map[string]*API{"admin only": plain.api, "with runtime": f.api} {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(api.OpenAPI("paygate", "test"))
			if err != nil {
				t.Fatal(err)
			}
			if err := validateOpenAPI(b); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The served document validates too, and the meta-schema does reject
	// broken ones (the check is not vacuous).
	r := f.req("GET", "/openapi.json", "", "")
	mustStatus(t, r, 200)
	if err := validateOpenAPI([]byte(r.body)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to string }{
		{`"openapi":"3.1.0"`, `"openapi":"3.0.0"`},
		{`"operationId":"getHealth"`, `"operationId":7`},
		{`"in":"query"`, `"in":"body"`},
	} {
		bad := strings.Replace(r.body, c.from, c.to, 1)
		if bad == r.body {
			t.Fatalf("could not corrupt the document with %s", c.to)
		}
		if validateOpenAPI([]byte(bad)) == nil {
			t.Errorf("a document with %s passed the meta-schema", c.to)
		}
	}
}

func TestRuntimeRoleEnforcement(t *testing.T) {
	f, g := newRuntimeFixture(t, nil)
	for _, rt := range f.api.Routes() {
		if _, ours := wantRuntimeRoutes[rt.Method+" "+rt.Pattern]; !ours {
			continue // TestRoleEnforcement covers the admin routes
		}
		path := openAPIPath(rt.Pattern)
		t.Run(rt.Method+" "+path, func(t *testing.T) {
			body := ""
			if rt.Method == "POST" {
				body = "{}"
			}
			r := f.req(rt.Method, path, "", body)
			switch rt.Role {
			case RolePublic, RoleGateway:
				if r.status == 401 || r.status == 403 {
					t.Fatalf("no credential: %d %s", r.status, r.body)
				}
				return
			}
			errBody(t, r, 401, CodeUnauthorized, "")
			for _, ro := range []struct {
				role   store.AdminRole
				secret string
			}{{store.RoleViewer, f.viewer}, {store.RoleAdmin, f.admin}, {store.RoleSuperAdmin, f.super}} {
				r := f.req(rt.Method, path, ro.secret, body)
				if roleRank(ro.role) < roleRank(rt.Role) {
					errBody(t, r, 403, CodeForbidden, "")
				} else if r.status == 401 || r.status == 403 {
					t.Errorf("%s refused: %d %s", ro.role, r.status, r.body)
				}
			}
		})
	}
	if g.maint.Load() != nil {
		t.Fatal("an empty POST /maintenance switched maintenance on")
	}
}

func TestMCPPassThrough(t *testing.T) {
	f, g := newRuntimeFixture(t, nil)
	for _, m := range []string{"POST", "GET", "DELETE"} {
		if r := f.req(m, "/mcp", "", `{"jsonrpc":"2.0"}`); r.status != http.StatusAccepted {
			t.Fatalf("%s /mcp: %d %s", m, r.status, r.body)
		}
	}
	// The transport enforces its own body limit (in JSON-RPC), not the admin one.
	big := strings.Repeat("x", int(DefaultMaxBody)+10)
	if r := f.req("POST", "/mcp", "", big); r.status != http.StatusAccepted {
		t.Fatalf("large POST /mcp: %d", r.status)
	}
	if n := g.mcp.Load(); n != 4 {
		t.Fatalf("MCP handler ran %d times", n)
	}
	r := f.req("PUT", "/mcp", "", "")
	if r.status != 405 || r.header.Get("Allow") != "DELETE, GET, HEAD, POST" {
		t.Fatalf("PUT /mcp: %d Allow %q", r.status, r.header.Get("Allow"))
	}
}

func TestHealthAndReady(t *testing.T) {
	f, g := newRuntimeFixture(t, nil)
	h := mustStatus(t, f.req("GET", "/health", "", ""), 200)
	if h["status"] != "healthy" || h["version"] != "v-test" || h["store"] != "ok" || h["inflight"] != 0.0 {
		t.Fatalf("health = %v", h)
	}
	mustStatus(t, f.req("GET", "/ready", "", ""), 200)

	g.set(func(g *fakeGateway) { g.status.Backends[0].State = backend.StateRestarting })
	if h := mustStatus(t, f.req("GET", "/health", "", ""), 200); h["status"] != "degraded" {
		t.Fatalf("health with the backend restarting = %v", h)
	}
	r := f.req("GET", "/ready", "", "")
	if r.status != 503 || !strings.Contains(r.body, "backend backend restarting") {
		t.Fatalf("ready with the backend restarting: %d %s", r.status, r.body)
	}
	g.set(func(g *fakeGateway) { g.status.Backends = readyBackend() })

	msg := "upgrading"
	g.maint.Store(&msg)
	if h := mustStatus(t, f.req("GET", "/health", "", ""), 200); h["status"] != "maintenance" {
		t.Fatalf("health in maintenance = %v", h)
	}
	if r := f.req("GET", "/ready", "", ""); r.status != 503 || !strings.Contains(r.body, "maintenance") {
		t.Fatalf("ready in maintenance: %d %s", r.status, r.body)
	}
	g.maint.Store(nil)

	g.set(func(g *fakeGateway) { g.status.Draining, g.status.InFlight = true, 3 })
	r = f.req("GET", "/health", "", "")
	if h := r.json(t); r.status != 503 || h["status"] != "draining" || h["inflight"] != 3.0 {
		t.Fatalf("health while draining: %d %v", r.status, h)
	}
	if r := f.req("GET", "/ready", "", ""); r.status != 503 || !strings.Contains(r.body, "draining") {
		t.Fatalf("ready while draining: %d %s", r.status, r.body)
	}
}

func TestPublicRateLimit(t *testing.T) {
	f, _ := newRuntimeFixture(t, func(rt *Runtime) {
		rt.PublicRateLimitPerMin = 3
		rt.ClientIP = func(r *http.Request) netip.Addr {
			if xff := r.Header.Get("X-Test-Client"); xff != "" {
				return netip.MustParseAddr(xff)
			}
			return netip.MustParseAddr("192.0.2.1")
		}
	})
	for i := range 3 {
		r := f.req("GET", "/health", "", "")
		if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "3" {
			t.Fatalf("request %d: %d %v", i, r.status, r.header)
		}
	}
	r := f.req("GET", "/pricing", "", "")
	errBody(t, r, 429, CodeRateLimited, "")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	// Another client address has its own window; probes are never limited.
	mustStatus(t, f.req("GET", "/info", "", "", "X-Test-Client", "198.51.100.7"), 200)
	for range 5 {
		mustStatus(t, f.req("GET", "/ready", "", ""), 200)
		if r := f.req("GET", "/metrics", "", ""); r.status != 200 {
			t.Fatalf("/metrics: %d", r.status)
		}
	}
	// Admin routes are not public routes.
	mustStatus(t, f.req("GET", "/maintenance", f.viewer, ""), 200)
}

func TestMaintenanceRoutes(t *testing.T) {
	f, g := newRuntimeFixture(t, nil)
	errBody(t, f.req("POST", "/maintenance", f.admin, `{"message":"x"}`), 400, CodeBadRequest, "enabled")
	errBody(t, f.req("POST", "/maintenance", f.admin, `{"enabled":true,"message":"a\nb"}`), 400, CodeBadRequest, "message")
	errBody(t, f.req("POST", "/maintenance", f.admin, `{"enabled":"yes"}`), 400, CodeBadRequest, "enabled")

	r := f.req("POST", "/maintenance", f.admin, `{"enabled":true,"message":"Upgrading, back soon"}`, "X-Request-Id", "rid-maint")
	v := mustStatus(t, r, 200)
	if v["enabled"] != true || v["message"] != "Upgrading, back soon" || v["since"] == nil {
		t.Fatalf("POST /maintenance = %v", v)
	}
	if m := g.maint.Load(); m == nil || *m != "Upgrading, back soon" {
		t.Fatalf("gateway maintenance = %v", m)
	}
	if v := mustStatus(t, f.req("GET", "/maintenance", f.viewer, ""), 200); v["enabled"] != true || v["message"] != "Upgrading, back soon" {
		t.Fatalf("GET /maintenance = %v", v)
	}
	evs := f.audit("maintenance.enabled")
	if len(evs) != 1 || evs[0].RequestID != "rid-maint" || evs[0].Actor == "" {
		t.Fatalf("audit = %+v", evs)
	}
	if v := mustStatus(t, f.req("POST", "/maintenance", f.admin, `{"enabled":false}`), 200); v["enabled"] != false {
		t.Fatalf("disable = %v", v)
	}
	if g.maint.Load() != nil || len(f.audit("maintenance.disabled")) != 1 {
		t.Fatal("maintenance still on, or not audited")
	}
	// Switching on without a message uses the default one.
	mustStatus(t, f.req("POST", "/maintenance", f.admin, `{"enabled":true}`), 200)
	if m := g.maint.Load(); m == nil || *m != defaultMaintenanceMessage {
		t.Fatalf("default message = %v", m)
	}
}

func TestConfigReloadRoute(t *testing.T) {
	f, g := newRuntimeFixture(t, nil)
	v := mustStatus(t, f.req("POST", "/config/reload", f.admin, ""), 200)
	if v["ok"] != true || v["message"] != "Config reloaded: 1 fields updated" || len(v["changed"].([]any)) != 1 ||
		v["skipped"] == nil || v["warnings"] == nil {
		t.Fatalf("reload = %v", v)
	}
	mustStatus(t, f.req("POST", "/config/reload", f.admin, `{"configPath":"/etc/paygate/../paygate/paygate.json"}`), 200)
	// Any other path is refused before anything is read.
	before := g.reloads
	errBody(t, f.req("POST", "/config/reload", f.admin, `{"configPath":"/etc/passwd"}`), 400, CodeBadRequest, "configPath")
	if g.reloads != before {
		t.Fatal("a refused configPath still reloaded")
	}
	g.set(func(g *fakeGateway) {
		g.reloadErr = errors.Join(errors.New("toolPricing.search.creditsPerCall: must be a whole number"), errors.New("port: out of range"))
	})
	r := f.req("POST", "/config/reload", f.admin, "")
	errBody(t, r, 400, CodeBadRequest, "")
	if !strings.Contains(r.body, "creditsPerCall: must be a whole number; port: out of range") {
		t.Fatalf("errors not named: %s", r.body)
	}
	g.set(func(g *fakeGateway) { g.reloadErr = ErrNoConfigFile })
	errBody(t, f.req("POST", "/config/reload", f.admin, ""), 409, CodeConflict, "")
	if len(f.audit("config.reloaded")) != 2 || len(f.audit("config.reload_failed")) != 2 {
		t.Fatal("reloads not audited")
	}
}

func TestDiscoveryDocuments(t *testing.T) {
	f, g := newRuntimeFixture(t, nil)
	g.set(func(g *fakeGateway) { g.tools, g.known = []string{"echo", "search"}, true })

	p := mustStatus(t, f.req("GET", "/pricing", "", ""), 200)
	tools := p["tools"].([]any)
	if p["toolsKnown"] != true || len(tools) != 2 {
		t.Fatalf("pricing = %v", p)
	}
	search := tools[1].(map[string]any)
	if search["name"] != "search" || search["creditsPerCall"] != 1.0 || search["rateLimitPerMin"] != 5.0 || search["listed"] != true {
		t.Fatalf("search pricing = %v", search)
	}

	info := mustStatus(t, f.req("GET", "/info", "", ""), 200)
	eps := info["endpoints"].(map[string]any)
	if info["name"] != "test-server" || info["transport"] != "stdio" || eps["mcp"] != "/mcp" || eps["keys"] != "/keys (viewer)" ||
		eps["health"] != "/health" || info["pricing"].(map[string]any)["defaultCreditsPerCall"] != 1.0 {
		t.Fatalf("info = %v", info)
	}

	pay := mustStatus(t, f.req("GET", "/.well-known/mcp-payment", "", ""), 200)
	if pay["billingModel"] != "credits" || pay["specVersion"] != "2007-draft" || pay["pricingUrl"] != "/pricing" ||
		pay["defaultCreditsPerCall"] != 1.0 || len(pay["errorCodes"].([]any)) < 10 {
		t.Fatalf("mcp-payment = %v", pay)
	}
	card := mustStatus(t, f.req("GET", "/.well-known/mcp.json", "", ""), 200)
	if card["transport"].(map[string]any)["endpoint"] != "/mcp" || card["tools"] != 2.0 {
		t.Fatalf("mcp.json = %v", card)
	}

	robots := f.req("GET", "/robots.txt", "", "")
	for _, want := range []string{"User-agent: *\n", "Allow: /health\n", "Allow: /pricing\n", "Allow: /$\n",
		"Disallow: /keys\n", "Disallow: /admin/keys\n", "Disallow: /mcp\n", "Disallow: /maintenance\n"} {
		if !strings.Contains(robots.body, want) {
			t.Errorf("robots.txt lacks %q:\n%s", want, robots.body)
		}
	}
	if robots.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("robots content type %q", robots.header.Get("Content-Type"))
	}

	root := mustStatus(t, f.req("GET", "/", "", ""), 200)
	var sawMCP bool
	for _, e := range root["endpoints"].([]any) {
		e := e.(map[string]any)
		sawMCP = sawMCP || e["path"] == "/mcp" && e["method"] == "DELETE" && e["auth"] == "gateway"
	}
	if !sawMCP || len(root["endpoints"].([]any)) != len(f.api.Routes()) {
		t.Fatalf("root = %v", root)
	}
	// The root pattern matches the root only.
	errBody(t, f.req("GET", "/nope", "", ""), 404, CodeNotFound, "")
}

func TestDocsPage(t *testing.T) {
	f, _ := newRuntimeFixture(t, nil)
	for path, ctype := range map[string]string{
		"/docs": "text/html; charset=utf-8", "/docs/docs.js": "text/javascript; charset=utf-8", "/docs/docs.css": "text/css; charset=utf-8",
	} {
		r := f.req("GET", path, "", "")
		if r.status != 200 || r.header.Get("Content-Type") != ctype || r.header.Get("Content-Security-Policy") == "" || r.body == "" {
			t.Fatalf("%s: %d %v", path, r.status, r.header)
		}
	}
	js := f.req("GET", "/docs/docs.js", "", "").body
	// The viewer must build the DOM from data with safe methods only.
	for _, banned := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(js, banned) {
			t.Errorf("docs.js uses %s", banned)
		}
	}
	html := f.req("GET", "/docs", "", "").body
	for _, ext := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(html, ext) || strings.Contains(js, ext) {
			t.Errorf("the docs page references %q: everything must be embedded", ext)
		}
	}
}

func TestHeadRequests(t *testing.T) {
	f, _ := newRuntimeFixture(t, nil)
	mux := http.NewServeMux()
	f.api.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, path := range []string{"/", "/health", "/ready", "/info", "/pricing", "/.well-known/mcp-payment",
		"/.well-known/mcp.json", "/robots.txt", "/openapi.json", "/docs", "/docs/docs.js"} {
		get, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var gb bytes.Buffer
		_, _ = gb.ReadFrom(get.Body)
		get.Body.Close()
		head, err := http.Head(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var hb bytes.Buffer
		_, _ = hb.ReadFrom(head.Body)
		head.Body.Close()
		if head.StatusCode != get.StatusCode || hb.Len() != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") ||
			head.Header.Get("X-Request-Id") == "" {
			t.Errorf("HEAD %s: %d body %d bytes, headers %v (GET: %d %v)", path, head.StatusCode, hb.Len(), head.Header, get.StatusCode, get.Header)
		}
		if head.ContentLength <= 0 {
			t.Errorf("HEAD %s: Content-Length %d", path, head.ContentLength)
		}
		if static := path == "/robots.txt" || strings.HasPrefix(path, "/docs") || path == "/openapi.json"; static && head.ContentLength != int64(gb.Len()) {
			t.Errorf("HEAD %s: Content-Length %d, GET body %d", path, head.ContentLength, gb.Len())
		}
	}
}
