package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestOpsMetrics makes real calls through the binary, then parses
// /metrics with the Prometheus text parser and checks each series the
// operators' dashboards use, with exact values.
func TestOpsMetrics(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "paygate.json")
	writeFileAtomic(t, cfg, map[string]any{
		"globalRateLimitPerMin": 0,
		"refundOnFailure":       true,
		"toolPricing":           map[string]any{"echo": map[string]any{"creditsPerCall": 2, "rateLimitPerMin": 4}},
	})
	g := startGateway(t, "--config", cfg, "--server", echoServer(t, 0))
	rich := g.createKey(100, nil)
	broke := g.createKey(0, nil)
	client := &http.Client{}
	// 4 allowed echo calls (8 credits), then the 5th hits echo's per-tool
	// rate limit; a call of an unknown tool is charged the default price
	// and refunded when the backend answers with an error; a key without
	// credits is refused.
	for i := range 4 {
		if ok, code, body, err := callTool(client, g.URL, rich, "echo", map[string]any{"i": i}); !ok || err != nil {
			t.Fatalf("call %d: %v %d %s", i, err, code, body)
		}
	}
	if ok, _, body, _ := callTool(client, g.URL, rich, "echo", nil); ok {
		t.Fatalf("5th echo call was not rate-limited: %s", body)
	}
	if ok, _, body, _ := callTool(client, g.URL, rich, "nope", nil); ok {
		t.Fatalf("unknown tool succeeded: %s", body)
	}
	if ok, _, body, _ := callTool(client, g.URL, broke, "echo", nil); ok {
		t.Fatalf("a key without credits was served: %s", body)
	}
	if b := g.balance(rich); b != 92 {
		t.Fatalf("balance %d, want 92", b)
	}
	// One open session for the sessions gauge.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := g.connect(ctx, rich, nil)
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}

	fams := g.scrape()
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"paygate_tool_calls_total", map[string]string{"tool": "echo", "status": "allowed"}, 4},
		{"paygate_tool_calls_total", map[string]string{"tool": "echo", "status": "denied"}, 2},
		{"paygate_tool_calls_total", map[string]string{"tool": "nope", "status": "refunded"}, 1},
		{"paygate_credits_charged_total", map[string]string{"tool": "echo"}, 8},
		{"paygate_denials_total", map[string]string{"reason": "tool_rate_limited"}, 1},
		{"paygate_denials_total", map[string]string{"reason": "insufficient_credits"}, 1},
		{"paygate_rate_limit_hits_total", map[string]string{"scope": "tool"}, 1},
		{"paygate_refunds_total", map[string]string{"tool": "nope"}, 1},
		{"paygate_refunded_credits_total", map[string]string{"tool": "nope"}, 1},
		{"paygate_http_requests_total", map[string]string{"method": "POST", "route": "/keys", "code": "201"}, 2},
		{"paygate_http_requests_total", map[string]string{"method": "GET", "route": "/balance", "code": "200"}, 1},
		{"paygate_gate_duration_seconds", nil, 5},                    // histogram: calls that passed the gate
		{"paygate_backend_duration_seconds", map[string]string{}, 5}, // histogram: calls forwarded
		{"paygate_active_keys_total", nil, 2},                        // both keys are usable
		{"paygate_active_sessions_total", nil, 1},                    // the go-sdk client's session
		{"paygate_backend_restarts_total", map[string]string{}, 0},   // present from the start
		{"paygate_backend_up", map[string]string{}, 1},               // ready
		{"paygate_build_info", map[string]string{"goversion": runtime.Version()}, 1},
	}
	for _, w := range want {
		v, ok := metricValue(fams, w.name, w.labels)
		if !ok {
			t.Errorf("no series %s%v", w.name, w.labels)
		} else if v != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, v, w.value)
		}
	}
	// HTTP requests are labelled with the route table's pattern, never the
	// raw path: an unknown path is "other", the root is "/".
	g.raw("GET", "/no/such/path?x=1", nil, "")
	g.raw("GET", "/", nil, "")
	fams = g.scrape()
	if v, ok := metricValue(fams, "paygate_http_requests_total", map[string]string{"route": "other", "code": "404"}); !ok || v != 1 {
		t.Errorf("unknown path: other/404 = %v %v", v, ok)
	}
	if v, ok := metricValue(fams, "paygate_http_requests_total", map[string]string{"route": "/", "code": "200"}); !ok || v != 1 {
		t.Errorf("root: /,200 = %v %v", v, ok)
	}
	if v, ok := metricValue(fams, "paygate_http_requests_total", map[string]string{"route": "/mcp", "method": "POST"}); !ok || v < 7 {
		t.Errorf("POST /mcp requests = %v %v", v, ok)
	}
	for _, m := range fams["paygate_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && (l.GetValue() == "/no/such/path" || len(l.GetValue()) > 0 && l.GetValue()[0] != '/' && l.GetValue() != "other" && l.GetValue() != "preflight") {
				t.Errorf("route label %q is not a route pattern", l.GetValue())
			}
		}
	}
	for _, name := range []string{"paygate_uptime_seconds", "paygate_inflight_requests", "paygate_http_request_duration_seconds"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}
