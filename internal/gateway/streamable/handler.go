// Package streamable implements the server side of MCP's Streamable HTTP
// transport (revisions 2025-03-26, 2025-06-18 and 2025-11-25) on one
// endpoint: POST carries client messages, GET opens the server-to-client
// SSE stream, DELETE ends a session. It owns the transport mechanics (HTTP
// validation, sessions, SSE framing, event ids and resumption, Origin/Host
// checks) and knows nothing about billing: every JSON-RPC message is handed
// to a Handler, which decides what to answer.
package streamable

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/paygate/paygate/internal/mcp"
)

// Handler receives the messages clients POST to the endpoint.
type Handler interface {
	// HandleRequest answers one JSON-RPC request. It must call ex.Reply
	// exactly once (also when ctx ends). For "initialize" the transport has
	// already created the session (ex.Session) and recorded the negotiated
	// version and client capabilities on it; the handler writes the
	// InitializeResult.
	HandleRequest(ctx context.Context, ex *Exchange)
	// HandleNotification processes a client notification (never answered).
	// sess is nil for stateless requests.
	HandleNotification(ctx context.Context, sess *Session, r *http.Request, msg *mcp.Message)
	// HandleResponse processes a client's response to a server-to-client
	// request that was delivered to it.
	HandleResponse(ctx context.Context, sess *Session, r *http.Request, msg *mcp.Message)
	// SessionClosed is called once when a session ends (DELETE, idle expiry,
	// eviction or shutdown).
	SessionClosed(sess *Session)
}

// Exchange is one JSON-RPC request received on the endpoint together with
// the means to answer it. It also serves as the backend.Peer of the call:
// server messages related to the request are delivered through it.
type Exchange struct {
	Msg     *mcp.Message
	Session *Session      // nil for a stateless request
	Request *http.Request // the HTTP request it arrived in (read-only)
	// Header holds response headers the handler wants on the HTTP response
	// (X-Credits-Remaining, X-RateLimit-*). Headers set after the response
	// has started streaming are dropped; the transport starts streaming only
	// when the first related message is delivered or at Reply. The handler
	// must not touch Header after Reply: the transport takes it over.
	Header http.Header

	// Fields below are owned by the transport.
	impl exchangeImpl
}

// exchangeImpl is the transport's side of an Exchange.
type exchangeImpl interface {
	reply(msg []byte)
	deliver(msg []byte) error
	supports(method string) bool
}

// Reply sends the response to the request. The transport writes it as the
// JSON body or as the final SSE event of the POST's stream. Only the first
// call has an effect.
func (e *Exchange) Reply(msg []byte) { e.impl.reply(msg) }

// ReplyResult is a shorthand for Reply(AppendResult(...)).
func (e *Exchange) ReplyResult(result json.RawMessage) {
	e.Reply(mcp.AppendResult(nil, e.Msg.ID, result))
}

// ReplyError is a shorthand for Reply(AppendError(...)).
func (e *Exchange) ReplyError(err *mcp.WireError) { e.Reply(mcp.AppendError(nil, e.Msg.ID, err)) }

// Deliver sends a server-to-client message related to this request: on the
// POST's SSE stream when the client accepts text/event-stream (switching
// the response to SSE if it has not started), otherwise on the session's
// GET stream. It reports an error when neither is possible.
// Deliver implements backend.Peer.
func (e *Exchange) Deliver(msg []byte) error { return e.impl.deliver(msg) }

// SessionID implements backend.Peer.
func (e *Exchange) SessionID() string {
	if e.Session == nil {
		return ""
	}
	return e.Session.ID()
}

// Supports implements backend.Peer: whether the client declared the
// capability that a server-to-client request method needs.
func (e *Exchange) Supports(method string) bool { return e.impl.supports(method) }
