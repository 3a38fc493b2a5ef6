package gateway

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/mcp"
)

// subscriptions counts, per resource URI, the sessions subscribed to it.
// The backend sees one subscription per URI however many clients want it;
// updates fan out to the subscribed sessions only.
type subscriptions struct {
	mu  sync.Mutex
	uri map[string]map[string]struct{} // uri -> session ids
}

func (s *subscriptions) init() { s.uri = make(map[string]map[string]struct{}) }

// add records sess's subscription and reports whether it is the first for uri.
func (s *subscriptions) add(uri, sess string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.uri[uri]
	if m == nil {
		m = make(map[string]struct{})
		s.uri[uri] = m
	}
	m[sess] = struct{}{}
	return len(m) == 1
}

// remove drops sess's subscription and reports whether uri has none left.
func (s *subscriptions) remove(uri, sess string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.uri[uri]
	if m == nil {
		return false
	}
	if _, ok := m[sess]; !ok {
		return false
	}
	delete(m, sess)
	if len(m) == 0 {
		delete(s.uri, uri)
		return true
	}
	return false
}

func (s *subscriptions) sessions(uri string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.uri[uri]))
	for id := range s.uri[uri] {
		out = append(out, id)
	}
	return out
}

func (s *subscriptions) uris() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.uri))
	for u := range s.uri {
		out = append(out, u)
	}
	return out
}

// subscription handles resources/subscribe and resources/unsubscribe.
func (g *Gateway) subscription(ctx context.Context, ex *streamable.Exchange) {
	rules := g.rules.Load()
	if !rules.Policy.IsFree(ex.Msg.Method) {
		if d := g.authenticateOnly(ctx, ex, rules); d != nil {
			ex.ReplyError(gate.ErrorFor(d, g.pricing))
			return
		}
	}
	var p struct {
		URI string `json:"uri"`
	}
	if err := json.Unmarshal(ex.Msg.Params, &p); err != nil || p.URI == "" {
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: "params.uri is required"})
		return
	}
	if ex.Session == nil {
		// Without a session there is nowhere to send updates; let the
		// backend answer as it would.
		g.forward(ctx, ex)
		return
	}
	st := stateOf(ex.Session)
	sid := ex.Session.ID()
	if ex.Msg.Method == mcp.MethodResourcesSubscribe {
		st.addSubscription(p.URI)
		if !g.subs.add(p.URI, sid) {
			ex.ReplyResult(json.RawMessage(`{}`))
			return
		}
		resp, err := g.backend.Call(ctx, &backend.Request{ID: ex.Msg.ID, Method: ex.Msg.Method, Params: ex.Msg.Params, Peer: ex})
		if err != nil || resp.Error != nil {
			st.removeSubscription(p.URI)
			g.subs.remove(p.URI, sid)
			if err != nil {
				ex.ReplyError(g.forwardError(err))
				return
			}
		}
		ex.Reply(mcp.Encode(resp))
		return
	}
	st.removeSubscription(p.URI)
	if !g.subs.remove(p.URI, sid) {
		ex.ReplyResult(json.RawMessage(`{}`))
		return
	}
	resp, err := g.backend.Call(ctx, &backend.Request{ID: ex.Msg.ID, Method: ex.Msg.Method, Params: ex.Msg.Params, Peer: ex})
	if err != nil {
		ex.ReplyError(g.forwardError(err))
		return
	}
	ex.Reply(mcp.Encode(resp))
}

// upstreamSubscription sends a subscribe/unsubscribe of the gateway's own
// (no client waiting for the answer).
func (g *Gateway) upstreamSubscription(ctx context.Context, method, uri string) {
	params, _ := json.Marshal(map[string]string{"uri": uri})
	if _, err := g.backend.Call(ctx, &backend.Request{ID: mcp.StringID("paygate-sub"), Method: method, Params: params}); err != nil {
		g.log.Debug("upstream subscription change failed", "method", method, "uri", uri, "err", err)
	}
}

func (s *sessionState) addSubscription(uri string) {
	s.mu.Lock()
	if s.subs == nil {
		s.subs = make(map[string]struct{})
	}
	s.subs[uri] = struct{}{}
	s.mu.Unlock()
}

func (s *sessionState) removeSubscription(uri string) {
	s.mu.Lock()
	delete(s.subs, uri)
	s.mu.Unlock()
}

func (s *sessionState) dropSubscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.subs))
	for u := range s.subs {
		out = append(out, u)
	}
	s.subs = nil
	return out
}

// listener routes what the backend sends outside any call.
type listener struct{ g *Gateway }

func (l listener) OnMessage(msg *mcp.Message) {
	g := l.g
	raw := mcp.Encode(msg)
	switch msg.Method {
	case mcp.NotificationResourceUpdated:
		var p struct {
			URI string `json:"uri"`
		}
		_ = json.Unmarshal(msg.Params, &p)
		for _, id := range g.subs.sessions(p.URI) {
			if s := g.sessions.get(id); s != nil {
				_ = s.Deliver(raw)
			}
		}
	case mcp.NotificationMessage:
		// Server-wide log lines go to sessions that asked for logs.
		g.sessions.each(func(s *streamable.Session) {
			if stateOf(s).wantsLogs() {
				_ = s.Deliver(raw)
			}
		})
	default:
		// list_changed and anything else not tied to a call: everyone.
		g.sessions.each(func(s *streamable.Session) { _ = s.Deliver(raw) })
	}
}

func (l listener) OnStateChange(st backend.Status) {
	g := l.g
	g.log.Info("backend state", "backend", st.Name, "state", st.State, "restarts", st.Restarts, "error", st.LastError)
	if g.metrics != nil {
		up := 0.0
		if st.State == backend.StateReady {
			up = 1
		}
		g.metrics.BackendUp.WithLabelValues(st.Name).Set(up)
	}
	if st.State == backend.StateReady && st.Restarts > 0 {
		if g.metrics != nil {
			g.metrics.BackendRestart.WithLabelValues(st.Name).Inc()
		}
		// A restarted backend forgot its subscriptions; renew them.
		go func() {
			for _, uri := range g.subs.uris() {
				g.upstreamSubscription(context.Background(), mcp.MethodResourcesSubscribe, uri)
			}
		}()
	}
}
