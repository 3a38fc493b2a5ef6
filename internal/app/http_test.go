package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/gateway"
	"github.com/paygate/paygate/internal/mcp"
)

func TestRouteLabel(t *testing.T) {
	for pattern, want := range map[string]string{
		"":                          "other",
		"POST /keys":                "/keys",
		"GET /{$}":                  "/",
		"/mcp":                      "/mcp",
		"GET /.well-known/mcp.json": "/.well-known/mcp.json",
	} {
		if got := routeLabel(pattern); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", pattern, got, want)
		}
	}
}

// serve runs one request through a middleware over a mux with one route.
func serve(t *testing.T, m *middleware, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	m.ServeHTTP(w, r)
	return w
}

func newTestMiddleware(cfg *config.Config, logs *bytes.Buffer) (*middleware, *atomic.Pointer[httpPolicy], *string) {
	var pol atomic.Pointer[httpPolicy]
	pol.Store(newHTTPPolicy(cfg))
	seen := new(string)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		*seen = r.Header.Get("X-Request-Id") + "|" + gateway.RequestID(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	})
	log := slog.New(requestIDHandler{slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})})
	return &middleware{next: mux, version: "v1", policy: &pol, log: log, clientIP: &gateway.ClientIPResolver{}}, &pol, seen
}

func TestMiddlewareRequestIDAndHeaders(t *testing.T) {
	cfg := &config.Config{CustomHeaders: map[string]string{"x-frame-options": "DENY", "X-Request-Id": "operator", "Access-Control-Allow-Origin": "x"}}
	var logs bytes.Buffer
	m, pol, seen := newTestMiddleware(cfg, &logs)

	w := serve(t, m, httptest.NewRequest("GET", "/health", nil))
	id := w.Header().Get("X-Request-Id")
	if !strings.HasPrefix(id, "req_") || len(id) != 20 || *seen != id+"|"+id {
		t.Fatalf("generated id %q; handler saw %q", id, *seen)
	}
	if w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("X-PayGate-Version") != "v1" {
		t.Fatalf("headers %v", w.Header())
	}
	r := httptest.NewRequest("GET", "/health", nil)
	r.Header.Set("X-Request-Id", "trace-1")
	if w := serve(t, m, r); w.Header().Get("X-Request-Id") != "trace-1" || *seen != "trace-1|trace-1" {
		t.Fatalf("propagated id %q, handler saw %q", w.Header().Get("X-Request-Id"), *seen)
	}
	r.Header.Set("X-Request-Id", "has space")
	if w := serve(t, m, r); !strings.HasPrefix(w.Header().Get("X-Request-Id"), "req_") {
		t.Fatalf("unsafe id kept: %q", w.Header().Get("X-Request-Id"))
	}
	// The access log line carries the id, route and status.
	var line struct {
		Msg       string `json:"msg"`
		RequestID string `json:"request_id"`
		Route     string `json:"route"`
		Status    int    `json:"status"`
	}
	first, _, _ := strings.Cut(logs.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil || line.Msg != "http request" || line.RequestID != id ||
		line.Route != "/health" || line.Status != 200 {
		t.Fatalf("access log %q", first)
	}
	if strings.Count(first, "request_id") != 1 {
		t.Fatalf("request_id twice: %s", first)
	}

	// A reload swaps the policy: the next request sees the new headers.
	pol.Store(newHTTPPolicy(&config.Config{CustomHeaders: map[string]string{"X-Tag": "v2"}}))
	w = serve(t, m, httptest.NewRequest("GET", "/health", nil))
	if w.Header().Get("X-Tag") != "v2" || w.Header().Get("X-Frame-Options") != "" {
		t.Fatalf("after swap: %v", w.Header())
	}
}

func TestMiddlewareCORS(t *testing.T) {
	var logs bytes.Buffer
	preflight := func(m *middleware, origin string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("OPTIONS", "/mcp", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		return serve(t, m, r)
	}
	// No cors object: any origin, as paygate-mcp.
	m, pol, _ := newTestMiddleware(&config.Config{}, &logs)
	if w := preflight(m, "https://a.example"); w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("default preflight: %d %v", w.Code, w.Header())
	}
	pol.Store(newHTTPPolicy(&config.Config{CORS: &config.CORS{Origin: []string{"https://a.example"}, Credentials: true, MaxAge: 60}}))
	w := preflight(m, "https://a.example")
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "https://a.example" || w.Header().Get("Access-Control-Allow-Credentials") != "true" ||
		w.Header().Get("Access-Control-Max-Age") != "60" || w.Header().Get("Vary") != "Origin" || w.Header().Get("X-Request-Id") == "" {
		t.Fatalf("listed origin: %d %v", w.Code, w.Header())
	}
	if w := preflight(m, "https://b.example"); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("unlisted origin allowed: %v", w.Header())
	}
}

