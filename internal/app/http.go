package app

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/metrics"
)

// httpPolicy is the hot-reloadable part of the HTTP layer: CORS and the
// operator's custom headers. The middleware reads the current one per
// request; a config reload swaps in a new one (App.Reload).
type httpPolicy struct {
	cors    corsPolicy
	headers [][2]string // canonical name, value; built-in headers win
}

// builtinHeaders are set by the middleware itself; custom headers never
// override them.
var builtinHeaders = []string{"X-Request-Id", "X-Paygate-Version"}

func newHTTPPolicy(cfg *config.Config) *httpPolicy {
	p := &httpPolicy{cors: corsPolicy{origins: []string{"*"}}} // paygate-mcp's default: any origin
	if cfg.CORS != nil {
		p.cors = corsPolicy{origins: slices.Clone(cfg.CORS.Origin), credentials: cfg.CORS.Credentials, maxAge: cfg.CORS.MaxAge}
	}
	names := make([]string, 0, len(cfg.CustomHeaders))
	for k := range cfg.CustomHeaders {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		ck := http.CanonicalHeaderKey(k)
		if slices.Contains(builtinHeaders, ck) || strings.HasPrefix(ck, "Access-Control-") {
			continue
		}
		p.headers = append(p.headers, [2]string{ck, cfg.CustomHeaders[k]})
	}
	return p
}

// middleware wraps every route: request id, version header, custom headers,
// CORS, access log, HTTP metrics and panic recovery.
type middleware struct {
	next     http.Handler
	version  string
	policy   *atomic.Pointer[httpPolicy]
	metrics  *metrics.Metrics
	log      *slog.Logger
	clientIP *gateway.ClientIPResolver
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = gateway.NewRequestID()
	}
	// Downstream handlers (the admin adapter, the gateway) read the id
	// from the header: give them the one this response carries.
	r.Header.Set("X-Request-Id", id)
	pol := m.policy.Load()
	h := w.Header()
	for _, kv := range pol.headers {
		h.Set(kv[0], kv[1])
	}
	h.Set("X-Request-Id", id)
	h.Set("X-PayGate-Version", m.version)
	if pol.cors.apply(w, r) {
		m.finish(r, id, "preflight", http.StatusNoContent, start)
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
		m.finish(r, id, routeLabel(r.Pattern), sw.code, start)
	}()
	m.next.ServeHTTP(sw, r)
}

// finish records one answered request: metrics and a debug access log
// line. Neither carries credentials: only method, route, status, client
// address and the request id.
func (m *middleware) finish(r *http.Request, id, route string, code int, start time.Time) {
	d := time.Since(start)
	if m.metrics != nil {
		m.metrics.HTTPRequests.WithLabelValues(r.Method, route, strconv.Itoa(code)).Inc()
		m.metrics.HTTPDuration.WithLabelValues(route).Observe(d.Seconds())
	}
	if m.log.Enabled(r.Context(), slog.LevelDebug) {
		m.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("route", route),
			slog.Int("status", code), slog.Duration("duration", d),
			slog.String("client", m.clientIP.ClientIP(r).String()))
	}
}

// routeLabel is the metrics label of a request: the route table pattern
// that served it ("POST /keys" is "/keys", the root "/{$}" is "/"), never
// the raw path, so cardinality is bounded by the table. Requests no route
// matched are "other".
func routeLabel(pattern string) string {
	if pattern == "" {
		return "other"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	if p := strings.TrimSuffix(pattern, "{$}"); p != pattern {
		return p
	}
	return pattern
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
	any := slices.Contains(c.origins, "*")
	if !any && !slices.Contains(c.origins, origin) {
		return false
	}
	h := w.Header()
	if any && !c.credentials {
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

// mcpGuard stands in front of the MCP transport. It refuses /mcp with 503
// while draining, and POST and GET while in maintenance (DELETE still ends
// sessions); admin routes stay up. It counts the POST and DELETE requests
// it lets through, so shutdown can wait for them: GET streams are
// long-lived and are ended by the transport's Close instead.
type mcpGuard struct {
	next        http.Handler
	draining    *atomic.Bool
	maintenance func() *string
	active      atomic.Int64
}

func (g *mcpGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	counted := r.Method != http.MethodGet
	if counted {
		// Count first, then look at the flag: shutdown sets the flag, then
		// waits for the count, so no request slips between the two.
		g.active.Add(1)
		defer g.active.Add(-1)
	}
	if g.draining.Load() {
		w.Header().Set("Retry-After", "5")
		writeJSONRPCError(w, http.StatusServiceUnavailable, &mcp.WireError{Code: mcp.CodeServiceUnavailable,
			Message: "server is shutting down; retry on another instance"})
		return
	}
	if msg := g.maintenance(); msg != nil && r.Method != http.MethodDelete {
		w.Header().Set("Retry-After", "60")
		writeJSONRPCError(w, http.StatusServiceUnavailable,
			gate.ErrorFor(&gate.Denial{Reason: gate.MaintenanceMode, Detail: *msg, RetryAfter: time.Minute}, "/pricing"))
		return
	}
	g.next.ServeHTTP(w, r)
}

func writeJSONRPCError(w http.ResponseWriter, code int, e *mcp.WireError) {
	b := mcp.AppendError(nil, nil, e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
