package router

import (
	"bytes"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// peer is the client as one backend sees it. Requests the backend sends
// the client (sampling, elicitation, roots) get ids naming the backend, so
// that the client's reply can be routed back and two backends' ids never
// collide; withdrawals of those requests are rewritten the same way.
// Everything else passes through untouched.
type peer struct {
	backend.Peer
	idx int
}

// wrapPeer returns p as backend idx sees it (nil stays nil).
func wrapPeer(p backend.Peer, idx int) backend.Peer {
	if p == nil {
		return nil
	}
	return &peer{Peer: p, idx: idx}
}

var (
	idKey        = []byte(`"id"`)
	cancelMethod = []byte(mcp.NotificationCancelled)
)

// Deliver implements backend.Peer.
func (p *peer) Deliver(raw []byte) error {
	if !bytes.Contains(raw, idKey) && !bytes.Contains(raw, cancelMethod) {
		return p.Peer.Deliver(raw) // progress, logging: nothing to rewrite
	}
	msg, err := mcp.Decode(raw)
	if err != nil {
		return p.Peer.Deliver(raw)
	}
	switch {
	case msg.IsRequest():
		msg.ID = wrapID(p.idx, msg.ID)
		return p.Peer.Deliver(mcp.Encode(msg))
	case msg.Method == mcp.NotificationCancelled:
		if s, e, ok := mcp.MemberSpan(msg.Params, "requestId"); ok {
			msg.Params = mcp.Splice(msg.Params, s, e, wrapID(p.idx, msg.Params[s:e]))
			return p.Peer.Deliver(mcp.Encode(msg))
		}
	}
	return p.Peer.Deliver(raw)
}

// listener receives one backend's messages and state changes for the
// router's own listener (the gateway).
type listener struct {
	r  *Router
	rt *route
}

// OnMessage implements backend.Listener. List changes and resource updates
// need no rewriting: names in listings are prefixed when listed, and URIs
// are global.
func (l listener) OnMessage(msg *mcp.Message) {
	if msg.Method == mcp.NotificationResourcesListChanged {
		l.r.markStale()
	}
	if up := l.r.upstream(); up != nil {
		up.OnMessage(msg)
	}
}

// OnStateChange implements backend.Listener; the status names the backend.
func (l listener) OnStateChange(st backend.Status) {
	if up := l.r.upstream(); up != nil {
		up.OnStateChange(st)
	}
}
