// Package gateway is paygate's MCP front door: it receives the JSON-RPC
// messages clients send to /mcp (through the streamable transport), runs
// every gated call through one pipeline — decode → authenticate → policy →
// check → charge → forward → settle → record — and routes what the backend
// sends back to the right client session.
package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/cache"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/metrics"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/toolalias"
)

// Rules is the hot-reloadable part of the gateway: the pricing and limit
// policy and the check chain built from it. It is swapped atomically; calls
// in flight keep the Rules they started with.
type Rules struct {
	Policy *policy.Snapshot
	Chain  *gate.Chain
	// ListAliases adds deprecated copies of aliased tools to tools/list
	// (aliases.go).
	ListAliases bool
}

// Options configures a Gateway.
type Options struct {
	Backend  backend.Backend
	Store    store.Store
	Rules    *Rules
	Limiter  ratelimit.Limiter // for X-RateLimit-* headers on ungated methods; may be nil
	Metrics  *metrics.Metrics  // may be nil
	Logger   *slog.Logger
	ClientIP *ClientIPResolver
	// ServerName overrides the backend's serverInfo.name in initialize
	// results ("" keeps the backend's).
	ServerName string
	// PricingURL is where denials tell clients to look up prices.
	PricingURL string
	// Audit gets every gate decision (audit.go); may be nil.
	Audit Auditor
	Now   func() time.Time
	// Cache stores results of the tools the policy caches (cache.go);
	// nil: no caching whatever the policy says.
	Cache *cache.Cache
	// Aliases are the deprecated tool names (aliases.go); nil: none.
	Aliases *toolalias.Table
	// Discovery hides the backend's tools behind three meta-tools
	// (--discovery dynamic, discovery.go).
	Discovery bool
}

// Gateway implements streamable.Handler.
type Gateway struct {
	backend  backend.Backend
	store    store.Store
	rules    atomic.Pointer[Rules]
	limiter  ratelimit.Limiter
	metrics  *metrics.Metrics
	log      *slog.Logger
	clientIP *ClientIPResolver
	name     string
	pricing  string
	audit    Auditor
	now      func() time.Time

	cache     *cache.Cache     // nil: no response cache
	aliases   *toolalias.Table // never nil; usually empty
	discovery bool             // dynamic discovery: tools/list shows the meta-tools

	sessions sessionSet
	subs     subscriptions
	inflight atomic.Int64
	// maintenance, when non-nil, holds the message /mcp answers with.
	maintenance atomic.Pointer[string]
}

var _ streamable.Handler = (*Gateway)(nil)

// New creates a Gateway. It registers itself as the backend's listener.
func New(o Options) *Gateway {
	g := &Gateway{
		backend:  o.Backend,
		store:    o.Store,
		limiter:  o.Limiter,
		metrics:  o.Metrics,
		log:      o.Logger,
		clientIP: o.ClientIP,
		name:     o.ServerName,
		pricing:  o.PricingURL,
		audit:    o.Audit,
		now:      o.Now,

		cache:     o.Cache,
		aliases:   o.Aliases,
		discovery: o.Discovery,
	}
	if g.aliases == nil {
		g.aliases = &toolalias.Table{}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.clientIP == nil {
		g.clientIP = &ClientIPResolver{}
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.pricing == "" {
		g.pricing = "/pricing"
	}
	g.rules.Store(o.Rules)
	g.subs.init()
	g.sessions.init()
	o.Backend.SetListener(listener{g})
	return g
}

// SetRules swaps the pricing and limit policy (config reload).
func (g *Gateway) SetRules(r *Rules) { g.rules.Store(r) }

// Rules returns the current policy and chain.
func (g *Gateway) Rules() *Rules { return g.rules.Load() }

// InFlight reports how many MCP requests are being processed.
func (g *Gateway) InFlight() int64 { return g.inflight.Load() }

// HandleRequest implements streamable.Handler.
func (g *Gateway) HandleRequest(ctx context.Context, ex *streamable.Exchange) {
	g.inflight.Add(1)
	defer g.inflight.Add(-1)
	if g.metrics != nil {
		g.metrics.InFlight.Inc()
		defer g.metrics.InFlight.Dec()
	}
	if ex.Session != nil {
		g.sessions.add(ex.Session)
		// Track the request so a notifications/cancelled from the client
		// can stop it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		st := stateOf(ex.Session)
		key := string(ex.Msg.ID)
		st.track(key, cancel)
		defer st.untrack(key)
		defer cancel()
	}

	switch ex.Msg.Method {
	case mcp.MethodInitialize:
		g.initialize(ctx, ex)
	case mcp.MethodPing:
		ex.ReplyResult(json.RawMessage(`{}`))
	case mcp.MethodServerDiscover:
		// The 2026-07-28 stateless discovery is not offered yet; clients
		// fall back to initialize on method-not-found.
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeMethodNotFound, Message: "Method not found: server/discover"})
	case mcp.MethodToolsCall:
		g.toolsCall(ctx, ex)
	case mcp.MethodToolsCallBatch:
		g.toolsCallBatch(ctx, ex)
	case mcp.MethodToolsList:
		g.toolsList(ctx, ex)
	case mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsubscribe:
		g.subscription(ctx, ex)
	default:
		g.forward(ctx, ex)
	}
}

