package streamable

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/mcp"
)

// Header names of the transport.
const (
	HeaderSessionID       = "Mcp-Session-Id"
	HeaderProtocolVersion = "Mcp-Protocol-Version"
	headerLastEventID     = "Last-Event-ID"
)

// Defaults for zero Options fields.
const (
	DefaultMaxBodyBytes       = 1 << 20
	DefaultSessionIdleTimeout = 30 * time.Minute
	DefaultMaxSessions        = 10000
	DefaultEventBufferSize    = 256
	DefaultKeepAlive          = 25 * time.Second
	DefaultWriteTimeout       = 30 * time.Second
)

// JSON-RPC codes of transport-level errors that internal/mcp does not name.
const (
	// codeSessionNotFound is what the reference SDKs answer with HTTP 404.
	codeSessionNotFound = -32001
)

var (
	// ErrSessionClosed is returned by Deliver on a session that has ended.
	ErrSessionClosed = errors.New("session closed")
	// ErrNoStream is returned by Exchange.Deliver when neither the POST's
	// own SSE stream nor a session stream can carry the message (a
	// stateless request whose client accepts only JSON, or whose response
	// has ended).
	ErrNoStream = errors.New("no stream to the client")
	// errTooManySessions: MaxSessions reached and no session is idle.
	errTooManySessions = errors.New("too many sessions")
)

// Options configures a Server. Zero fields take the defaults above.
type Options struct {
	// BindHost is the host (or host:port) the gateway listens on; it picks
	// the default allowlists (see DefaultAllowlist). Empty: decided per
	// connection from the local address the request arrived on, so a
	// connection to a loopback address always gets the loopback rules.
	BindHost string
	// AllowedHosts and AllowedOrigins replace the defaults of
	// DefaultAllowlist when non-empty.
	AllowedHosts   []string
	AllowedOrigins []string

	// MaxBodyBytes bounds a POST body (413 beyond).
	MaxBodyBytes int64
	// SessionIdleTimeout ends a session after this long without requests.
	// An open GET stream or a request in flight keeps a session alive.
	SessionIdleTimeout time.Duration
	// MaxSessions bounds live sessions. When full, a new initialize evicts
	// the least recently used idle session; when none is idle it gets 503.
	MaxSessions int
	// EventBufferSize is how many events each SSE stream keeps for replay
	// after Last-Event-ID; older ones are dropped (responses on a POST
	// stream are kept until written).
	EventBufferSize int
	// KeepAlive is the interval of SSE comment lines on idle streams.
	KeepAlive time.Duration
	// WriteTimeout bounds each write to an SSE stream; a client that
	// stops reading for this long is disconnected (its events stay
	// buffered for resumption).
	WriteTimeout time.Duration
	// PreferJSON answers a POST whose Accept lists both JSON and SSE with a
	// plain JSON body unless a related server message arrives before the
	// response (then it switches to SSE). Off by default: such requests get
	// an SSE stream, as the MCP SDKs' servers answer them, with event ids
	// that make the response resumable.
	PreferJSON bool

	Logger *slog.Logger
	// Now is the clock for session activity and expiry (tests fake it).
	Now func() time.Time
	// OnSessionCount is called with the number of live sessions whenever it
	// changes. It runs under the session table lock: it must be quick and
	// must not call the Server.
	OnSessionCount func(int)
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.SessionIdleTimeout <= 0 {
		o.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.EventBufferSize <= 0 {
		o.EventBufferSize = DefaultEventBufferSize
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Server serves MCP's Streamable HTTP transport on one endpoint and hands
// every JSON-RPC message to a Handler.
//
// Concurrency: ServeHTTP is called concurrently by net/http; Close may run
// at any time and is idempotent.
type Server struct {
	h    Handler
	opts Options
	log  *slog.Logger

	// Allowlists for connections on loopback and on other addresses (the
	// same one when Options.BindHost is set).
	loopback, open Allowlist

	done    chan struct{} // closed by Close
	workers *workers      // run request handlers

	mu       sync.RWMutex // guards the session table
	sessions map[string]*Session
	closed   bool // no new sessions

	sweeper sync.Once

	activeMu sync.Mutex // guards the fields below
	closing  bool
	active   int           // ServeHTTP calls in progress
	drained  chan struct{} // closed when active drops to 0 while closing
}

// New returns a Server that hands messages to h.
func New(h Handler, opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		h:        h,
		opts:     opts,
		log:      opts.Logger,
		done:     make(chan struct{}),
		sessions: make(map[string]*Session),
	}
	loop, open := DefaultAllowlist("localhost"), DefaultAllowlist("")
	if opts.BindHost != "" {
		loop = DefaultAllowlist(opts.BindHost)
		open = loop
	}
	s.loopback, s.open = override(loop, opts), override(open, opts)
	s.workers = newWorkers(256, s.done)
	return s
}

func override(a Allowlist, o Options) Allowlist {
	if len(o.AllowedHosts) > 0 {
		a.Hosts = o.AllowedHosts
	}
	if len(o.AllowedOrigins) > 0 {
		a.Origins = o.AllowedOrigins
	}
	return a
}

func (s *Server) allowlist(r *http.Request) *Allowlist {
	if s.opts.BindHost == "" {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && !isLoopbackAddr(la) {
			return &s.open
		}
	}
	return &s.loopback
}

// ServeHTTP serves the MCP endpoint: POST carries client messages, GET
// opens the session's server-to-client stream, DELETE ends a session.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Origin and Host first, on every method: nothing else may leak to a
	// page that rebinds its name to this server.
	if reason, ok := s.allowlist(r).check(r); !ok {
		writeError(w, http.StatusForbidden, nil, mcp.CodeInvalidRequest, "forbidden: "+reason)
		return
	}
	if !s.enter() {
		writeError(w, http.StatusServiceUnavailable, nil, mcp.CodeServiceUnavailable, "server is shutting down")
		return
	}
	defer s.leave()
	switch r.Method {
	case http.MethodPost:
		s.servePOST(w, r)
	case http.MethodGet:
		s.serveGET(w, r)
	case http.MethodDelete:
		s.serveDELETE(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, nil, mcp.CodeInvalidRequest, "method "+r.Method+" not allowed")
	}
}

// Close ends every session (calling Handler.SessionClosed), ends open
// streams and in-flight responses, refuses further requests with 503, and
// waits until the ServeHTTP calls in progress have returned or ctx ends.
func (s *Server) Close(ctx context.Context) error {
	s.activeMu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
	}
	var wait chan struct{}
	if s.active > 0 {
		if s.drained == nil {
			s.drained = make(chan struct{})
		}
		wait = s.drained
	}
	s.activeMu.Unlock()

	s.mu.Lock()
	s.closed = true
	all := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	clear(s.sessions)
	if len(all) > 0 && s.opts.OnSessionCount != nil {
		s.opts.OnSessionCount(0)
	}
	s.mu.Unlock()
	for _, sess := range all {
		s.finish(sess)
	}

	if wait == nil {
		return nil
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) enter() bool {
	s.activeMu.Lock()
	defer s.activeMu.Unlock()
	if s.closing {
		return false
	}
	s.active++
	return true
}

func (s *Server) leave() {
	s.activeMu.Lock()
	defer s.activeMu.Unlock()
	s.active--
	if s.active == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

func (s *Server) now() time.Time { return s.opts.Now() }

// writeError answers with an HTTP error status and a JSON-RPC error body.
func writeError(w http.ResponseWriter, status int, id mcp.ID, code int64, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_, _ = w.Write(mcp.AppendError(nil, id, &mcp.WireError{Code: code, Message: msg}))
}
