package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/mcp"
)

// Conn is one live connection to a backend server as the Mux uses it: a
// child process, a Streamable HTTP session, a legacy SSE stream. Messages
// from the server come back through Mux.Receive.
//
// Send may be called concurrently; the transport serializes writes. Conns
// are compared by identity, so implementations must be pointers.
type Conn interface {
	// Send writes one message upstream. It returns once the message is
	// handed off (queued, or its HTTP request started), not when it is
	// answered. An error means the message was not sent.
	Send(ctx context.Context, out Outgoing) error
}

// Outgoing is one encoded message for Conn.Send.
type Outgoing struct {
	ID     mcp.ID // the upstream id of a request; nil for notifications and responses
	Method string // "" for a response
	Body   []byte // one JSON-RPC message, without a trailing newline
}

// IsRequest reports whether out expects a response.
func (o *Outgoing) IsRequest() bool { return o.ID.IsValid() && o.Method != "" }

// Handshake sends initialize over c (not yet attached) and returns the
// server's answer. Transports call Attach next, after recording whatever
// they need from the result (Streamable HTTP: the protocol version).
func (m *Mux) Handshake(ctx context.Context, c Conn) (*InitializeResult, error) {
	params, _ := json.Marshal(map[string]any{
		"protocolVersion": m.cfg.ProtocolVersion,
		// paygate relays sampling, elicitation and roots to the client that
		// caused the request, and refuses them when that client cannot.
		"capabilities": json.RawMessage(`{"sampling":{},"elicitation":{},"roots":{"listChanged":true}}`),
		"clientInfo":   map[string]string{"name": m.cfg.ClientName, "version": m.cfg.ClientVersion},
	})
	id := m.ids.Add(1)
	ic := &call{conn: c, internal: true, done: make(chan result, 1)}
	m.mu.Lock()
	m.addLocked(id, ic)
	m.mu.Unlock()
	upID := mcp.Int64ID(id)
	out := Outgoing{ID: upID, Method: mcp.MethodInitialize, Body: mcp.AppendRequest(nil, upID, mcp.MethodInitialize, params)}
	if err := c.Send(ctx, out); err != nil {
		m.take(id)
		return nil, fmt.Errorf("send initialize: %w", err)
	}
	var r result
	select {
	case r = <-ic.done:
	case <-ctx.Done():
		if m.take(id) != nil {
			return nil, fmt.Errorf("initialize: %w", ctx.Err())
		}
		r = <-ic.done
	}
	if r.err != nil {
		return nil, fmt.Errorf("initialize: %w", r.err)
	}
	if r.msg.Error != nil {
		return nil, fmt.Errorf("initialize: %w", r.msg.Error)
	}
	var res InitializeResult
	if err := json.Unmarshal(r.msg.Result, &res); err != nil {
		return nil, fmt.Errorf("initialize: malformed result: %w", err)
	}
	if !mcp.IsSupportedVersion(res.ProtocolVersion) {
		return nil, fmt.Errorf("initialize: server chose unsupported protocol version %q", res.ProtocolVersion)
	}
	return &res, nil
}

// Attach sends notifications/initialized over c and makes it the
// connection calls go to: the backend is ready. Attaching the connection
// that is already attached (a Streamable HTTP session renewed in place)
// just records the new handshake.
func (m *Mux) Attach(ctx context.Context, c Conn, res *InitializeResult) error {
	body := mcp.AppendRequest(nil, nil, mcp.NotificationInitialized, nil)
	if err := c.Send(ctx, Outgoing{Method: mcp.NotificationInitialized, Body: body}); err != nil {
		return fmt.Errorf("send initialized: %w", err)
	}
	m.mu.Lock()
	if m.state == StateClosed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.conn = c
	m.init = res
	m.attached++
	changed := m.setStateLocked(StateReady)
	m.mu.Unlock()
	m.readyOnce.Do(func() { close(m.ready) })
	if changed {
		m.emitState()
	}
	return nil
}

// Ready is closed once the backend has been ready for the first time.
func (m *Mux) Ready() <-chan struct{} { return m.ready }

// Lost reports that c died. Every call sent on it fails at once with
// ErrConnectionLost, server requests delivered from it are withdrawn from
// their peers, and, when c was the attached connection, the backend stops
// taking calls (state restarting, or down when crash-looping) until the
// next Attach.
func (m *Mux) Lost(c Conn, cause error) {
	var failed []*call
	var withdrawn []withdrawal
	m.mu.Lock()
	for id, p := range m.pending {
		if p.conn == c {
			m.removeLocked(id, p)
			failed = append(failed, p)
		}
	}
	for k, sr := range m.srvReqs {
		if sr.conn == c {
			m.removeServerLocked(k, sr)
			withdrawn = append(withdrawn, withdrawal{k, sr.peer})
		}
	}
	changed := false
	if m.conn == c {
		m.conn = nil
		changed = m.failedLocked(cause)
	}
	m.mu.Unlock()

	err := fmt.Errorf("%w: %v", ErrConnectionLost, cause)
	for _, p := range failed {
		p.done <- result{err: err}
	}
	for _, w := range withdrawn {
		_ = w.peer.Deliver(cancelledNotification(w.clientID, "backend connection lost"))
	}
	if changed {
		m.emitState()
	}
}

