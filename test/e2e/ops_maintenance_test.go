package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOpsMaintenance: in maintenance /mcp answers 503 with the operator's
// message and charges nothing, /ready is 503, /health says so, while the
// admin API keeps working; switching it off restores service.
func TestOpsMaintenance(t *testing.T) {
	g := startGateway(t, "--server", echoServer(t, 0))
	key := g.createKey(10, nil)
	viewer := g.createAdminKey("viewer")
	client := &http.Client{}
	if ok, code, body, err := callTool(client, g.URL, key, "echo", nil); !ok {
		t.Fatalf("call before maintenance: %v %d %s", err, code, body)
	}
	var view struct {
		Enabled bool    `json:"enabled"`
		Message string  `json:"message"`
		Since   *string `json:"since"`
	}
	if code := g.do("POST", "/maintenance", map[string]string{"X-Admin-Key": viewer}, map[string]any{"enabled": true}, nil); code != 403 {
		t.Fatalf("a viewer switched maintenance: %d", code)
	}
	const msg = "Upgrading to v2, back in 10 minutes"
	if code := g.admin("POST", "/maintenance", map[string]any{"enabled": true, "message": msg}, &view); code != 200 ||
		!view.Enabled || view.Message != msg || view.Since == nil {
		t.Fatalf("POST /maintenance: %d %+v", code, view)
	}

	ok, code, body, err := callTool(client, g.URL, key, "echo", nil)
	if ok || err != nil || code != http.StatusServiceUnavailable || !strings.Contains(string(body), msg) {
		t.Fatalf("call in maintenance: ok=%v %v %d %s", ok, err, code, body)
	}
	var rpc struct {
		Error struct {
			Code int64 `json:"code"`
			Data struct {
				Reason string `json:"reason"`
			} `json:"data"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &rpc) != nil || rpc.Error.Code != -32402 || rpc.Error.Data.Reason != "maintenance_mode" {
		t.Errorf("maintenance answer: %s", body)
	}
	if r := g.raw("POST", "/mcp", map[string]string{"X-API-Key": key}, `{"jsonrpc":"2.0","id":1,"method":"ping"}`); r.header.Get("Retry-After") == "" {
		t.Errorf("maintenance answer without Retry-After")
	}
	if g.balance(key) != 9 {
		t.Errorf("a refused call was charged: balance %d", g.balance(key))
	}
	if r := g.raw("GET", "/ready", nil, ""); r.status != 503 || !strings.Contains(string(r.body), "maintenance") {
		t.Errorf("/ready in maintenance: %d %s", r.status, r.body)
	}
	var health struct {
		Status      string `json:"status"`
		Maintenance *struct {
			Message string `json:"message"`
		} `json:"maintenance"`
	}
	if code := g.do("GET", "/health", nil, nil, &health); code != 200 || health.Status != "maintenance" ||
		health.Maintenance == nil || health.Maintenance.Message != msg {
		t.Errorf("/health in maintenance: %d %+v", code, health)
	}
	// The admin API stays up.
	if code := g.admin("GET", "/keys", nil, nil); code != 200 {
		t.Errorf("GET /keys in maintenance: %d", code)
	}
	if code := g.do("GET", "/maintenance", map[string]string{"X-Admin-Key": viewer}, nil, &view); code != 200 || !view.Enabled || view.Message != msg {
		t.Errorf("GET /maintenance: %d %+v", code, view)
	}
	if a := g.raw("GET", "/audit?types=maintenance.enabled", map[string]string{"X-Admin-Key": testAdminKey}, ""); a.status == 200 &&
		!strings.Contains(string(a.body), "maintenance.enabled") {
		t.Errorf("maintenance not audited: %s", a.body)
	}

	if code := g.admin("POST", "/maintenance", map[string]any{"enabled": false}, &view); code != 200 || view.Enabled {
		t.Fatalf("switch off: %d %+v", code, view)
	}
	if ok, code, body, err := callTool(client, g.URL, key, "echo", nil); !ok {
		t.Fatalf("call after maintenance: %v %d %s", err, code, body)
	}
	if r := g.raw("GET", "/ready", nil, ""); r.status != 200 {
		t.Errorf("/ready after maintenance: %d", r.status)
	}
}

// TestOpsCORSAndHeadersHotReload: CORS preflights and custom headers
// follow the config file, and change with POST /config/reload and with
// SIGHUP without a restart. Custom headers never replace built-in ones.
func TestOpsCORSAndHeadersHotReload(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "paygate.json")
	cfg := map[string]any{
		"cors":          map[string]any{"origin": []string{"https://app.example"}, "maxAge": 600},
		"customHeaders": map[string]string{"X-Frame-Options": "DENY", "X-Request-Id": "fixed-by-operator"},
	}
	writeFileAtomic(t, cfgPath, cfg)
	g := startGateway(t, "--config", cfgPath, "--server", echoServer(t, 0))

	preflight := func(origin string) httpResult {
		return g.raw("OPTIONS", "/mcp", map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "content-type, x-api-key"}, "")
	}
	r := preflight("https://app.example")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" || r.header.Get("Access-Control-Max-Age") != "600" ||
		!strings.Contains(r.header.Get("Vary"), "Origin") {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	for _, h := range []string{"X-API-Key", "X-Admin-Key", "Mcp-Session-Id", "X-Request-Id"} {
		if !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), h) {
			t.Errorf("Access-Control-Allow-Headers lacks %s: %q", h, r.header.Get("Access-Control-Allow-Headers"))
		}
	}
	if r.header.Get("X-Frame-Options") != "DENY" || !generatedID.MatchString(r.header.Get("X-Request-Id")) {
		t.Errorf("preflight headers: X-Frame-Options %q, X-Request-Id %q", r.header.Get("X-Frame-Options"), r.header.Get("X-Request-Id"))
	}
	if r := preflight("https://evil.example"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a disallowed origin got CORS headers: %v", r.header)
	}
	get := g.raw("GET", "/health", map[string]string{"Origin": "https://app.example"}, "")
	if !strings.Contains(get.header.Get("Access-Control-Expose-Headers"), "X-Request-Id") || get.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("GET with Origin: %v", get.header)
	}

	// Reload through the API.
	cfg["cors"] = map[string]any{"origin": []string{"https://other.example"}}
	cfg["customHeaders"] = map[string]string{"X-Frame-Options": "SAMEORIGIN", "X-Custom-Tag": "v2"}
	writeFileAtomic(t, cfgPath, cfg)
	var res struct {
		OK      bool     `json:"ok"`
		Changed []string `json:"changed"`
	}
	if code := g.admin("POST", "/config/reload", nil, &res); code != 200 || !res.OK ||
		!contains(res.Changed, "cors") || !contains(res.Changed, "customHeaders") {
		t.Fatalf("POST /config/reload: %d %+v", code, res)
	}
	if r := preflight("https://other.example"); r.header.Get("Access-Control-Allow-Origin") != "https://other.example" ||
		r.header.Get("Access-Control-Max-Age") != "86400" || r.header.Get("X-Frame-Options") != "SAMEORIGIN" || r.header.Get("X-Custom-Tag") != "v2" {
		t.Errorf("after reload: %v", r.header)
	}
	if r := preflight("https://app.example"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("the old origin is still allowed after reload")
	}

	// Reload through SIGHUP: the effect is asynchronous; wait for it.
	cfg["customHeaders"] = map[string]string{"X-Custom-Tag": "v3"}
	writeFileAtomic(t, cfgPath, cfg)
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		h := g.raw("GET", "/ready", nil, "").header
		if h.Get("X-Custom-Tag") == "v3" {
			if h.Get("X-Frame-Options") != "" {
				t.Errorf("a removed custom header is still sent: %v", h)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP reload not applied after 15s: %v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
