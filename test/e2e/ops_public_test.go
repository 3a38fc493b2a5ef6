package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestOpsPublicEndpoints: the discovery documents answer without a key,
// with the shapes agents rely on.
func TestOpsPublicEndpoints(t *testing.T) {
	g := startGateway(t, "--server", echoServer(t, 0), "--tool-price", "echo:3")
	var health struct {
		Status   string `json:"status"`
		Version  string `json:"version"`
		Uptime   *int64 `json:"uptime"`
		InFlight *int64 `json:"inflight"`
		Store    string `json:"store"`
		Backends []struct {
			State string `json:"state"`
		} `json:"backends"`
	}
	if code := g.do("GET", "/health", nil, nil, &health); code != 200 || health.Status != "healthy" || health.Version == "" ||
		health.Uptime == nil || health.InFlight == nil || health.Store != "ok" || len(health.Backends) != 1 || health.Backends[0].State != "ready" {
		t.Fatalf("GET /health: %d %+v", code, health)
	}
	var pricing struct {
		Server struct {
			BillingModel          string `json:"billingModel"`
			DefaultCreditsPerCall int64  `json:"defaultCreditsPerCall"`
		} `json:"server"`
		Tools []struct {
			Name           string `json:"name"`
			CreditsPerCall int64  `json:"creditsPerCall"`
			PricingModel   string `json:"pricingModel"`
			Listed         bool   `json:"listed"`
		} `json:"tools"`
		ToolsKnown bool `json:"toolsKnown"`
	}
	if code := g.do("GET", "/pricing", nil, nil, &pricing); code != 200 || !pricing.ToolsKnown || len(pricing.Tools) != 1 ||
		pricing.Tools[0].Name != "echo" || pricing.Tools[0].CreditsPerCall != 3 || !pricing.Tools[0].Listed ||
		pricing.Server.BillingModel != "credits" || pricing.Server.DefaultCreditsPerCall != 1 {
		t.Fatalf("GET /pricing: %d %+v", code, pricing)
	}
	var pay map[string]any
	if code := g.do("GET", "/.well-known/mcp-payment", nil, nil, &pay); code != 200 || pay["billingModel"] != "credits" ||
		pay["specVersion"] != "2007-draft" || pay["pricingUrl"] != "/pricing" || pay["defaultCreditsPerCall"] != 1.0 {
		t.Fatalf("GET /.well-known/mcp-payment: %d %v", code, pay)
	}
	codes, _ := pay["errorCodes"].([]any)
	var sawInsufficient bool
	for _, c := range codes {
		c := c.(map[string]any)
		sawInsufficient = sawInsufficient || c["reason"] == "insufficient_credits" && c["code"] == -32402.0 && c["httpStatus"] == 402.0
	}
	if !sawInsufficient {
		t.Errorf("errorCodes lack insufficient_credits: %v", codes)
	}
	var card map[string]any
	if code := g.do("GET", "/.well-known/mcp.json", nil, nil, &card); code != 200 || card["tools"] != 1.0 ||
		card["transport"].(map[string]any)["endpoint"] != "/mcp" {
		t.Fatalf("GET /.well-known/mcp.json: %d %v", code, card)
	}
	if si, _ := card["serverInfo"].(map[string]any); si["name"] != "paygate-bench-echo" {
		t.Errorf("identity card serverInfo = %v", card["serverInfo"])
	}
	var info map[string]any
	if code := g.do("GET", "/info", nil, nil, &info); code != 200 || info["transport"] != "stdio" {
		t.Fatalf("GET /info: %d %v", code, info)
	}
	eps := info["endpoints"].(map[string]any)
	if eps["mcp"] != "/mcp" || eps["health"] != "/health" || eps["keys"] != "/keys (viewer)" || eps["maintenance"] != "/maintenance (viewer)" {
		t.Errorf("/info endpoints = %v", eps)
	}
	if tp := info["pricing"].(map[string]any)["toolPricing"].(map[string]any); tp["echo"].(map[string]any)["creditsPerCall"] != 3.0 {
		t.Errorf("/info pricing = %v", info["pricing"])
	}
	robots := g.raw("GET", "/robots.txt", nil, "")
	for _, want := range []string{"User-agent: *", "Allow: /health", "Allow: /pricing", "Disallow: /keys", "Disallow: /admin/keys", "Disallow: /mcp"} {
		if !strings.Contains(string(robots.body), want+"\n") {
			t.Errorf("robots.txt lacks %q:\n%s", want, robots.body)
		}
	}
	// Default CORS is any origin (paygate-mcp's default).
	if r := g.raw("GET", "/pricing", map[string]string{"Origin": "https://agent.example"}, ""); r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("default CORS: Access-Control-Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
	}
}

