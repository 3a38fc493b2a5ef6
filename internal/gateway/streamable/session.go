package streamable

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

var (
	_ backend.Peer = (*Session)(nil)
	_ backend.Peer = (*Exchange)(nil)
)

// Client capabilities a server-to-client request can need.
const (
	capSampling uint8 = 1 << iota
	capElicitation
	capRoots
)

// maxDetachedStreams bounds the POST streams a session keeps for
// resumption after their connection broke; the oldest is dropped first.
const maxDetachedStreams = 4

// Session is one client's MCP session, created by initialize and named by
// the Mcp-Session-Id header. An idle session holds no goroutine and no
// buffers: streams are allocated when first used.
//
// Concurrency: all methods are safe for concurrent use.
type Session struct {
	srv      *Server
	id       string
	version  string
	caps     json.RawMessage
	info     json.RawMessage
	capFlags uint8

	mu         sync.Mutex
	closed     bool
	busy       int32 // requests being served and attached stream writers
	lastActive int64 // Options.Now in Unix nanoseconds
	value      any
	done       chan struct{}      // made on first use; closed when the session ends
	get        *stream            // the standalone GET stream (number 0), made on first use
	posts      map[uint64]*stream // POST streams that can still be resumed
	nextStream uint64
}

// ID returns the session id (32 hex digits).
func (s *Session) ID() string { return s.id }

// SessionID implements backend.Peer.
func (s *Session) SessionID() string { return s.id }

// ProtocolVersion returns the revision negotiated at initialize.
func (s *Session) ProtocolVersion() string { return s.version }

// ClientCapabilities returns the capabilities the client sent in
// initialize (nil if it sent none). The caller must not modify it.
func (s *Session) ClientCapabilities() json.RawMessage { return s.caps }

// ClientInfo returns the clientInfo of initialize (nil if absent). The
// caller must not modify it.
func (s *Session) ClientInfo() json.RawMessage { return s.info }

// Supports implements backend.Peer: sampling/createMessage needs the
// client's sampling capability, elicitation/create elicitation and
// roots/list roots; every other method is supported.
func (s *Session) Supports(method string) bool { return supports(s.capFlags, method) }

func supports(flags uint8, method string) bool {
	switch method {
	case mcp.MethodSamplingCreateMessage:
		return flags&capSampling != 0
	case mcp.MethodElicitationCreate:
		return flags&capElicitation != 0
	case mcp.MethodRootsList:
		return flags&capRoots != 0
	}
	return true
}

// LastActive returns when the session last saw a request (or a stream
// closing).
func (s *Session) LastActive() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Unix(0, s.lastActive)
}

// Value returns what the handler stored with SetValue.
func (s *Session) Value() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.value
}

// SetValue stores a handler value with the session.
func (s *Session) SetValue(v any) {
	s.mu.Lock()
	s.value = v
	s.mu.Unlock()
}

// ValueOrStore returns the stored value, first storing v when none is
// stored (a nil Value), atomically.
func (s *Session) ValueOrStore(v any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.value == nil {
		s.value = v
	}
	return s.value
}

// Deliver sends a server-to-client message unrelated to any request: it
// goes to the session's GET stream, or is buffered there (bounded by
// Options.EventBufferSize, oldest dropped) until a GET stream opens. msg
// is copied. Deliver implements backend.Peer and never blocks on the
// network.
func (s *Session) Deliver(msg []byte) error {
	st, err := s.getStream()
	if err != nil {
		return err
	}
	if _, err := st.append(bytes.Clone(msg), false); err != nil {
		return ErrSessionClosed
	}
	return nil
}

// Close ends the session, as DELETE would.
func (s *Session) Close() { s.srv.endSession(s) }

func (s *Session) getStream() (*stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSessionClosed
	}
	if s.get == nil {
		s.get = newStream(0, true, s.srv.opts.EventBufferSize)
	}
	return s.get, nil
}

