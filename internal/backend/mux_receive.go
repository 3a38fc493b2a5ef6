package backend

import (
	"bytes"
	"encoding/json"

	"github.com/paygate/paygate/internal/mcp"
)

// Receive routes one message the server sent on c: a response to its call,
// progress to the call's peer, a server request to the peer that must
// answer it, anything else to the peer it concerns or to the Listener.
//
// related is the upstream id of the request whose stream carried the
// message when the transport knows it (Streamable HTTP: a POST's SSE
// stream); nil otherwise, and the Mux then attributes by heuristics.
// Receive reports whether raw was a response. raw must not be reused: the
// returned result aliases it.
func (m *Mux) Receive(c Conn, raw []byte, related mcp.ID) (isResponse bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		// Batches were dropped from MCP in 2025-06-18; older servers may
		// still send them.
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			m.log.Warn("malformed batch from server", "err", err)
			return false
		}
		for _, e := range elems {
			if m.Receive(c, e, related) {
				isResponse = true
			}
		}
		return isResponse
	}
	msg, err := mcp.Decode(raw)
	if err != nil {
		m.log.Warn("malformed message from server", "err", err)
		return false
	}
	switch {
	case msg.IsResponse():
		m.onResponse(c, msg)
		return true
	case msg.IsNotification():
		m.onNotification(c, raw, msg, related)
	default:
		m.onServerRequest(c, msg, related)
	}
	return false
}

func (m *Mux) onResponse(c Conn, msg *mcp.Message) {
	id, ok := parseUpstreamID(msg.ID)
	if !ok {
		m.log.Warn("response with an id paygate never sent", "id", msg.ID.String())
		return
	}
	m.mu.Lock()
	p := m.pending[id]
	if p == nil || p.conn != c {
		m.mu.Unlock()
		// Normal after a cancel: the server answered anyway.
		m.log.Debug("dropping response to a request no longer pending", "id", id)
		return
	}
	m.removeLocked(id, p)
	m.mu.Unlock()
	msg.ID = p.clientID
	p.done <- result{msg: msg}
}

func (m *Mux) onNotification(c Conn, raw []byte, msg *mcp.Message, related mcp.ID) {
	switch msg.Method {
	case mcp.NotificationProgress:
		m.onProgress(msg)
		return
	case mcp.NotificationCancelled:
		m.onServerCancelled(msg)
		return
	case mcp.NotificationToolsListChanged, mcp.NotificationPromptsListChanged,
		mcp.NotificationResourcesListChanged, mcp.NotificationResourceUpdated:
		// Backend-wide news: every session may care, not just one caller.
		m.toListener(msg)
		return
	}
	if peer, _ := m.attribute(c, related, ""); peer != nil {
		if err := peer.Deliver(raw); err != nil {
			m.log.Debug("notification not delivered", "method", msg.Method, "err", err)
		}
		return
	}
	m.toListener(msg)
}

// onProgress restores the client's token and delivers to the call's peer.
func (m *Mux) onProgress(msg *mcp.Message) {
	s, e, ok := mcp.MemberSpan(msg.Params, "progressToken")
	if !ok {
		return
	}
	m.mu.Lock()
	p := m.byToken[string(msg.Params[s:e])]
	var peer Peer
	var orig json.RawMessage
	if p != nil {
		peer, orig = p.peer, p.origToken
	}
	m.mu.Unlock()
	if peer == nil {
		return // the call ended, or nobody to tell
	}
	params := mcp.Splice(msg.Params, s, e, orig)
	if err := peer.Deliver(mcp.AppendRequest(nil, nil, mcp.NotificationProgress, params)); err != nil {
		m.log.Debug("progress not delivered", "err", err)
	}
}

