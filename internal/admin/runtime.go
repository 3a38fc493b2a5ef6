package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paygate/paygate/internal/backend"
)

// Runtime connects the routes that describe and steer the running gateway
// to the app that owns it: the public probe and discovery endpoints
// (public.go), maintenance and config reload (ops.go), the OpenAPI
// document and its viewer (docs.go), and the MCP endpoint itself. The
// admin package never imports the gateway; the app fills these hooks.
//
// Every hook may be nil; withDefaults gives it a harmless default, so a
// test can set only what it exercises.
type Runtime struct {
	// Name is the server's display name; Version is paygate's version.
	Name, Version string
	// Started is when the gateway started, for uptime.
	Started time.Time
	// Status reports the live state /health and /ready read.
	Status func() RuntimeStatus
	// Server describes the backend the gateway fronts.
	Server func() ServerInfo
	// Tools returns the tool names the backend listed last, and whether a
	// list was ever received.
	Tools func() (names []string, known bool)
	// MCP serves the MCP endpoint (POST, GET and DELETE /mcp).
	MCP http.Handler
	// Metrics serves the Prometheus text exposition.
	Metrics http.Handler
	// Maintenance returns the maintenance message, nil when off;
	// SetMaintenance switches maintenance on (non-nil) or off (nil).
	Maintenance    func() *string
	SetMaintenance func(msg *string)
	// Reload re-reads the config file the gateway was started with and
	// swaps in its hot-reloadable settings. It returns ErrNoConfigFile
	// when there is no such file; any other error means the file was
	// refused and nothing changed.
	Reload func() (ReloadResult, error)
	// ConfigFile is the file Reload reads ("" without --config).
	ConfigFile string
	// ClientIP resolves a request's client address, honouring trusted
	// proxies' X-Forwarded-For.
	ClientIP func(*http.Request) netip.Addr
	// PublicRateLimitPerMin caps requests per client address to the
	// public discovery endpoints; 0 means no limit.
	PublicRateLimitPerMin int64
	// Features lists optional features and whether they are on (/info).
	Features map[string]bool
}

// RuntimeStatus is the gateway's live state.
type RuntimeStatus struct {
	InFlight int64            // MCP requests being processed
	Draining bool             // shutting down: new MCP requests are refused
	Backends []backend.Status // one per backend
}

// ServerInfo describes the backend the gateway fronts.
type ServerInfo struct {
	Transport       string          // "stdio", "streamable-http", "sse"
	ProtocolVersion string          // negotiated with the backend; "" before its handshake
	ServerInfo      json.RawMessage // the backend's serverInfo; nil before its handshake
	Capabilities    json.RawMessage // the backend's capabilities
}

// ReloadResult is what a config reload applied.
type ReloadResult struct {
	Changed  []string // hot keys swapped in
	Skipped  []string // keys that changed but need a restart
	Warnings []string
}

// ErrNoConfigFile is returned by Runtime.Reload when the gateway was
// started without a config file.
var ErrNoConfigFile = errors.New("the gateway was started without --config; there is no file to reload")

// withDefaults returns a copy of rt with every nil hook replaced by a
// harmless default; nil stays nil.
func (rt *Runtime) withDefaults() *Runtime {
	if rt == nil {
		return nil
	}
	c := *rt
	if c.Started.IsZero() {
		c.Started = time.Now()
	}
	if c.Status == nil {
		c.Status = func() RuntimeStatus { return RuntimeStatus{} }
	}
	if c.Server == nil {
		c.Server = func() ServerInfo { return ServerInfo{} }
	}
	if c.Tools == nil {
		c.Tools = func() ([]string, bool) { return nil, false }
	}
	if c.MCP == nil {
		c.MCP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "no MCP endpoint", Code: CodeUnavailable})
		})
	}
	if c.Metrics == nil {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeText(w, http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", nil)
		})
	}
	if c.Maintenance == nil || c.SetMaintenance == nil {
		var msg atomic.Pointer[string]
		c.Maintenance, c.SetMaintenance = msg.Load, msg.Store
	}
	if c.Reload == nil {
		c.Reload = func() (ReloadResult, error) { return ReloadResult{}, ErrNoConfigFile }
	}
	if c.ClientIP == nil {
		c.ClientIP = func(r *http.Request) netip.Addr {
			ap, err := netip.ParseAddrPort(r.RemoteAddr)
			if err != nil {
				return netip.Addr{}
			}
			return ap.Addr().Unmap()
		}
	}
	return &c
}

