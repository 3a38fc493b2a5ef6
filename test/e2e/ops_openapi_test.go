package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/testenv"
)

// TestOpsOpenAPIDocument: /openapi.json validates against the OpenAPI
// Initiative's 3.1 schema, and documents exactly the routes the server
// lists at GET / (both come from the one route table), /mcp's three
// methods and the public routes included. Every documented operation is
// served (no 404 from the mux).
func TestOpsOpenAPIDocument(t *testing.T) {
	g := startGateway(t, "--server", echoServer(t, 0))
	res := g.raw("GET", "/openapi.json", nil, "")
	if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s", res.status, res.header.Get("Content-Type"))
	}
	if err := validateOpenAPIDoc(t, res.body); err != nil {
		t.Fatalf("/openapi.json does not validate against the OpenAPI 3.1 schema: %v", err)
	}
	documented := map[string]bool{}
	for _, op := range operations(t, res.body) {
		documented[op.Method+" "+op.Path] = true
	}
	for _, want := range []string{
		"POST /mcp", "GET /mcp", "DELETE /mcp", "GET /", "GET /health", "GET /ready", "GET /metrics", "GET /info",
		"GET /pricing", "GET /.well-known/mcp-payment", "GET /.well-known/mcp.json", "GET /robots.txt",
		"GET /openapi.json", "GET /docs", "GET /maintenance", "POST /maintenance", "POST /config/reload",
		"POST /keys", "GET /balance", "POST /admin/keys",
	} {
		if !documented[want] {
			t.Errorf("%s is not documented", want)
		}
	}

	var root struct {
		Endpoints []struct{ Method, Path string } `json:"endpoints"`
	}
	if code := g.do("GET", "/", nil, nil, &root); code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	listed := map[string]bool{}
	for _, e := range root.Endpoints {
		listed[e.Method+" "+e.Path] = true
		if !documented[e.Method+" "+e.Path] {
			t.Errorf("%s %s is served (GET /) but not documented", e.Method, e.Path)
		}
	}
	if len(listed) != len(documented) {
		t.Errorf("GET / lists %d routes, /openapi.json documents %d", len(listed), len(documented))
	}
	// Every documented operation reaches a route: the mux never answers
	// 404 for it (the body is not valid for most; that is fine).
	for id := range documented {
		method, path, _ := strings.Cut(id, " ")
		if method == "GET" && (path == "/mcp" || strings.Contains(path, "events")) {
			continue // streams; covered by TestOpsRoleEnforcementFromOpenAPI
		}
		r := statusOf(t, g, method, path, map[string]string{"X-Admin-Key": testAdminKey}, bodyFor(method))
		if r == http.StatusNotFound && !strings.Contains(path, "{") {
			// A 404 is only acceptable as an answer about a resource, which
			// these requests do not name.
			t.Errorf("%s %s: 404", method, path)
		}
	}
	if r := g.raw("GET", "/no-such-route", nil, ""); r.status != 404 {
		t.Errorf("GET /no-such-route: %d", r.status)
	}
}

// bodyFor is the body the walking tests send: an empty object for writes.
func bodyFor(method string) string {
	if method == "POST" || method == "PUT" || method == "PATCH" {
		return "{}"
	}
	return ""
}

