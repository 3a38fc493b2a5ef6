package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paygate/paygate/internal/mcp"
)

// MuxConfig configures a Mux.
type MuxConfig struct {
	Name      string // the backend's display name
	Transport string // "stdio", "streamable-http", "sse"; reported in Status
	Logger    *slog.Logger
	// ClientName and ClientVersion are paygate's clientInfo in initialize.
	ClientName, ClientVersion string
	// ProtocolVersion is the revision paygate proposes (mcp.LatestVersion).
	ProtocolVersion string
	// CancelTimeout bounds sending notifications/cancelled and error
	// replies upstream (5 s by default), so a stuck backend cannot pile up
	// goroutines.
	CancelTimeout time.Duration
}

// Crash-loop detection: this many connection failures within the window
// mark the backend as crash-looping (state down).
const (
	crashLoopFailures = 5
	crashLoopWindow   = 60 * time.Second
)

// Mux is the transport-independent core of a backend. It owns the upstream
// id space: every client request gets a fresh integer id, so requests from
// any number of clients (all free to use id 1) share one connection without
// their responses crossing. It translates progress tokens and cancellations
// in both directions and routes server-to-client messages to the peer they
// belong to.
//
// Transports give it a Conn (Handshake, Attach), feed it every message the
// server sends (Receive) and report a dead connection (Lost). Everything
// else is the Backend-facing API, which transports forward unchanged.
type Mux struct {
	cfg MuxConfig
	log *slog.Logger

	ids    atomic.Int64 // upstream request ids
	tokens atomic.Int64 // gateway progress tokens
	srvIDs atomic.Int64 // client-facing ids of server-to-client requests

	mu        sync.Mutex
	conn      Conn // the attached connection; nil while not ready
	pending   map[int64]*call
	byToken   map[string]*call          // gateway progress token (JSON text) → call
	srvReqs   map[string]*serverRequest // client-facing id (JSON text) → request
	srvByUp   map[string]string         // server's id (JSON text) → client-facing id
	inFlight  int                       // pending calls that are not paygate's own
	init      *InitializeResult
	listener  Listener
	transport string
	state     State
	since     time.Time
	attached  int // successful Attach calls; restarts = attached-1
	lastErr   string
	failures  []time.Time // connection failures inside crashLoopWindow
	crashLoop bool
	ready     chan struct{} // closed by the first Attach
	readyOnce sync.Once

	emitMu sync.Mutex // keeps OnStateChange calls in order
}

// call is one request waiting for its response.
type call struct {
	clientID  mcp.ID
	peer      Peer
	conn      Conn
	token     string          // gateway progress token as JSON text, "" when none
	origToken json.RawMessage // the client's token, restored on progress
	internal  bool            // paygate's own request (initialize)
	done      chan result     // buffered: the single sender never blocks
}

type result struct {
	msg *mcp.Message
	err error
}

// serverRequest is a server-to-client request delivered to a peer and not
// yet answered.
type serverRequest struct {
	upID   mcp.ID // the server's id, echoed back byte for byte
	peer   Peer
	conn   Conn
	method string
}

// NewMux returns a Mux in state starting.
func NewMux(cfg MuxConfig) *Mux {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientName == "" {
		cfg.ClientName = "paygate"
	}
	if cfg.ClientVersion == "" {
		cfg.ClientVersion = "dev"
	}
	if cfg.ProtocolVersion == "" {
		cfg.ProtocolVersion = mcp.LatestVersion
	}
	if cfg.CancelTimeout <= 0 {
		cfg.CancelTimeout = 5 * time.Second
	}
	return &Mux{
		cfg:       cfg,
		log:       cfg.Logger.With("backend", cfg.Name),
		pending:   make(map[int64]*call),
		byToken:   make(map[string]*call),
		srvReqs:   make(map[string]*serverRequest),
		srvByUp:   make(map[string]string),
		transport: cfg.Transport,
		state:     StateStarting,
		since:     time.Now(),
		ready:     make(chan struct{}),
	}
}

// Name implements Backend.
func (m *Mux) Name() string { return m.cfg.Name }

// SetListener implements Backend.
func (m *Mux) SetListener(l Listener) {
	m.mu.Lock()
	m.listener = l
	m.mu.Unlock()
}

// Initialize implements Backend.
func (m *Mux) Initialize() *InitializeResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.init
}

// Status implements Backend.
func (m *Mux) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Status{
		Name:      m.cfg.Name,
		Transport: m.transport,
		State:     m.state,
		Since:     m.since,
		Restarts:  max(m.attached-1, 0),
		LastError: m.lastErr,
		InFlight:  m.inFlight,
		CrashLoop: m.crashLoop,
	}
}