// TestOpsPublicRateLimit: the public discovery endpoints are limited per
// client address (X-Forwarded-For believed from the trusted proxy,
// walked right to left), with 429 and Retry-After; probes are not.
func TestOpsPublicRateLimit(t *testing.T) {
	g := startGateway(t, "--server", echoServer(t, 0), "--public-rate-limit", "5", "--trusted-proxies", "127.0.0.1")
	client := map[string]string{"X-Forwarded-For": "203.0.113.10, 127.0.0.1"} // client, then a trusted hop
	paths := []string{"/health", "/pricing", "/info", "/.well-known/mcp-payment", "/robots.txt"}
	for i, p := range paths {
		r := g.raw("GET", p, client, "")
		if r.status != 200 {
			t.Fatalf("request %d (%s): %d %s", i+1, p, r.status, r.body)
		}
		if r.header.Get("X-RateLimit-Limit") != "5" {
			t.Errorf("%s: X-RateLimit-Limit %q", p, r.header.Get("X-RateLimit-Limit"))
		}
	}
	for _, p := range []string{"/health", "/", "/openapi.json", "/docs", "/.well-known/mcp.json"} {
		r := g.raw("GET", p, client, "")
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("%s over the limit: %d", p, r.status)
		}
		ra, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 60 {
			t.Errorf("%s: Retry-After %q", p, r.header.Get("Retry-After"))
		}
		var e struct{ Error, Code string }
		if json.Unmarshal(r.body, &e) != nil || e.Code != "rate_limited" || e.Error == "" {
			t.Errorf("%s: 429 body %s", p, r.body)
		}
	}
	// Another client behind the same proxy has its own window.
	if r := g.raw("GET", "/health", map[string]string{"X-Forwarded-For": "203.0.113.11"}, ""); r.status != 200 {
		t.Errorf("another client: %d", r.status)
	}
	// Probes and scrapes are never limited; neither are admin routes.
	for range 8 {
		for _, p := range []string{"/ready", "/metrics"} {
			if r := g.raw("GET", p, client, ""); r.status != 200 {
				t.Fatalf("%s for a limited client: %d", p, r.status)
			}
		}
	}
	if code := g.do("GET", "/keys", map[string]string{"X-Admin-Key": testAdminKey, "X-Forwarded-For": "203.0.113.10"}, nil, nil); code != 200 {
		t.Errorf("admin route for a limited client: %d", code)
	}
}

// TestOpsHeadRequests: HEAD on every public GET endpoint answers like GET
// without a body: same status and Content-Type, a Content-Length (equal to
// the GET body's for the static ones), the usual headers.
func TestOpsHeadRequests(t *testing.T) {
	g := startGateway(t, "--server", echoServer(t, 0))
	for _, p := range []string{"/", "/health", "/ready", "/metrics", "/info", "/pricing", "/.well-known/mcp-payment",
		"/.well-known/mcp.json", "/robots.txt", "/openapi.json", "/docs", "/docs/docs.js", "/docs/docs.css"} {
		get := g.raw("GET", p, nil, "")
		head := g.raw("HEAD", p, nil, "")
		if head.status != get.status || head.status != 200 {
			t.Errorf("HEAD %s: %d, GET %d", p, head.status, get.status)
		}
		if len(head.body) != 0 {
			t.Errorf("HEAD %s returned a body of %d bytes", p, len(head.body))
		}
		if head.header.Get("Content-Type") != get.header.Get("Content-Type") {
			t.Errorf("HEAD %s: Content-Type %q, GET %q", p, head.header.Get("Content-Type"), get.header.Get("Content-Type"))
		}
		if head.header.Get("X-Request-Id") == "" || head.header.Get("X-PayGate-Version") == "" {
			t.Errorf("HEAD %s lacks X-Request-Id or X-PayGate-Version: %v", p, head.header)
		}
		static := p == "/robots.txt" || p == "/openapi.json" || strings.HasPrefix(p, "/docs")
		if cl := head.header.Get("Content-Length"); static && cl != strconv.Itoa(len(get.body)) {
			t.Errorf("HEAD %s: Content-Length %q, GET body %d bytes", p, cl, len(get.body))
		} else if !static && p != "/metrics" && cl == "" {
			t.Errorf("HEAD %s: no Content-Length", p)
		}
	}
}

