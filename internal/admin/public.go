package admin

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// publicErrors are the error statuses of the rate-limited public routes.
var publicErrors = []int{429, 500}

// publicRoutes are the unauthenticated probe and discovery endpoints.
// Probes (/ready, /metrics) are not rate-limited, so orchestrators and
// scrapers never see 429; the discovery endpoints are, per client address
// (see limited).
func (a *API) publicRoutes() []Route {
	const tag = "public"
	return []Route{
		{Method: "GET", Pattern: "/{$}", Role: RolePublic, Handler: a.limited(a.root), Doc: Doc{
			Tag: tag, Summary: "Endpoint list, generated from the route table", Response: rootResponse{}, Errors: publicErrors,
		}},
		{Method: "GET", Pattern: "/health", Role: RolePublic, Handler: a.limited(a.health), Doc: Doc{
			Tag: tag, Summary: "Liveness: status, uptime, version, in-flight requests, backend and store state",
			Description: "status is healthy, degraded (backend or store not serving), maintenance or draining. " +
				"Answers 503 only while draining (shutting down).",
			Response: healthResponse{}, Errors: []int{429, 503},
		}},
		{Method: "GET", Pattern: "/ready", Role: RolePublic, Handler: a.ready, Doc: Doc{
			Tag: tag, Summary: "Readiness: 503 while draining, in maintenance, or when the backend or the store cannot serve",
			Description: "Not rate-limited: meant for orchestrator probes.",
			Response:    readyResponse{Ready: true}, Errors: []int{503},
		}},
		{Method: "GET", Pattern: "/metrics", Role: RolePublic, Handler: a.metrics, Doc: Doc{
			Tag: tag, Summary: "Prometheus metrics (text exposition format)",
			Description: "Not rate-limited: meant for scrapers.",
			Response:    "", ContentType: "text/plain; version=0.0.4", Errors: []int{},
		}},
		{Method: "GET", Pattern: "/info", Role: RolePublic, Handler: a.limited(a.info), Doc: Doc{
			Tag: tag, Summary: "Server capabilities, features, auth methods, pricing summary, rate limits and endpoints",
			Response: infoResponse{}, Errors: publicErrors,
		}},
		{Method: "GET", Pattern: "/pricing", Role: RolePublic, Handler: a.limited(a.pricing), Doc: Doc{
			Tag: tag, Summary: "Per-tool pricing: every tool the backend lists plus every tool with its own settings",
			Response: pricingResponse{}, Errors: publicErrors,
		}},
		{Method: "GET", Pattern: "/.well-known/mcp-payment", Role: RolePublic, Handler: a.limited(a.paymentMetadata), Doc: Doc{
			Tag: tag, Summary: "Payment metadata (SEP-2007 draft): billing model, default price, auth methods, error codes",
			Response: paymentResponse{}, Errors: publicErrors,
		}},
		{Method: "GET", Pattern: "/.well-known/mcp.json", Role: RolePublic, Handler: a.limited(a.identityCard), Doc: Doc{
			Tag: tag, Summary: "MCP server identity card, for discovery",
			Response: identityCard{}, Errors: publicErrors,
		}},
		{Method: "GET", Pattern: "/robots.txt", Role: RolePublic, Handler: a.limited(a.robots), Doc: Doc{
			Tag: tag, Summary: "Crawler directives: public endpoints allowed, admin and key endpoints disallowed",
			Response: "", ContentType: "text/plain", Errors: publicErrors,
		}},
	}
}

// limited wraps a public handler with the per-client-address limit:
// PublicRateLimitPerMin requests per sliding minute, answered 429 with
// Retry-After beyond it. The address comes from Runtime.ClientIP, which
// believes X-Forwarded-For only from trusted proxies.
func (a *API) limited(h func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		limit := a.rt.PublicRateLimitPerMin
		if limit <= 0 || a.limiter == nil {
			return h(w, r)
		}
		ip := a.rt.ClientIP(r)
		res, err := a.limiter.Allow(r.Context(), "public:"+ip.String(), limit, time.Minute, a.now())
		if err != nil {
			// A limiter fault must not take the probes down with it.
			a.log.Warn("public rate limiter failed; request let through", "request_id", state(r).requestID, "err", err)
			return h(w, r)
		}
		hdr := w.Header()
		hdr.Set("X-RateLimit-Limit", strconv.FormatInt(res.Limit, 10))
		hdr.Set("X-RateLimit-Remaining", strconv.FormatInt(res.Remaining, 10))
		if !res.Allowed {
			secs := int64((res.RetryAfter + time.Second - 1) / time.Second)
			if secs < 1 {
				secs = 1
			}
			hdr.Set("Retry-After", strconv.FormatInt(secs, 10))
			return newError(CodeRateLimited, "", "too many requests from this address (limit %d per minute); retry in %d s", limit, secs)
		}
		return h(w, r)
	}
}