type withdrawal struct {
	clientID string
	peer     Peer
}

// Fail fails one call sent on c (Streamable HTTP: its POST failed or its
// stream ended without a response) with ErrConnectionLost, unless it is
// already answered.
func (m *Mux) Fail(c Conn, upID mcp.ID, cause error) {
	id, ok := parseUpstreamID(upID)
	if !ok {
		return
	}
	m.mu.Lock()
	p := m.pending[id]
	if p == nil || p.conn != c {
		m.mu.Unlock()
		return
	}
	m.removeLocked(id, p)
	m.mu.Unlock()
	p.done <- result{err: connectionLost(cause)}
}

// Pending reports whether the request with upstream id upID is still
// waiting for its response.
func (m *Mux) Pending(upID mcp.ID) bool {
	id, ok := parseUpstreamID(upID)
	if !ok {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending[id] != nil
}

// DialFailed records a failed attempt to connect (spawn, handshake): it
// counts towards crash-loop detection and shows in Status.LastError.
func (m *Mux) DialFailed(cause error) {
	m.mu.Lock()
	changed := m.failedLocked(cause)
	m.mu.Unlock()
	if changed {
		m.emitState()
	}
}

// failedLocked records a connection failure and picks the next state.
func (m *Mux) failedLocked(cause error) bool {
	if m.state == StateClosed {
		return false
	}
	if cause != nil {
		m.lastErr = cause.Error()
	}
	now := time.Now()
	m.failures = slices.DeleteFunc(append(m.failures, now), func(t time.Time) bool {
		return now.Sub(t) > crashLoopWindow
	})
	wasLooping := m.crashLoop
	m.crashLoop = len(m.failures) >= crashLoopFailures
	next := StateRestarting
	switch {
	case m.crashLoop:
		next = StateDown
		if !wasLooping {
			m.log.Error("backend is crash-looping", "failures", len(m.failures), "window", crashLoopWindow, "err", m.lastErr)
		}
	case m.attached == 0:
		next = StateStarting
	}
	return m.setStateLocked(next)
}

// SetTransport changes the transport reported in Status (auto-detection
// learns it at the first connection).
func (m *Mux) SetTransport(t string) {
	m.mu.Lock()
	m.transport = t
	m.mu.Unlock()
}

// Shutdown closes the Mux: pending calls fail with ErrClosed, unanswered
// server requests are withdrawn, and every later call fails with ErrClosed.
// The server is told to cancel the calls that were in flight, before the
// transport ends the session (some servers finish in-flight work before
// they let a session end); ctx bounds that.
func (m *Mux) Shutdown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.CancelTimeout)
	defer cancel()
	var failed []*call
	var withdrawn []withdrawal
	var wg sync.WaitGroup
	m.mu.Lock()
	for id, p := range m.pending {
		m.removeLocked(id, p)
		failed = append(failed, p)
		if !p.internal {
			wg.Go(func() { m.sendCancel(ctx, p.conn, mcp.Int64ID(id), "backend closing") })
		}
	}
	for k, sr := range m.srvReqs {
		m.removeServerLocked(k, sr)
		withdrawn = append(withdrawn, withdrawal{k, sr.peer})
	}
	m.conn = nil
	changed := m.setStateLocked(StateClosed)
	m.mu.Unlock()
	for _, p := range failed {
		p.done <- result{err: fmt.Errorf("backend %s: %w", m.cfg.Name, ErrClosed)}
	}
	wg.Wait()
	for _, w := range withdrawn {
		_ = w.peer.Deliver(cancelledNotification(w.clientID, "backend closed"))
	}
	if changed {
		m.emitState()
	}
}

// setStateLocked moves to s and reports whether that was a transition.
func (m *Mux) setStateLocked(s State) bool {
	if m.state == s || m.state == StateClosed {
		return false
	}
	m.state = s
	m.since = time.Now()
	if s == StateReady {
		m.lastErr = ""
	}
	return true
}

// emitState tells the listener about the current status. emitMu keeps the
// calls ordered; the listener must not call back into state-changing
// methods.
func (m *Mux) emitState() {
	m.emitMu.Lock()
	defer m.emitMu.Unlock()
	st := m.Status()
	m.mu.Lock()
	l := m.listener
	m.mu.Unlock()
	if st.State != StateReady {
		m.log.Warn("backend state", "state", st.State, "err", st.LastError, "restarts", st.Restarts)
	} else {
		m.log.Info("backend state", "state", st.State, "restarts", st.Restarts)
	}
	if l != nil {
		l.OnStateChange(st)
	}
}

// cancelledNotification builds notifications/cancelled for a request the
// client knows by clientID (JSON text).
func cancelledNotification(clientID, reason string) []byte {
	r, _ := json.Marshal(reason)
	params := make([]byte, 0, 32+len(clientID)+len(r))
	params = append(params, `{"requestId":`...)
	params = append(params, clientID...)
	params = append(params, `,"reason":`...)
	params = append(params, r...)
	params = append(params, '}')
	return mcp.AppendRequest(nil, nil, mcp.NotificationCancelled, params)
}

// parseUpstreamID reads an id the Mux minted: a JSON integer. Servers echo
// it unchanged; anything else is not ours.
func parseUpstreamID(id mcp.ID) (int64, bool) {
	if len(id) == 0 || len(id) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range id {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