var generatedID = regexp.MustCompile(`^req_[0-9a-f]{16}$`)

// TestOpsRequestID: every response carries X-Request-Id: the caller's
// when it is sane, else a generated req_ + 16 hex. The id reaches the log
// line of the request, the ledger entry it wrote and its audit record.
func TestOpsRequestID(t *testing.T) {
	g := startGateway(t, "--server", echoServer(t, 0))
	key := g.createKey(10, nil)
	admin := map[string]string{"X-Admin-Key": testAdminKey}
	mcpCall := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`
	type req struct{ method, path, body string }
	for _, rq := range []req{{"GET", "/health", ""}, {"GET", "/keys", ""}, {"POST", "/mcp", mcpCall}, {"GET", "/nope", ""}, {"OPTIONS", "/mcp", ""}} {
		h := map[string]string{"X-API-Key": key, "Accept": "application/json"}
		for k, v := range admin {
			h[k] = v
		}
		if rq.method == "OPTIONS" {
			h["Origin"], h["Access-Control-Request-Method"] = "https://agent.example", "POST"
		}
		r := g.raw(rq.method, rq.path, h, rq.body)
		if id := r.header.Get("X-Request-Id"); !generatedID.MatchString(id) {
			t.Errorf("%s %s: generated X-Request-Id %q", rq.method, rq.path, id)
		}
		h["X-Request-Id"] = "trace-" + strings.Trim(rq.path, "/") + "-42"
		r = g.raw(rq.method, rq.path, h, rq.body)
		if id := r.header.Get("X-Request-Id"); id != h["X-Request-Id"] {
			t.Errorf("%s %s: propagated X-Request-Id %q, want %q", rq.method, rq.path, id, h["X-Request-Id"])
		}
		for _, bad := range []string{strings.Repeat("x", 200), "two words", "tab\tinside"} {
			h["X-Request-Id"] = bad
			if id := g.raw(rq.method, rq.path, h, rq.body).header.Get("X-Request-Id"); !generatedID.MatchString(id) {
				t.Errorf("%s %s: unsafe id %q was not replaced (got %q)", rq.method, rq.path, bad, id)
			}
		}
	}
	// The id of a key creation is on its ledger entry and audit record.
	var created struct {
		ID string `json:"id"`
	}
	if code := g.do("POST", "/keys", map[string]string{"X-Admin-Key": testAdminKey, "X-Request-Id": "rid-e2e-create"},
		map[string]any{"name": "traced", "credits": 5}, &created); code != 201 {
		t.Fatalf("POST /keys: %d", code)
	}
	hist := g.raw("GET", "/keys/credit-history?key="+created.ID, admin, "")
	if !strings.Contains(string(hist.body), `"requestId":"rid-e2e-create"`) {
		t.Errorf("ledger entry lacks the request id: %s", hist.body)
	}
	if a := g.raw("GET", "/audit?types=key.created", admin, ""); a.status == 200 && !strings.Contains(string(a.body), "rid-e2e-create") {
		t.Errorf("audit record lacks the request id: %s", a.body)
	}
	logs := g.out.String()
	for _, id := range []string{"trace-mcp-42", "trace-keys-42", "rid-e2e-create"} {
		if !regexp.MustCompile(`request_id=` + regexp.QuoteMeta(id) + `\b`).MatchString(logs) {
			t.Errorf("no log line carries request_id=%s", id)
		}
	}
}