// statusOf sends a request and returns only the status, without reading
// the body (some routes stream), within a bounded time.
func statusOf(t *testing.T, g *gateway, method, path string, headers map[string]string, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequestWithContext(ctx, method, g.URL+path, rd)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, g.URL+path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOpsRoleEnforcementFromOpenAPI walks every operation of
// /openapi.json with no key, a wrong key, and viewer, admin and
// super_admin keys created through POST /admin/keys, and checks the
// answers against each operation's declared access: 401 without the
// credential, 403 below the required role, neither from the role up.
func TestOpsRoleEnforcementFromOpenAPI(t *testing.T) {
	g := startGateway(t, "--server", echoServer(t, 0), "--public-rate-limit", "0")
	apiKey := g.createKey(100, nil)
	roles := []struct {
		name, secret string
		rank         int
	}{
		{"viewer", g.createAdminKey("viewer"), 1},
		{"admin", g.createAdminKey("admin"), 2},
		{"super_admin", g.createAdminKey("super_admin"), 3},
	}
	rank := map[string]int{"viewer": 1, "admin": 2, "super_admin": 3}
	doc := g.raw("GET", "/openapi.json", nil, "").body
	ops := operations(t, doc)
	if len(ops) < 40 {
		t.Fatalf("only %d operations documented", len(ops))
	}
	var checked int
	for _, op := range ops {
		if strings.Contains(op.Path, "{") {
			t.Errorf("%s %s: path parameters are not expected in this API", op.Method, op.Path)
			continue
		}
		op := op
		t.Run(op.Method+" "+op.Path, func(t *testing.T) {
			body := bodyFor(op.Method)
			none := statusOf(t, g, op.Method, op.Path, nil, body)
			switch {
			case op.Role != "":
				if none != 401 {
					t.Fatalf("no key: %d, want 401", none)
				}
				if s := statusOf(t, g, op.Method, op.Path, map[string]string{"X-Admin-Key": "ak_" + strings.Repeat("f", 48)}, body); s != 401 {
					t.Fatalf("wrong admin key: %d, want 401", s)
				}
				if s := statusOf(t, g, op.Method, op.Path, map[string]string{"X-API-Key": apiKey}, body); s != 401 {
					t.Fatalf("API key on an admin route: %d, want 401", s)
				}
				need, ok := rank[op.Role]
				if !ok {
					t.Fatalf("unknown x-required-role %q", op.Role)
				}
				for _, r := range roles {
					s := statusOf(t, g, op.Method, op.Path, map[string]string{"X-Admin-Key": r.secret}, body)
					switch {
					case r.rank < need && s != 403:
						t.Errorf("%s: %d, want 403", r.name, s)
					case r.rank >= need && (s == 401 || s == 403):
						t.Errorf("%s: %d, want access", r.name, s)
					}
				}
			case op.public():
				if none == 401 || none == 403 {
					t.Fatalf("no key on a public operation: %d", none)
				}
			default: // API-key routes
				if none != 401 {
					t.Fatalf("no key: %d, want 401", none)
				}
				if s := statusOf(t, g, op.Method, op.Path, map[string]string{"X-API-Key": apiKey}, body); s == 401 || s == 403 {
					t.Fatalf("API key refused: %d", s)
				}
				if s := statusOf(t, g, op.Method, op.Path, map[string]string{"X-Admin-Key": roles[2].secret}, body); s != 401 {
					t.Fatalf("admin key on an API-key route: %d, want 401", s)
				}
			}
			checked++
		})
	}
	t.Logf("checked %d operations", checked)
}

// TestOpsDocsViewer renders /docs in headless Chromium and checks that
// the page lists every operation of /openapi.json.
func TestOpsDocsViewer(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		testenv.Missing(t, "chromium (apt-get install chromium)")
	}
	g := startGateway(t, "--server", echoServer(t, 0), "--public-rate-limit", "0")
	ops := operations(t, g.raw("GET", "/openapi.json", nil, "").body)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=15000", "--dump-dom", g.URL+"/docs")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errOut.String())
	}
	dom := out.String()
	m := regexp.MustCompile(`data-rendered="(\d+)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the page did not render the document:\n%s", dom)
	}
	if n, _ := strconv.Atoi(m[1]); n != len(ops) {
		t.Errorf("the page rendered %d operations, the document has %d", n, len(ops))
	}
	for _, op := range ops {
		want := `data-method="` + strings.ToLower(op.Method) + `" data-path="` + op.Path + `"`
		if !strings.Contains(dom, want) {
			t.Errorf("the page does not list %s %s", op.Method, op.Path)
		}
	}
	for _, tag := range []string{"public", "mcp", "operations", "keys"} {
		if !strings.Contains(dom, `data-tag="`+tag+`"`) {
			t.Errorf("no %q group on the page", tag)
		}
	}
	var doc map[string]any
	_ = json.Unmarshal(g.raw("GET", "/openapi.json", nil, "").body, &doc)
	if title, _ := doc["info"].(map[string]any)["title"].(string); !strings.Contains(dom, ">"+title+"<") {
		t.Errorf("the page title is not the document's %q", title)
	}
}