// doneChan returns a channel closed when the session ends.
func (s *Session) doneChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
		if s.closed {
			close(s.done)
		}
	}
	return s.done
}

// addStream registers a POST stream so a GET with Last-Event-ID can resume
// it, and returns its number.
func (s *Session) addStream(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextStream++
	st.num = s.nextStream
	if s.closed {
		st.end()
		return
	}
	if s.posts == nil {
		s.posts = make(map[uint64]*stream)
	}
	s.posts[st.num] = st
}

func (s *Session) postStream(num uint64) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts[num]
}

// removeStream forgets a POST stream whose events have all been written.
func (s *Session) removeStream(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.posts[st.num] == st {
		delete(s.posts, st.num)
	}
	if len(s.posts) == 0 {
		s.posts = nil
	}
}

// pruneDetached drops the oldest POST streams that no writer serves beyond
// maxDetachedStreams. A dropped stream is ended, so related messages then
// fall back to the GET stream.
func (s *Session) pruneDetached() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var oldest *stream
		n := 0
		for _, st := range s.posts {
			if st.attached() {
				continue
			}
			n++
			if oldest == nil || st.num < oldest.num {
				oldest = st
			}
		}
		if n <= maxDetachedStreams {
			return
		}
		delete(s.posts, oldest.num)
		oldest.end()
	}
}

// release ends one request or stream begun by Server.acquire.
func (s *Session) release() {
	s.mu.Lock()
	s.busy--
	s.lastActive = s.srv.now().UnixNano()
	s.mu.Unlock()
}

// expiredLocked reports whether the session has been idle past the timeout.
func (s *Session) expiredLocked(now int64) bool {
	return s.busy == 0 && now-s.lastActive >= int64(s.srv.opts.SessionIdleTimeout)
}

// shutdown marks the session closed and ends its streams. It reports
// whether this call closed it.
func (s *Session) shutdown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdownLocked()
}

// shutdownExpired is shutdown if the session is expired at now, checked
// under the same lock so a request cannot slip in between.
func (s *Session) shutdownExpired(now int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiredLocked(now) && s.shutdownLocked()
}

func (s *Session) shutdownLocked() bool {
	if s.closed {
		return false
	}
	s.closed = true
	if s.done != nil {
		close(s.done)
	}
	if s.get != nil {
		s.get.end()
	}
	for _, st := range s.posts {
		st.end()
	}
	s.posts = nil
	return true
}

// initParams is the part of initialize params the transport records.
type initParams struct {
	ProtocolVersion string          `json:"protocolVersion"`
	Capabilities    json.RawMessage `json:"capabilities"`
	ClientInfo      json.RawMessage `json:"clientInfo"`
}