// onServerCancelled relays the server withdrawing one of its own requests
// to the peer it was delivered to, under the id that peer knows.
func (m *Mux) onServerCancelled(msg *mcp.Message) {
	s, e, ok := mcp.MemberSpan(msg.Params, "requestId")
	if !ok {
		return
	}
	m.mu.Lock()
	key, found := m.srvByUp[string(msg.Params[s:e])]
	var sr *serverRequest
	if found {
		sr = m.srvReqs[key]
		m.removeServerLocked(key, sr)
	}
	m.mu.Unlock()
	if sr == nil {
		return
	}
	params := mcp.Splice(msg.Params, s, e, []byte(key))
	_ = sr.peer.Deliver(mcp.AppendRequest(nil, nil, mcp.NotificationCancelled, params))
}

// onServerRequest delivers a server-to-client request to the peer that
// must answer it, under a client-facing id, or refuses it upstream.
func (m *Mux) onServerRequest(c Conn, msg *mcp.Message, related mcp.ID) {
	if msg.Method == mcp.MethodPing {
		// Liveness of the gateway itself; no client is involved.
		go m.sendDetached(c, Outgoing{Body: mcp.AppendResult(nil, msg.ID, nil)})
		return
	}
	peer, code := m.attribute(c, related, msg.Method)
	if peer == nil {
		text := "no client to relay " + msg.Method + " to"
		if code == mcp.CodeMethodNotFound {
			text = "client does not support " + msg.Method
		}
		go m.replyError(c, msg.ID, code, text)
		return
	}
	cid := m.newServerID()
	sr := &serverRequest{upID: msg.ID, peer: peer, conn: c, method: msg.Method}
	m.mu.Lock()
	m.srvReqs[string(cid)] = sr
	m.srvByUp[string(msg.ID)] = string(cid)
	m.mu.Unlock()
	if err := peer.Deliver(mcp.AppendRequest(nil, cid, msg.Method, msg.Params)); err != nil {
		m.mu.Lock()
		if m.srvReqs[string(cid)] == sr {
			m.removeServerLocked(string(cid), sr)
		}
		m.mu.Unlock()
		go m.replyError(c, msg.ID, mcp.CodeInternalError, "client unreachable: "+err.Error())
	}
}

// attribute finds the peer a server message concerns. With a related
// request id, it is that call's peer. Without one, it is the only distinct
// peer with a call in flight on c (for a request: the only one that
// supports method). For a request it also returns the JSON-RPC code to
// refuse with when there is none: -32601 when clients are there but none
// supports the method, -32603 otherwise.
func (m *Mux) attribute(c Conn, related mcp.ID, method string) (Peer, int64) {
	m.mu.Lock()
	if related.IsValid() {
		var peer Peer
		if id, ok := parseUpstreamID(related); ok {
			if p := m.pending[id]; p != nil {
				peer = p.peer
			}
		}
		m.mu.Unlock()
		switch {
		case peer == nil:
			return nil, mcp.CodeInternalError
		case method != "" && !peer.Supports(method):
			return nil, mcp.CodeMethodNotFound
		}
		return peer, 0
	}
	var peers []Peer
	for _, p := range m.pending {
		if p.internal || p.peer == nil || p.conn != c || containsPeer(peers, p.peer) {
			continue
		}
		peers = append(peers, p.peer)
	}
	m.mu.Unlock()
	// Supports is the gateway's code: called without m.mu held.
	var found Peer
	n := 0
	for _, p := range peers {
		if method == "" || p.Supports(method) {
			found = p
			n++
		}
	}
	switch {
	case n == 1:
		return found, 0
	case n == 0 && len(peers) > 0 && method != "":
		return nil, mcp.CodeMethodNotFound
	}
	return nil, mcp.CodeInternalError
}

func containsPeer(ps []Peer, p Peer) bool {
	for _, q := range ps {
		if samePeer(q, p) {
			return true
		}
	}
	return false
}

func (m *Mux) toListener(msg *mcp.Message) {
	m.mu.Lock()
	l := m.listener
	m.mu.Unlock()
	if l != nil {
		l.OnMessage(msg)
	}
}