// runtimeState is the runtime routes' own state.
type runtimeState struct {
	// since is when maintenance was last switched on.
	since atomic.Pointer[time.Time]
	// maintMu serializes maintenance switches, so since and the
	// gateway's flag change together.
	maintMu sync.Mutex

	openapiOnce sync.Once
	openapi     []byte // the OpenAPI document: the route table never changes
}

// runtimeRoutes joins the route groups that need a Runtime. Public
// discovery routes get the per-address limit here, in one place.
func (a *API) runtimeRoutes() []Route {
	var rs []Route
	for _, group := range [][]Route{
		a.publicRoutes(),
		a.docsRoutes(),
		a.opsRoutes(),
		a.mcpRoutes(),
	} {
		rs = append(rs, group...)
	}
	return rs
}

// jsonrpcMessage documents what POST /mcp carries: one JSON-RPC message
// (or, for protocol revision 2025-03-26, an array of them).
type jsonrpcMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// mcpRoutes puts the MCP endpoint in the route table, so the mux, the
// metrics labels and the OpenAPI document all know it. The gateway
// authenticates per JSON-RPC method; the adapter only passes through.
func (a *API) mcpRoutes() []Route {
	session := Param{Name: "Mcp-Session-Id", In: "header", Type: "string",
		Description: "session id from the initialize response (stateful clients)"}
	version := Param{Name: "MCP-Protocol-Version", In: "header", Type: "string",
		Description: "negotiated protocol revision, e.g. 2025-11-25"}
	mcpErrors := []int{400, 403, 404, 405, 413, 503}
	return []Route{
		{Method: "POST", Pattern: "/mcp", Role: RoleGateway, Handler: a.serveMCP, Doc: Doc{
			Tag: "mcp", Summary: "Send JSON-RPC messages (Streamable HTTP transport)",
			Description: "One JSON-RPC message per request. tools/call and tools/call_batch are priced, " +
				"checked and charged; methods outside the free list need a key (X-API-Key or Authorization: Bearer). " +
				"The answer is JSON, or an SSE stream when the client accepts text/event-stream. " +
				"Denials are JSON-RPC errors -32402 with data.reason. 503 while draining or in maintenance.",
			Query:    []Param{session, version, {Name: "Accept", In: "header", Type: "string", Description: "application/json, text/event-stream"}},
			Request:  jsonrpcMessage{},
			Response: jsonrpcMessage{},
			Also:     []string{"text/event-stream"},
			Errors:   mcpErrors,
		}},
		{Method: "GET", Pattern: "/mcp", Role: RoleGateway, Handler: a.serveMCP, Doc: Doc{
			Tag: "mcp", Summary: "Open the session's server-to-client SSE stream",
			Description: "Requires Mcp-Session-Id. Carries list-changed notifications, resource updates and server requests. " +
				"Last-Event-ID resumes a stream.",
			Query:       []Param{session, version, {Name: "Last-Event-ID", In: "header", Type: "string"}},
			Response:    "",
			ContentType: "text/event-stream",
			Errors:      mcpErrors,
		}},
		{Method: "DELETE", Pattern: "/mcp", Role: RoleGateway, Handler: a.serveMCP, Doc: Doc{
			Tag: "mcp", Summary: "End an MCP session",
			Query:    []Param{session},
			Response: "",
			Status:   http.StatusNoContent,
			Errors:   mcpErrors,
		}},
	}
}

func (a *API) serveMCP(w http.ResponseWriter, r *http.Request) error {
	a.rt.MCP.ServeHTTP(w, r)
	return nil
}

// pingStore reports whether the store can serve, within a short bound.
func (a *API) pingStore(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return a.st.Ping(ctx)
}