func parseInitParams(params json.RawMessage) (*initParams, error) {
	var p initParams
	if len(params) == 0 {
		return &p, nil
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func capabilityFlags(caps json.RawMessage) uint8 {
	var c struct {
		Sampling    json.RawMessage `json:"sampling"`
		Elicitation json.RawMessage `json:"elicitation"`
		Roots       json.RawMessage `json:"roots"`
	}
	if len(caps) == 0 || json.Unmarshal(caps, &c) != nil {
		return 0
	}
	var f uint8
	present := func(b json.RawMessage) bool { return len(b) > 0 && string(b) != "null" }
	if present(c.Sampling) {
		f |= capSampling
	}
	if present(c.Elicitation) {
		f |= capElicitation
	}
	if present(c.Roots) {
		f |= capRoots
	}
	return f
}

// negotiate returns the revision for a requested one as one of the
// package-level version constants, so sessions share the string.
func negotiate(requested string) string {
	v := mcp.NegotiateVersion(requested)
	for _, c := range mcp.SupportedVersions {
		if c == v {
			return c
		}
	}
	return v
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	return hex.EncodeToString(b[:])
}

// newSession creates and registers a session for an initialize request. It
// returns it acquired (busy); the caller releases it. When the table is
// full, the least recently used idle session is evicted; when none is idle
// it returns errTooManySessions. The scan is O(sessions) but runs only when
// the table is full.
func (s *Server) newSession(p *initParams) (*Session, error) {
	sess := &Session{
		srv:        s,
		id:         newSessionID(),
		version:    negotiate(p.ProtocolVersion),
		caps:       bytes.Clone(nullToNil(p.Capabilities)),
		info:       bytes.Clone(nullToNil(p.ClientInfo)),
		busy:       1,
		lastActive: s.now().UnixNano(),
	}
	sess.capFlags = capabilityFlags(sess.caps)

	var victim *Session
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSessionClosed
	}
	if len(s.sessions) >= s.opts.MaxSessions {
		victim = s.lruIdleLocked()
		if victim == nil {
			s.mu.Unlock()
			return nil, errTooManySessions
		}
		delete(s.sessions, victim.id)
	}
	s.sessions[sess.id] = sess
	s.countLocked()
	s.mu.Unlock()

	if victim != nil {
		s.log.Info("evicted least recently used session", "session", victim.id)
		s.finish(victim)
	}
	s.sweeper.Do(func() { go s.sweepLoop() })
	return sess, nil
}

func (s *Server) lruIdleLocked() *Session {
	var lru *Session
	var lruAt int64
	for _, sess := range s.sessions {
		sess.mu.Lock()
		idle, at := sess.busy == 0, sess.lastActive
		sess.mu.Unlock()
		if idle && (lru == nil || at < lruAt) {
			lru, lruAt = sess, at
		}
	}
	return lru
}

func (s *Server) countLocked() {
	if s.opts.OnSessionCount != nil {
		s.opts.OnSessionCount(len(s.sessions))
	}
}

// acquire finds a live session and marks a request on it as begun; the
// caller must release it. An expired session is ended and not returned.
func (s *Server) acquire(id string) *Session {
	s.mu.RLock()
	sess := s.sessions[id]
	s.mu.RUnlock()
	if sess == nil {
		return nil
	}
	now := s.now().UnixNano()
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		return nil
	}
	if sess.expiredLocked(now) {
		sess.mu.Unlock()
		s.expire(sess, now)
		return nil
	}
	sess.busy++
	sess.lastActive = now
	sess.mu.Unlock()
	return sess
}

// endSession removes a session from the table and finishes it.
func (s *Server) endSession(sess *Session) {
	s.remove(sess)
	s.finish(sess)
}

// expire ends a session if it is (still) expired at now.
func (s *Server) expire(sess *Session, now int64) {
	if sess.shutdownExpired(now) {
		s.log.Debug("session expired", "session", sess.id)
		s.remove(sess)
		s.h.SessionClosed(sess)
	}
}

func (s *Server) remove(sess *Session) {
	s.mu.Lock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
		s.countLocked()
	}
	s.mu.Unlock()
}

// finish closes a session already out of the table and tells the handler,
// once.
func (s *Server) finish(sess *Session) {
	if sess.shutdown() {
		s.h.SessionClosed(sess)
	}
}

// sweep ends the sessions idle past the timeout.
func (s *Server) sweep() {
	now := s.now().UnixNano()
	var expired []*Session
	s.mu.RLock()
	for _, sess := range s.sessions {
		sess.mu.Lock()
		if sess.expiredLocked(now) {
			expired = append(expired, sess)
		}
		sess.mu.Unlock()
	}
	s.mu.RUnlock()
	for _, sess := range expired {
		s.expire(sess, now)
	}
}

// sweepLoop runs sweep periodically; one goroutine per Server, started with
// the first session and stopped by Close.
func (s *Server) sweepLoop() {
	every := min(max(s.opts.SessionIdleTimeout/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.sweep()
		case <-s.done:
			return
		}
	}
}

func nullToNil(b json.RawMessage) json.RawMessage {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	return b
}