// HandleNotification implements streamable.Handler.
func (g *Gateway) HandleNotification(ctx context.Context, sess *streamable.Session, r *http.Request, msg *mcp.Message) {
	switch msg.Method {
	case mcp.NotificationInitialized:
		// paygate initialized the backend itself; the client's
		// acknowledgement of its own handshake stops here.
		return
	case mcp.NotificationCancelled:
		if sess != nil {
			var p struct {
				RequestID json.RawMessage `json:"requestId"`
			}
			if json.Unmarshal(msg.Params, &p) == nil && len(p.RequestID) > 0 {
				stateOf(sess).cancel(string(p.RequestID))
			}
		}
		return
	}
	var from backend.Peer
	if sess != nil {
		from = sess
	}
	if err := g.backend.Notify(ctx, msg, from); err != nil {
		g.log.Debug("notification not forwarded", "method", msg.Method, "err", err)
	}
}

// HandleResponse implements streamable.Handler: a client's answer to a
// server-to-client request (sampling, elicitation, roots).
func (g *Gateway) HandleResponse(ctx context.Context, sess *streamable.Session, r *http.Request, msg *mcp.Message) {
	var from backend.Peer
	if sess != nil {
		from = sess
	}
	if err := g.backend.Reply(ctx, msg, from); err != nil {
		g.log.Debug("client response not forwarded", "id", msg.ID.String(), "err", err)
	}
}

// SessionClosed implements streamable.Handler.
func (g *Gateway) SessionClosed(sess *streamable.Session) {
	g.sessions.remove(sess)
	st := stateOf(sess)
	for _, uri := range st.dropSubscriptions() {
		if g.subs.remove(uri, sess.ID()) {
			g.upstreamSubscription(context.Background(), mcp.MethodResourcesUnsubscribe, uri)
		}
	}
	if f, ok := g.backend.(backend.PeerForgetter); ok {
		f.ForgetPeer(sess)
	}
}

// initialize answers the client's handshake from the backend's own
// handshake result: paygate initialized the backend once at startup and
// presents its capabilities to every client.
func (g *Gateway) initialize(ctx context.Context, ex *streamable.Exchange) {
	info := g.backend.Initialize()
	if info == nil {
		st := g.backend.Status()
		ex.ReplyError(backendUnavailable(st))
		return
	}
	version := mcp.LatestVersion
	if ex.Session != nil {
		version = ex.Session.ProtocolVersion()
	} else {
		var p struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		_ = json.Unmarshal(ex.Msg.Params, &p)
		version = mcp.NegotiateVersion(p.ProtocolVersion)
	}
	serverInfo := info.ServerInfo
	if g.name != "" {
		var si map[string]json.RawMessage
		if json.Unmarshal(serverInfo, &si) != nil || si == nil {
			si = map[string]json.RawMessage{}
		}
		si["name"], _ = json.Marshal(g.name)
		if _, ok := si["version"]; !ok {
			si["version"] = json.RawMessage(`"1.0.0"`)
		}
		serverInfo, _ = json.Marshal(si)
	}
	caps := info.Capabilities
	if len(caps) == 0 {
		caps = json.RawMessage(`{}`)
	}
	res := struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      json.RawMessage `json:"serverInfo"`
		Instructions    string          `json:"instructions,omitempty"`
	}{version, caps, serverInfo, info.Instructions}
	b, _ := json.Marshal(res)
	ex.ReplyResult(b)
}