// Call implements Backend.
func (m *Mux) Call(ctx context.Context, req *Request) (*mcp.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &call{clientID: req.ID, peer: req.Peer, done: make(chan result, 1)}
	params := req.Params
	// Most requests carry no progress token: a byte search keeps their
	// params untouched and undecoded.
	if bytes.Contains(params, progressTokenKey) {
		if s, e, ok := metaProgressToken(params); ok {
			tok := m.newToken()
			c.token = string(tok)
			c.origToken = params[s:e]
			params = mcp.Splice(params, s, e, tok)
		}
	}
	id := m.ids.Add(1)
	m.mu.Lock()
	if m.conn == nil {
		err := m.unavailableLocked()
		m.mu.Unlock()
		return nil, err
	}
	c.conn = m.conn
	m.addLocked(id, c)
	m.mu.Unlock()

	upID := mcp.Int64ID(id)
	body := mcp.AppendRequest(make([]byte, 0, len(params)+len(req.Method)+48), upID, req.Method, params)
	if err := c.conn.Send(ctx, Outgoing{ID: upID, Method: req.Method, Body: body}); err != nil {
		if m.take(id) == nil { // answered or failed meanwhile
			r := <-c.done
			return r.msg, r.err
		}
		if ctx.Err() != nil {
			// A POST cut short may still have reached the server.
			m.cancelUpstream(c.conn, upID, ctx.Err().Error())
			return nil, ctx.Err()
		}
		return nil, connectionLost(err)
	}
	select {
	case r := <-c.done:
		return r.msg, r.err
	case <-ctx.Done():
		if m.take(id) == nil {
			r := <-c.done
			return r.msg, r.err
		}
		m.cancelUpstream(c.conn, upID, ctx.Err().Error())
		return nil, ctx.Err()
	}
}

// connectionLost wraps a transport error as ErrConnectionLost unless it
// already says the request was never sent (ErrUnavailable, ErrNotDelivered)
// or is another of the package's sentinels.
func connectionLost(err error) error {
	if isSentinel(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrConnectionLost, err)
}

func isSentinel(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrClosed) ||
		errors.Is(err, ErrNotDelivered)
}

// Notify implements Backend.
func (m *Mux) Notify(ctx context.Context, n *mcp.Message, from Peer) error {
	switch n.Method {
	case mcp.NotificationCancelled:
		m.clientCancel(n.Params, from)
		return nil
	case mcp.NotificationInitialized:
		// paygate initialized the backend itself, once; the client's
		// handshake ends at the gateway.
		return nil
	}
	m.mu.Lock()
	conn := m.conn
	if conn == nil {
		err := m.unavailableLocked()
		m.mu.Unlock()
		return err
	}
	m.mu.Unlock()
	body := mcp.AppendRequest(nil, nil, n.Method, n.Params)
	return conn.Send(ctx, Outgoing{Method: n.Method, Body: body})
}

// errCancelledByClient is what Call returns when the client cancelled the
// request with notifications/cancelled.
var errCancelledByClient = fmt.Errorf("%w by the client", context.Canceled)

// clientCancel handles a client's notifications/cancelled: it finds the
// call by the client's request id among the calls of that peer.
func (m *Mux) clientCancel(params json.RawMessage, from Peer) {
	s, e, ok := mcp.MemberSpan(params, "requestId")
	if !ok {
		return
	}
	clientID := params[s:e]
	var reason string
	if rs, re, ok := mcp.MemberSpan(params, "reason"); ok {
		_ = json.Unmarshal(params[rs:re], &reason)
	}
	m.mu.Lock()
	var id int64
	var c *call
	for k, p := range m.pending {
		if !p.internal && bytes.Equal(p.clientID, clientID) && samePeer(p.peer, from) {
			id, c = k, p
			break
		}
	}
	if c != nil {
		m.removeLocked(id, c)
	}
	m.mu.Unlock()
	if c == nil {
		return // finished already, or not this peer's: dropped
	}
	if reason == "" {
		reason = "cancelled by the client"
	}
	m.cancelUpstream(c.conn, mcp.Int64ID(id), reason)
	c.done <- result{err: errCancelledByClient}
}

