// Package backend connects paygate to the MCP servers it fronts. A Backend
// is one upstream server (a stdio child process, a Streamable HTTP endpoint
// or a legacy HTTP+SSE endpoint) shared by every client session: it is
// initialized once, and every client request is multiplexed over it with
// its JSON-RPC id rewritten to one the backend owns, so colliding client ids
// can never cross.
//
// Mux holds the transport-independent part (id remapping, pending calls,
// progress-token and cancellation translation, routing of server-to-client
// messages); the subpackages provide transports.
package backend

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/paygate/paygate/internal/mcp"
)

// State is a backend's lifecycle state.
type State string

// Backend states.
const (
	StateStarting   State = "starting"   // first connection and handshake in progress
	StateReady      State = "ready"      // serving calls
	StateRestarting State = "restarting" // connection lost; reconnecting with backoff
	StateDown       State = "down"       // gave up or crash-looping; still retrying slowly
	StateClosed     State = "closed"     // Close was called
)

// Errors a Call may return besides ctx errors. All mean the client got no
// result from the backend, so the gateway refunds.
var (
	// ErrUnavailable: the backend is not ready; the request was not sent.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrConnectionLost: the request was sent but the connection (or child
	// process) died before the response arrived.
	ErrConnectionLost = errors.New("backend connection lost")
	// ErrClosed: the backend was closed.
	ErrClosed = errors.New("backend closed")
)

// Status describes a backend for /health and logs.
type Status struct {
	Name      string    `json:"name"`
	Transport string    `json:"transport"` // "stdio", "streamable-http", "sse"
	State     State     `json:"state"`
	Since     time.Time `json:"since"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"lastError,omitempty"`
	InFlight  int       `json:"inFlight"`
	// CrashLoop is true when the backend failed repeatedly in a short time.
	CrashLoop bool `json:"crashLoop"`
	// Circuit is the circuit breaker's state ("closed", "open",
	// "half_open"); empty when no breaker guards the backend.
	Circuit string `json:"circuit,omitempty"`
}

// InitializeResult is what the backend answered to paygate's initialize.
type InitializeResult struct {
	ProtocolVersion string          `json:"protocolVersion"`
	Capabilities    json.RawMessage `json:"capabilities"`
	ServerInfo      json.RawMessage `json:"serverInfo"`
	Instructions    string          `json:"instructions,omitempty"`
}

// Peer is the client side of a call or a session: where server-to-client
// messages related to it are delivered.
type Peer interface {
	// Deliver sends one server-to-client message, already rewritten to ids
	// the client knows. It must not block for long; it returns an error when
	// the client is gone, and the message is then dropped (or, for a server
	// request, answered upstream with an error).
	Deliver(msg []byte) error
	// SessionID identifies the client's MCP session ("" when stateless).
	SessionID() string
	// Supports reports whether the client declared the capability a
	// server-to-client request needs (e.g. "sampling/createMessage" needs
	// "sampling", "roots/list" needs "roots").
	Supports(method string) bool
}

// Request is one client request to forward.
type Request struct {
	ID     mcp.ID // the client's id; restored on the response
	Method string
	Params json.RawMessage // forwarded untouched except _meta.progressToken
	// Peer receives server messages related to this request: progress for
	// its progress token, and, where the transport can attribute them,
	// logging notifications and server requests (sampling, elicitation,
	// roots). May be nil: related messages are then dropped and server
	// requests refused.
	Peer Peer
}

// Listener receives what the backend sends that belongs to no call:
// list-changed notifications, resource updates, unattributable logging,
// and state changes.
type Listener interface {
	OnMessage(msg *mcp.Message)
	OnStateChange(s Status)
}

// Backend is one upstream MCP server.
//
// Concurrency: every method is safe for concurrent use. Close is idempotent.
type Backend interface {
	// Name is the backend's display name (its prefix in multi-server mode).
	Name() string
	// Start launches the backend and performs the MCP handshake, returning
	// once the backend is ready or ctx ends. When the connection fails later
	// the backend reconnects by itself with exponential backoff.
	Start(ctx context.Context) error
	// Call forwards a request and waits for its response, with the client's
	// id restored. When ctx ends first, the backend sends
	// notifications/cancelled upstream and Call returns ctx.Err(). A
	// JSON-RPC error from the server is a response, not a Go error.
	Call(ctx context.Context, req *Request) (*mcp.Message, error)
	// Notify forwards a client notification. notifications/cancelled and
	// notifications/progress are translated to the backend's ids; a cancel
	// for an unknown request is dropped.
	Notify(ctx context.Context, n *mcp.Message, from Peer) error
	// Reply forwards a client's response to a server-to-client request that
	// was delivered to from. A reply to an unknown id is dropped.
	Reply(ctx context.Context, resp *mcp.Message, from Peer) error
	// Initialize returns the backend's handshake result (nil before the
	// first successful handshake).
	Initialize() *InitializeResult
	// Status reports the backend's state.
	Status() Status
	// SetListener sets where unrelated messages and state changes go.
	// Call before Start.
	SetListener(l Listener)
	// Close stops the backend: an HTTP session is ended with DELETE; a child
	// process gets stdin closed, then SIGTERM, then SIGKILL.
	Close(ctx context.Context) error
}
