package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// Roles a route may require besides the admin roles of store.AdminRole.
const (
	RolePublic store.AdminRole = ""       // no credential
	RoleAPIKey store.AdminRole = "apikey" // an API key holder (X-API-Key or Bearer)
	// RoleGateway marks the MCP endpoint: the gateway authenticates each
	// JSON-RPC message itself (free methods need no key), reads its own
	// body with its own limit and answers in JSON-RPC, so the adapter only
	// passes the request through (see runtime.go).
	RoleGateway store.AdminRole = "gateway"
)

// roleRank orders the admin roles: super_admin ⊃ admin ⊃ viewer. Unknown
// roles rank 0 and may use nothing.
func roleRank(r store.AdminRole) int {
	switch r {
	case store.RoleViewer:
		return 1
	case store.RoleAdmin:
		return 2
	case store.RoleSuperAdmin:
		return 3
	}
	return 0
}

// Route is one admin endpoint: the unit of the route table.
type Route struct {
	Method  string          // GET, POST or DELETE
	Pattern string          // a Go 1.22 ServeMux path, e.g. "/keys/revoke"; "/{$}" is the root only
	Role    store.AdminRole // least role required; RolePublic, RoleAPIKey or RoleGateway for the non-admin routes
	Handler func(w http.ResponseWriter, r *http.Request) error
	Doc     Doc
	MaxBody int64 // request body limit when above the API's (POST /admin/restore); 0: the API's
}

// Doc documents a route, enough to generate an OpenAPI 3.1 operation.
type Doc struct {
	Summary     string
	Description string
	Tag         string  // resource group: "keys", "credits", "usage", "admin keys", ...
	Request     any     // zero value of the request body type (a struct), or nil for no body
	Query       []Param // query parameters
	Response    any     // example (or zero value) of the success body; its type is the schema
	Status      int     // success status; 0 means 200
	CSV         bool    // the route also answers text/csv (format=csv)
	// ContentType is the success body's media type when it is not JSON
	// (text/plain, text/html, ...); the body is documented as a string.
	ContentType string
	// Also lists further success media types (text/event-stream),
	// documented as strings.
	Also []string
	// Errors are the error statuses documented; nil means the admin set
	// (errorStatuses).
	Errors []int
}

// Param documents a query (or, with In "header", a header) parameter.
type Param struct {
	Name        string
	In          string // "query" (default) or "header"
	Type        string // JSON schema type: string, integer, boolean
	Description string
	Required    bool
	Enum        []string
}

// Routes returns a copy of the route table.
func (a *API) Routes() []Route { return slices.Clone(a.routes) }

// buildRoutes joins each resource group's routes.
func (a *API) buildRoutes() []Route {
	var rs []Route
	for _, group := range [][]Route{
		a.keyRoutes(),
		a.lifecycleRoutes(),
		a.keyConfigRoutes(),
		a.creditRoutes(),
		a.bulkRoutes(),
		a.exportRoutes(),
		a.usageRoutes(),
		a.limitRoutes(),
		a.adminKeyRoutes(),
		a.auditRoutes(), a.eventRoutes(), a.backupRoutes(), // audit.go, events.go, backup.go
		a.circuitRoutes(), // circuit.go
		a.callRoutes(),    // calls.go
	} {
		rs = append(rs, group...)
	}
	if a.rt != nil {
		rs = append(rs, a.runtimeRoutes()...) // runtime.go: public, operations, docs, /mcp
	}
	return rs
}

// Mount registers every route of the table on mux ("POST /keys", ...),
// plus, for each path, a method-less pattern answering 405 with an Allow
// header, so that the app's main mux renders the same JSON errors.
func (a *API) Mount(mux *http.ServeMux) {
	allow := map[string][]string{}
	var paths []string
	for i := range a.routes {
		rt := &a.routes[i]
		mux.Handle(rt.Method+" "+rt.Pattern, a.adapt(rt, nil))
		if _, ok := allow[rt.Pattern]; !ok {
			paths = append(paths, rt.Pattern)
		}
		allow[rt.Pattern] = append(allow[rt.Pattern], rt.Method)
		if rt.Method == http.MethodGet {
			allow[rt.Pattern] = append(allow[rt.Pattern], http.MethodHead)
		}
	}
	for _, p := range paths {
		methods := allow[p]
		slices.Sort(methods)
		mux.Handle(p, a.adapt(nil, methods))
	}
}

// reqCtx is the per-request state the adapter hands to handlers.
type reqCtx struct {
	requestID string
	route     *Route
	admin     *store.AdminKey // authenticated admin, for admin routes
	apiKey    *store.Key      // authenticated API key, for RoleAPIKey routes
	actor     string          // mask of the credential used
	ignored   []string        // accepted-but-ignored request fields
}

type ctxKey struct{}

// state returns the request's reqCtx (never nil inside a handler).
func state(r *http.Request) *reqCtx {
	if rc, ok := r.Context().Value(ctxKey{}).(*reqCtx); ok {
		return rc
	}
	return &reqCtx{}
}

// meta returns the ledger metadata of a write made by this request.
func (rc *reqCtx) meta(note string) store.Meta {
	return store.Meta{RequestID: rc.requestID, Actor: rc.actor, Note: note}
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// adapt wraps a route's handler with everything every route gets: request
// id, authentication and role check, body limit, error rendering, panic
// recovery and observation. A nil route answers 405 with allow as the Allow
// header, or 404 when allow is empty.
func (a *API) adapt(rt *Route, allow []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		rc := &reqCtx{requestID: requestID(r), route: rt}
		sw.Header().Set("X-Request-Id", rc.requestID)
		pattern := ""
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.Error("admin handler panicked", "path", r.URL.Path, "request_id", rc.requestID, "panic", fmt.Sprint(p))
				if sw.status == 0 {
					a.writeError(sw, r, rc, fmt.Errorf("panic: %v", p))
				}
			}
			if a.observe != nil {
				a.observe(Observation{Method: r.Method, Pattern: pattern, Status: sw.status,
					Duration: time.Since(start), Actor: rc.actor})
			}
		}()
		if rt == nil {
			if len(allow) == 0 {
				a.writeError(sw, r, rc, newError(CodeNotFound, "", "no admin route %s", r.URL.Path))
				return
			}
			sw.Header().Set("Allow", strings.Join(allow, ", "))
			a.writeError(sw, r, rc, newError(CodeMethodNotAllowed, "", "method %s not allowed; use %s",
				r.Method, strings.Join(allow, ", ")))
			return
		}
		pattern = rt.Pattern
		err := a.authorize(r, rt, rc)
		limitBody := rt.Role != RoleGateway // the MCP transport enforces its own limit, in JSON-RPC
		maxBody := max(a.maxBody, rt.MaxBody)
		if err == nil && limitBody && r.ContentLength > maxBody {
			err = &http.MaxBytesError{Limit: maxBody}
		}
		if err == nil {
			if limitBody {
				r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
			}
			err = rt.Handler(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, rc)))
		}
		if err != nil {
			if sw.status != 0 { // the handler already answered (a CSV stream broke)
				a.log.Warn("admin response failed after headers", "path", r.URL.Path, "request_id", rc.requestID, "err", err)
				return
			}
			a.writeError(sw, r, rc, err)
		}
	})
}

// requestID returns the request's X-Request-Id when it is reasonable, or a
// new "req_" + 16 hex id.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if id != "" && len(id) <= 128 && printable(id) {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