// Reply implements Backend.
func (m *Mux) Reply(ctx context.Context, resp *mcp.Message, from Peer) error {
	key := string(resp.ID)
	m.mu.Lock()
	sr := m.srvReqs[key]
	if sr == nil || !samePeer(sr.peer, from) {
		m.mu.Unlock()
		m.log.Debug("dropping reply to an unknown server request", "id", key)
		return nil
	}
	m.removeServerLocked(key, sr)
	m.mu.Unlock()
	var body []byte
	if resp.Error != nil {
		body = mcp.AppendError(nil, sr.upID, resp.Error)
	} else {
		body = mcp.AppendResult(nil, sr.upID, resp.Result)
	}
	return sr.conn.Send(ctx, Outgoing{Body: body})
}

// ForgetPeer implements PeerForgetter: the peer's unanswered server
// requests are answered upstream with an error.
func (m *Mux) ForgetPeer(p Peer) {
	var gone []*serverRequest
	m.mu.Lock()
	for k, sr := range m.srvReqs {
		if samePeer(sr.peer, p) {
			m.removeServerLocked(k, sr)
			gone = append(gone, sr)
		}
	}
	m.mu.Unlock()
	for _, sr := range gone {
		go m.replyError(sr.conn, sr.upID, mcp.CodeInternalError, "client session ended")
	}
}

// samePeer reports whether a and b are the same client: the same value, or
// two handles on one MCP session (the gateway may hand a per-request peer to
// Call and a per-session one to Notify and Reply).
func samePeer(a, b Peer) bool {
	if a == nil || b == nil {
		return false
	}
	if a == b {
		return true
	}
	s := a.SessionID()
	return s != "" && s == b.SessionID()
}

// addLocked registers a pending call.
func (m *Mux) addLocked(id int64, c *call) {
	m.pending[id] = c
	if c.token != "" {
		m.byToken[c.token] = c
	}
	if !c.internal {
		m.inFlight++
	}
}

func (m *Mux) removeLocked(id int64, c *call) {
	delete(m.pending, id)
	if c.token != "" {
		delete(m.byToken, c.token)
	}
	if !c.internal {
		m.inFlight--
	}
}

// take removes a pending call and returns it, or nil when someone else
// (a response, a cancel, a lost connection) took it first. Whoever takes a
// call owns its single send on c.done.
func (m *Mux) take(id int64) *call {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.pending[id]
	if c != nil {
		m.removeLocked(id, c)
	}
	return c
}

func (m *Mux) removeServerLocked(key string, sr *serverRequest) {
	delete(m.srvReqs, key)
	delete(m.srvByUp, string(sr.upID))
}

// cancelUpstream tells the server to stop working on a request. It does not
// wait: the caller has already given up on the request.
func (m *Mux) cancelUpstream(c Conn, upID mcp.ID, reason string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CancelTimeout)
		defer cancel()
		m.sendCancel(ctx, c, upID, reason)
	}()
}

func (m *Mux) sendCancel(ctx context.Context, c Conn, upID mcp.ID, reason string) {
	r, _ := json.Marshal(reason)
	params := make([]byte, 0, 32+len(upID)+len(r))
	params = append(params, `{"requestId":`...)
	params = append(params, upID...)
	params = append(params, `,"reason":`...)
	params = append(params, r...)
	params = append(params, '}')
	body := mcp.AppendRequest(nil, nil, mcp.NotificationCancelled, params)
	if err := c.Send(ctx, Outgoing{Method: mcp.NotificationCancelled, Body: body}); err != nil {
		m.log.Debug("send notifications/cancelled", "err", err)
	}
}

// replyError answers a server request with a JSON-RPC error.
func (m *Mux) replyError(c Conn, upID mcp.ID, code int64, msg string) {
	body := mcp.AppendError(nil, upID, &mcp.WireError{Code: code, Message: msg})
	m.sendDetached(c, Outgoing{Body: body})
}

func (m *Mux) sendDetached(c Conn, out Outgoing) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CancelTimeout)
	defer cancel()
	if err := c.Send(ctx, out); err != nil {
		m.log.Debug("send upstream", "method", out.Method, "err", err)
	}
}

func (m *Mux) unavailableLocked() error {
	if m.state == StateClosed {
		return fmt.Errorf("backend %s: %w", m.cfg.Name, ErrClosed)
	}
	return fmt.Errorf("backend %s %s: %w", m.cfg.Name, m.state, ErrUnavailable)
}

func (m *Mux) newToken() []byte {
	b := append(make([]byte, 0, 24), `"pg-p-`...)
	b = strconv.AppendInt(b, m.tokens.Add(1), 10)
	return append(b, '"')
}

func (m *Mux) newServerID() mcp.ID {
	b := append(make([]byte, 0, 24), `"pg-s-`...)
	b = strconv.AppendInt(b, m.srvIDs.Add(1), 10)
	return mcp.ID(append(b, '"'))
}