// forward sends a request the gateway does not interpret to the backend.
// Methods outside the free list need a valid key but are not charged.
func (g *Gateway) forward(ctx context.Context, ex *streamable.Exchange) {
	rules := g.rules.Load()
	if !rules.Policy.IsFree(ex.Msg.Method) {
		if d := g.authenticateOnly(ctx, ex, rules); d != nil {
			ex.ReplyError(gate.ErrorFor(d, g.pricing))
			return
		}
	}
	if ex.Msg.Method == mcp.MethodLoggingSetLevel && ex.Session != nil {
		stateOf(ex.Session).setLogOptIn()
	}
	resp, err := g.backend.Call(ctx, &backend.Request{ID: ex.Msg.ID, Method: ex.Msg.Method, Params: ex.Msg.Params, Peer: ex})
	if err != nil {
		ex.ReplyError(g.forwardError(err))
		return
	}
	ex.Reply(mcp.Encode(resp))
}

// sessionSet tracks open sessions for broadcasts.
type sessionSet struct {
	mu sync.RWMutex
	m  map[string]*streamable.Session
}

func (s *sessionSet) init() { s.m = make(map[string]*streamable.Session) }

func (s *sessionSet) add(sess *streamable.Session) {
	id := sess.ID()
	s.mu.RLock()
	_, ok := s.m[id]
	s.mu.RUnlock()
	if ok {
		return
	}
	s.mu.Lock()
	s.m[id] = sess
	s.mu.Unlock()
}

func (s *sessionSet) remove(sess *streamable.Session) {
	s.mu.Lock()
	delete(s.m, sess.ID())
	s.mu.Unlock()
}

func (s *sessionSet) get(id string) *streamable.Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[id]
}

func (s *sessionSet) each(fn func(*streamable.Session)) {
	s.mu.RLock()
	list := make([]*streamable.Session, 0, len(s.m))
	for _, v := range s.m {
		list = append(list, v)
	}
	s.mu.RUnlock()
	for _, v := range list {
		fn(v)
	}
}

// sessionState is the gateway's per-session bookkeeping, kept in the
// session's value slot.
type sessionState struct {
	mu       sync.Mutex
	inflight map[string]context.CancelFunc
	subs     map[string]struct{}
	logOptIn bool
}

func stateOf(sess *streamable.Session) *sessionState {
	if st, ok := sess.Value().(*sessionState); ok {
		return st
	}
	return sess.ValueOrStore(&sessionState{}).(*sessionState)
}

func (s *sessionState) track(id string, cancel context.CancelFunc) {
	s.mu.Lock()
	if s.inflight == nil {
		s.inflight = make(map[string]context.CancelFunc)
	}
	s.inflight[id] = cancel
	s.mu.Unlock()
}

func (s *sessionState) untrack(id string) {
	s.mu.Lock()
	delete(s.inflight, id)
	s.mu.Unlock()
}

func (s *sessionState) cancel(id string) {
	s.mu.Lock()
	c := s.inflight[id]
	s.mu.Unlock()
	if c != nil {
		c()
	}
}

func (s *sessionState) setLogOptIn() {
	s.mu.Lock()
	s.logOptIn = true
	s.mu.Unlock()
}

func (s *sessionState) wantsLogs() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logOptIn
}