// writeText writes a non-JSON body with its length, so HEAD answers carry
// the same headers as GET.
func writeText(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ── / ──────────────────────────────────────────────────────────────────

type endpoint struct {
	Method  string `json:"method"`
	Path    string `json:"path"`
	Auth    string `json:"auth"` // public, apikey, gateway, viewer, admin, super_admin
	Summary string `json:"summary"`
}

type rootResponse struct {
	Name      string     `json:"name"`
	Version   string     `json:"version"`
	MCP       string     `json:"mcp"`
	Docs      string     `json:"docs"`
	OpenAPI   string     `json:"openapi"`
	Endpoints []endpoint `json:"endpoints"`
}

// authName names a route's role for listings.
func authName(r store.AdminRole) string {
	if r == RolePublic {
		return "public"
	}
	return string(r)
}

func (a *API) root(w http.ResponseWriter, r *http.Request) error {
	eps := make([]endpoint, 0, len(a.routes))
	for _, rt := range a.routes {
		eps = append(eps, endpoint{Method: rt.Method, Path: openAPIPath(rt.Pattern), Auth: authName(rt.Role), Summary: rt.Doc.Summary})
	}
	slices.SortStableFunc(eps, func(x, y endpoint) int {
		return cmp.Or(cmp.Compare(x.Path, y.Path), cmp.Compare(x.Method, y.Method))
	})
	writeJSON(w, http.StatusOK, rootResponse{Name: a.rt.Name, Version: a.rt.Version, MCP: "/mcp",
		Docs: "/docs", OpenAPI: "/openapi.json", Endpoints: eps})
	return nil
}

// ── /health and /ready ─────────────────────────────────────────────────

type healthResponse struct {
	Status      string           `json:"status"` // healthy, degraded, maintenance, draining
	Uptime      int64            `json:"uptime"` // seconds
	Version     string           `json:"version"`
	InFlight    int64            `json:"inflight"`
	Draining    bool             `json:"draining,omitempty"`
	Backends    []backend.Status `json:"backends"`
	Store       string           `json:"store"` // ok, unavailable
	Maintenance *maintenanceView `json:"maintenance,omitempty"`
}

type readyResponse struct {
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
}

// healthReport gathers the live state both probes read.
func (a *API) healthReport(r *http.Request) healthResponse {
	st := a.rt.Status()
	h := healthResponse{
		Status:   "healthy",
		Uptime:   int64(a.now().Sub(a.rt.Started) / time.Second),
		Version:  a.rt.Version,
		InFlight: st.InFlight,
		Backends: st.Backends,
		Store:    "ok",
	}
	if h.Backends == nil {
		h.Backends = []backend.Status{}
	}
	if h.Uptime < 0 {
		h.Uptime = 0
	}
	if err := a.pingStore(r.Context()); err != nil {
		// The cause stays in the log: this endpoint is public.
		a.log.Debug("health: store ping failed", "request_id", state(r).requestID, "err", err)
		h.Store, h.Status = "unavailable", "degraded"
	}
	for _, b := range h.Backends {
		if b.State != backend.StateReady {
			h.Status = "degraded"
		}
	}
	if v := a.maintenanceView(); v.Enabled {
		h.Maintenance, h.Status = &v, "maintenance"
	}
	if st.Draining {
		h.Status, h.Draining = "draining", true
	}
	return h
}

func (a *API) health(w http.ResponseWriter, r *http.Request) error {
	h := a.healthReport(r)
	code := http.StatusOK
	if h.Draining {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
	return nil
}

func (a *API) ready(w http.ResponseWriter, r *http.Request) error {
	h := a.healthReport(r)
	var reasons []string
	if h.Draining {
		reasons = append(reasons, "draining")
	}
	if h.Maintenance != nil {
		reasons = append(reasons, "maintenance")
	}
	for _, b := range h.Backends {
		if b.State != backend.StateReady {
			reasons = append(reasons, "backend "+b.Name+" "+string(b.State))
		}
	}
	if len(h.Backends) == 0 {
		reasons = append(reasons, "no backend")
	}
	if h.Store != "ok" {
		reasons = append(reasons, "store unavailable")
	}
	if len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, readyResponse{Ready: false, Reasons: reasons})
		return nil
	}
	writeJSON(w, http.StatusOK, readyResponse{Ready: true})
	return nil
}