func TestMCPGuard(t *testing.T) {
	var draining atomic.Bool
	var maint atomic.Pointer[string]
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	g := &mcpGuard{draining: &draining, maintenance: maint.Load, next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(200)
	})}
	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest("POST", "/mcp", strings.NewReader("{}")))
		done <- w.Code
	}()
	<-entered
	if g.active.Load() != 1 {
		t.Fatalf("active = %d", g.active.Load())
	}
	// Draining: new requests are refused, the one in flight finishes.
	draining.Store(true)
	w := httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest("POST", "/mcp", strings.NewReader("{}")))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("while draining: %d", w.Code)
	}
	close(release)
	if code := <-done; code != 200 || g.active.Load() != 0 {
		t.Fatalf("in-flight request: %d, active %d", code, g.active.Load())
	}
	draining.Store(false)
	msg := "back soon"
	maint.Store(&msg)
	w = httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest("GET", "/mcp", nil))
	var body struct {
		Error struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if w.Code != 503 || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != mcp.CodePaymentRequired ||
		!strings.Contains(body.Error.Message, "back soon") {
		t.Fatalf("maintenance: %d %s", w.Code, w.Body.String())
	}
}

func TestRequestIDLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(requestIDHandler{slog.NewTextHandler(&buf, nil)}).With("component", "x")
	ctx := gateway.WithRequestID(context.Background(), "req_0123456789abcdef")
	log.ErrorContext(ctx, "charge failed", "key", "pg_abc...wxyz")
	log.ErrorContext(ctx, "explicit", "request_id", "other")
	log.Error("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "request_id=req_0123456789abcdef") ||
		strings.Count(lines[1], "request_id") != 1 || strings.Contains(lines[2], "request_id") {
		t.Fatalf("log:\n%s", buf.String())
	}
}

// fakeBackend records what the tool watcher does.
type fakeBackend struct {
	backend.Backend
	listener backend.Listener
	forgot   int
}

func (f *fakeBackend) SetListener(l backend.Listener) { f.listener = l }
func (f *fakeBackend) ForgetPeer(backend.Peer)        { f.forgot++ }

type nopListener struct{ msgs, states int }

func (n *nopListener) OnMessage(*mcp.Message)       { n.msgs++ }
func (n *nopListener) OnStateChange(backend.Status) { n.states++ }

func TestToolWatch(t *testing.T) {
	calls := 0
	tools := []string{`{"name":"b"}`, `{"name":"a"}`}
	cache := newToolCache(func(ctx context.Context) ([]json.RawMessage, error) {
		calls++
		out := make([]json.RawMessage, len(tools))
		for i, s := range tools {
			out[i] = json.RawMessage(s)
		}
		return out, nil
	})
	if _, known := cache.Tools(); known {
		t.Fatal("known before any list")
	}
	fb := &fakeBackend{}
	w := &watchedBackend{Backend: fb, onToolsChanged: cache.invalidate}
	next := &nopListener{}
	w.SetListener(next)
	fb.listener.OnMessage(&mcp.Message{Method: mcp.NotificationToolsListChanged})
	fb.listener.OnMessage(&mcp.Message{Method: "notifications/message"})
	fb.listener.OnStateChange(backend.Status{State: backend.StateReady})
	if next.msgs != 2 || next.states != 1 {
		t.Fatalf("the gateway's listener saw %d messages, %d states", next.msgs, next.states)
	}
	select {
	case <-cache.kick:
	default:
		t.Fatal("no refresh requested")
	}
	if n, err := cache.refresh(context.Background()); n != 2 || err != nil {
		t.Fatalf("refresh: %d %v", n, err)
	}
	if names, known := cache.Tools(); !known || strings.Join(names, ",") != "a,b" {
		t.Fatalf("tools %v %v", names, known)
	}
	w.ForgetPeer(nil)
	if fb.forgot != 1 {
		t.Fatal("ForgetPeer not forwarded")
	}
}

func TestApplyHot(t *testing.T) {
	old := &config.Config{Port: 1, DrainTimeout: 5, DefaultCreditsPerCall: 1, CustomHeaders: map[string]string{"a": "1"}}
	next := &config.Config{Port: 2, DrainTimeout: 9, DefaultCreditsPerCall: 4, CustomHeaders: map[string]string{"b": "2"}}
	applyHot(old, next)
	if old.Port != 1 || old.DrainTimeout != 5 || old.DefaultCreditsPerCall != 4 || old.CustomHeaders["b"] != "2" {
		t.Fatalf("applyHot: %+v", old)
	}
}
