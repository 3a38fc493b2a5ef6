package app

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/gateway"
	"github.com/paygate/paygate/internal/metrics"
)

// middleware wraps every route: request id, version header, custom headers,
// CORS, access metrics and panic recovery.
type middleware struct {
	next     http.Handler
	version  string
	headers  map[string]string
	cors     corsPolicy
	metrics  *metrics.Metrics
	log      *slog.Logger
	routeOf  func(*http.Request) string
	draining func() bool
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = gateway.NewRequestID()
	}
	h := w.Header()
	h.Set("X-Request-Id", id)
	h.Set("X-PayGate-Version", m.version)
	for k, v := range m.headers {
		h.Set(k, v)
	}
	if m.cors.apply(w, r) {
		return // preflight answered
	}
	r = r.WithContext(gateway.WithRequestID(r.Context(), id))
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			m.log.Error("panic serving request", "path", r.URL.Path, "request_id", id, "panic", v, "stack", string(debug.Stack()))
			if !sw.wrote {
				http.Error(sw, `{"error":"internal error"}`, http.StatusInternalServerError)
			}
		}
		if m.metrics != nil {
			route := m.routeOf(r)
			m.metrics.HTTPRequests.WithLabelValues(r.Method, route, strconv.Itoa(sw.code)).Inc()
			m.metrics.HTTPDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}
	}()
	m.next.ServeHTTP(sw, r)
}

// validRequestID accepts a propagated id only if it is short printable
// ASCII, so a hostile header cannot inject into logs or responses.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		s.wrote = true
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// corsPolicy answers preflights and sets CORS headers for allowed origins.
type corsPolicy struct {
	origins     []string // "*" allows any
	credentials bool
	maxAge      int64
}

// exposed lists the headers browser clients may read.
const exposed = "X-Request-Id, X-PayGate-Version, X-Credits-Remaining, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Mcp-Session-Id, Retry-After"

func (c corsPolicy) apply(w http.ResponseWriter, r *http.Request) (preflight bool) {
	origin := r.Header.Get("Origin")
	if origin == "" || len(c.origins) == 0 {
		return false
	}
	allowed := slices.Contains(c.origins, "*") || slices.Contains(c.origins, origin)
	if !allowed {
		return false
	}
	h := w.Header()
	if slices.Contains(c.origins, "*") && !c.credentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	if c.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Set("Access-Control-Expose-Headers", exposed)
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS, HEAD")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Accept, X-API-Key, X-Admin-Key, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, X-Request-Id")
		age := c.maxAge
		if age == 0 {
			age = 86400
		}
		h.Set("Access-Control-Max-Age", strconv.FormatInt(age, 10))
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// health is the liveness document of GET /health.
type health struct {
	Status    string           `json:"status"`
	Uptime    int64            `json:"uptime"`
	Version   string           `json:"version"`
	InFlight  int64            `json:"inflight"`
	Draining  bool             `json:"draining,omitempty"`
	Backends  []backend.Status `json:"backends"`
	Store     string           `json:"store"`
	StoreErr  string           `json:"storeError,omitempty"`
	Maintence *string          `json:"maintenance,omitempty"`
}

func (a *App) healthDoc(r *http.Request) (health, bool) {
	st := a.backend.Status()
	h := health{Status: "healthy", Uptime: int64(time.Since(a.started).Seconds()), Version: a.version, InFlight: a.gw.InFlight(), Backends: []backend.Status{st}, Store: "ok", Maintence: a.gw.Maintenance()}
	if err := a.store.Ping(r.Context()); err != nil {
		h.Store, h.StoreErr, h.Status = "unavailable", err.Error(), "degraded"
	}
	if st.State != backend.StateReady {
		h.Status = "degraded"
	}
	if a.draining.Load() {
		h.Status, h.Draining = "draining", true
		return h, false
	}
	return h, true
}

func (a *App) serveHealth(w http.ResponseWriter, r *http.Request) {
	h, ok := a.healthDoc(r)
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

// serveReady is the readiness probe: 503 while draining, in maintenance, or
// when the backend or the store cannot serve.
func (a *App) serveReady(w http.ResponseWriter, r *http.Request) {
	h, ok := a.healthDoc(r)
	reasons := []string{}
	if !ok {
		reasons = append(reasons, "draining")
	}
	if h.Maintence != nil {
		reasons = append(reasons, "maintenance")
	}
	if h.Backends[0].State != backend.StateReady {
		reasons = append(reasons, "backend "+string(h.Backends[0].State))
	}
	if h.Store != "ok" {
		reasons = append(reasons, "store unavailable")
	}
	if len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reasons": reasons})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// mcpGuard answers /mcp with 503 while draining or in maintenance; admin
// routes stay up.
func (a *App) mcpGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.draining.Load() {
			w.Header().Set("Retry-After", "5")
			writeJSONRPCError(w, http.StatusServiceUnavailable, "server is shutting down; retry on another instance")
			return
		}
		if msg := a.gw.Maintenance(); msg != nil {
			w.Header().Set("Retry-After", "60")
			writeJSONRPCError(w, http.StatusServiceUnavailable, "maintenance: "+*msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSONRPCError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32000, "message": msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// routeLabel maps a request to a low-cardinality metrics label.
func routeLabel(patterns map[string]bool) func(*http.Request) string {
	return func(r *http.Request) string {
		p := r.URL.Path
		if patterns[p] || strings.HasPrefix(p, "/.well-known/") {
			return p
		}
		return "other"
	}
}