func (a *API) metrics(w http.ResponseWriter, r *http.Request) error {
	a.rt.Metrics.ServeHTTP(w, r)
	return nil
}

// ── /info ──────────────────────────────────────────────────────────────

type infoResponse struct {
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Transport       string            `json:"transport"` // the backend's transport
	ProtocolVersion string            `json:"protocolVersion,omitempty"`
	ServerInfo      json.RawMessage   `json:"serverInfo,omitempty"`   // the backend's
	Capabilities    json.RawMessage   `json:"capabilities,omitempty"` // the backend's
	Auth            []string          `json:"auth"`
	Features        map[string]bool   `json:"features"`
	Pricing         infoPricing       `json:"pricing"`
	RateLimit       infoRateLimit     `json:"rateLimit"`
	Endpoints       map[string]string `json:"endpoints"`
}

type infoPricing struct {
	DefaultCreditsPerCall credits.Credits            `json:"defaultCreditsPerCall"`
	ToolPricing           map[string]policy.ToolInfo `json:"toolPricing"`
	FreeMethods           []string                   `json:"freeMethods"`
}

type infoRateLimit struct {
	GlobalPerMin int64 `json:"globalPerMin"` // tool calls per key per minute; 0: none
	PublicPerMin int64 `json:"publicPerMin"` // public endpoint requests per client address per minute; 0: none
}

// accessRank orders what a route asks for: nothing, then an API key,
// then the admin roles.
func accessRank(r store.AdminRole) int {
	switch r {
	case RolePublic, RoleGateway:
		return 0
	case RoleAPIKey:
		return 1
	}
	return 1 + roleRank(r)
}

// authMethods are the ways an agent presents its API key.
var authMethods = []string{"api_key", "bearer"}

func (a *API) info(w http.ResponseWriter, r *http.Request) error {
	p := a.snapshot()
	srv := a.rt.Server()
	tp := map[string]policy.ToolInfo{}
	for _, t := range p.Pricing() {
		tp[t.Name] = t.ToolInfo
	}
	features := map[string]bool{}
	for k, v := range a.rt.Features {
		features[k] = v
	}
	features["shadowMode"] = p.Shadow()
	features["refundOnFailure"] = p.RefundOnFailure()
	features["maintenance"] = a.rt.Maintenance() != nil
	// Each path with the least credential any of its methods needs.
	least := map[string]store.AdminRole{}
	for _, rt := range a.routes {
		path := openAPIPath(rt.Pattern)
		if cur, ok := least[path]; !ok || accessRank(rt.Role) < accessRank(cur) {
			least[path] = rt.Role
		}
	}
	endpoints := map[string]string{}
	for path, role := range least {
		name := strings.Trim(path, "/")
		if name == "" {
			name = "root"
		}
		switch role {
		case RolePublic, RoleGateway:
			endpoints[name] = path
		default:
			endpoints[name] = path + " (" + string(role) + ")"
		}
	}
	writeJSON(w, http.StatusOK, infoResponse{
		Name: a.rt.Name, Version: a.rt.Version, Transport: srv.Transport, ProtocolVersion: srv.ProtocolVersion,
		ServerInfo: srv.ServerInfo, Capabilities: srv.Capabilities,
		Auth: authMethods, Features: features,
		Pricing:   infoPricing{DefaultCreditsPerCall: p.DefaultPrice(), ToolPricing: tp, FreeMethods: orEmpty(p.FreeMethods())},
		RateLimit: infoRateLimit{GlobalPerMin: p.GlobalRateLimit(), PublicPerMin: a.rt.PublicRateLimitPerMin},
		Endpoints: endpoints,
	})
	return nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ── /pricing ───────────────────────────────────────────────────────────

type pricingServer struct {
	Name                  string          `json:"name"`
	BillingModel          string          `json:"billingModel"`
	DefaultCreditsPerCall credits.Credits `json:"defaultCreditsPerCall"`
	ShadowMode            bool            `json:"shadowMode"`
	RefundOnFailure       bool            `json:"refundOnFailure"`
	FreeMethods           []string        `json:"freeMethods"`
}

type pricedTool struct {
	policy.ToolPrice
	// Listed reports whether the backend's tools/list has the tool (a
	// configured price for a tool it does not list is shown too).
	Listed bool `json:"listed"`
}

type pricingResponse struct {
	Server pricingServer `json:"server"`
	Tools  []pricedTool  `json:"tools"`
	// ToolsKnown is false until the backend's tool list was received:
	// until then only tools with their own settings are listed.
	ToolsKnown bool `json:"toolsKnown"`
}

func (a *API) pricing(w http.ResponseWriter, r *http.Request) error {
	p := a.snapshot()
	names, known := a.rt.Tools()
	listed := map[string]bool{}
	tools := make([]pricedTool, 0, len(names))
	for _, n := range names {
		if listed[n] {
			continue
		}
		listed[n] = true
		tools = append(tools, pricedTool{ToolPrice: policy.ToolPrice{Name: n, ToolInfo: p.ToolInfo(n)}, Listed: true})
	}
	for _, t := range p.Pricing() {
		if !listed[t.Name] {
			tools = append(tools, pricedTool{ToolPrice: t})
		}
	}
	slices.SortFunc(tools, func(x, y pricedTool) int { return cmp.Compare(x.Name, y.Name) })
	writeJSON(w, http.StatusOK, pricingResponse{
		Server: pricingServer{Name: a.rt.Name, BillingModel: "credits", DefaultCreditsPerCall: p.DefaultPrice(),
			ShadowMode: p.Shadow(), RefundOnFailure: p.RefundOnFailure(), FreeMethods: orEmpty(p.FreeMethods())},
		Tools:      tools,
		ToolsKnown: known,
	})
	return nil
}

// ── /.well-known/mcp-payment ───────────────────────────────────────────

type paymentAuth struct {
	Type   string `json:"type"`   // api_key, bearer
	Header string `json:"header"` // where it goes
}

type paymentErrorCode struct {
	Reason     string `json:"reason"`
	Code       int64  `json:"code"`       // JSON-RPC error code
	HTTPStatus int    `json:"httpStatus"` // outside JSON-RPC
}

type paymentResponse struct {
	SpecVersion           string             `json:"specVersion"`
	BillingModel          string             `json:"billingModel"`
	Currency              string             `json:"currency"`
	DefaultCreditsPerCall credits.Credits    `json:"defaultCreditsPerCall"`
	PricingModels         []string           `json:"pricingModels"`
	PricingURL            string             `json:"pricingUrl"`
	BalanceURL            string             `json:"balanceUrl"`
	AuthMethods           []paymentAuth      `json:"authMethods"`
	ErrorCodes            []paymentErrorCode `json:"errorCodes"`
	ShadowMode            bool               `json:"shadowMode"`
	RefundOnFailure       bool               `json:"refundOnFailure"`
}

func (a *API) paymentMetadata(w http.ResponseWriter, r *http.Request) error {
	p := a.snapshot()
	var codes []paymentErrorCode
	for _, reason := range gate.Reasons() {
		codes = append(codes, paymentErrorCode{Reason: string(reason), Code: reason.RPCCode(), HTTPStatus: reason.HTTPStatus()})
	}
	writeJSON(w, http.StatusOK, paymentResponse{
		SpecVersion:           "2007-draft",
		BillingModel:          "credits",
		Currency:              "credits",
		DefaultCreditsPerCall: p.DefaultPrice(),
		PricingModels:         []string{policy.ModelFlat, policy.ModelDynamic},
		PricingURL:            "/pricing",
		BalanceURL:            "/balance",
		AuthMethods:           []paymentAuth{{Type: "api_key", Header: "X-API-Key"}, {Type: "bearer", Header: "Authorization"}},
		ErrorCodes:            codes,
		ShadowMode:            p.Shadow(),
		RefundOnFailure:       p.RefundOnFailure(),
	})
	return nil
}

// ── /.well-known/mcp.json ──────────────────────────────────────────────

type identityTransport struct {
	Type     string `json:"type"` // streamable-http
	Endpoint string `json:"endpoint"`
}

type identityAuth struct {
	Required bool     `json:"required"` // for priced tool calls
	Schemes  []string `json:"schemes"`
	Header   string   `json:"header"`
}

type identityPayment struct {
	Model     string `json:"model"`
	Metadata  string `json:"metadata"`
	Pricing   string `json:"pricing"`
	Balance   string `json:"balance"`
	ErrorCode int64  `json:"errorCode"`
}

// identityCard is the MCP server identity card. URLs are paths relative to
// this server: the Host header is the client's to choose, so absolute URLs
// built from it could point anywhere.
type identityCard struct {
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Description     string            `json:"description"`
	ProtocolVersion string            `json:"protocolVersion,omitempty"`
	ServerInfo      json.RawMessage   `json:"serverInfo,omitempty"`
	Capabilities    json.RawMessage   `json:"capabilities,omitempty"`
	Transport       identityTransport `json:"transport"`
	Authentication  identityAuth      `json:"authentication"`
	Payment         identityPayment   `json:"payment"`
	Documentation   string            `json:"documentation"`
	OpenAPI         string            `json:"openapi"`
	Tools           int               `json:"tools"` // -1 until the backend's list is known
}

func (a *API) identityCard(w http.ResponseWriter, r *http.Request) error {
	srv := a.rt.Server()
	names, known := a.rt.Tools()
	n := len(names)
	if !known {
		n = -1
	}
	writeJSON(w, http.StatusOK, identityCard{
		Name: a.rt.Name, Version: a.rt.Version,
		Description:     "MCP server behind paygate: tool calls are priced in credits and need an API key",
		ProtocolVersion: srv.ProtocolVersion, ServerInfo: srv.ServerInfo, Capabilities: srv.Capabilities,
		Transport:      identityTransport{Type: "streamable-http", Endpoint: "/mcp"},
		Authentication: identityAuth{Required: true, Schemes: authMethods, Header: "X-API-Key"},
		Payment: identityPayment{Model: "credits", Metadata: "/.well-known/mcp-payment", Pricing: "/pricing",
			Balance: "/balance", ErrorCode: gate.InsufficientCredits.RPCCode()},
		Documentation: "/docs", OpenAPI: "/openapi.json", Tools: n,
	})
	return nil
}

// ── /robots.txt ────────────────────────────────────────────────────────

// robots allows the public GET endpoints and disallows everything else,
// both generated from the route table.
func (a *API) robots(w http.ResponseWriter, r *http.Request) error {
	var b strings.Builder
	b.WriteString("User-agent: *\n")
	seen := map[string]bool{}
	var allow, disallow []string
	for _, rt := range a.routes {
		p := openAPIPath(rt.Pattern)
		if seen[p] {
			continue
		}
		seen[p] = true
		if rt.Role == RolePublic && rt.Method == http.MethodGet {
			if p == "/" {
				p = "/$"
			}
			allow = append(allow, p)
		} else {
			disallow = append(disallow, p)
		}
	}
	slices.Sort(allow)
	slices.Sort(disallow)
	for _, p := range allow {
		b.WriteString("Allow: " + p + "\n")
	}
	var kept []string // "/keys" already covers "/keys/usage"
	for _, p := range disallow {
		if !slices.ContainsFunc(kept, func(k string) bool { return strings.HasPrefix(p, k+"/") }) {
			kept = append(kept, p)
			b.WriteString("Disallow: " + p + "\n")
		}
	}
	writeText(w, http.StatusOK, "text/plain; charset=utf-8", []byte(b.String()))
	return nil
}
