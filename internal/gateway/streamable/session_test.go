package streamable

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/mcp"
)

func (s *Server) session(id string) *Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sessions[id]
}

func TestInitializeCreatesSession(t *testing.T) {
	tests := []struct {
		requested, negotiated string
	}{
		{mcp.Version20251125, mcp.Version20251125},
		{mcp.Version20250618, mcp.Version20250618},
		{mcp.Version20250326, mcp.Version20250326},
		{"2099-12-31", mcp.LatestVersion},
	}
	for _, tc := range tests {
		t.Run(tc.requested, func(t *testing.T) {
			var counts []int
			var mu sync.Mutex
			e := newEnv(t, Options{OnSessionCount: func(n int) { mu.Lock(); counts = append(counts, n); mu.Unlock() }})
			sid := e.initialize(tc.requested)
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(sid) {
				t.Fatalf("session id %q", sid)
			}
			sess := e.srv.session(sid)
			if sess == nil {
				t.Fatal("session not registered")
			}
			if sess.ID() != sid || sess.SessionID() != sid || sess.ProtocolVersion() != tc.negotiated {
				t.Fatalf("id %q version %q", sess.ID(), sess.ProtocolVersion())
			}
			if string(sess.ClientCapabilities()) != `{"roots":{"listChanged":true},"sampling":{}}` ||
				string(sess.ClientInfo()) != `{"name":"test","version":"0.1"}` {
				t.Fatalf("caps %s info %s", sess.ClientCapabilities(), sess.ClientInfo())
			}
			for m, want := range map[string]bool{
				mcp.MethodRootsList: true, mcp.MethodSamplingCreateMessage: true,
				mcp.MethodElicitationCreate: false, "ping": true,
			} {
				if sess.Supports(m) != want {
					t.Errorf("Supports(%s) = %v", m, !want)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(counts) != 1 || counts[0] != 1 {
				t.Errorf("OnSessionCount calls %v", counts)
			}
		})
	}
}

func TestInitializeErrorDiscardsSession(t *testing.T) {
	for _, accept := range []string{acceptJSON, acceptSSE} {
		t.Run(accept, func(t *testing.T) {
			e := newEnv(t, Options{})
			status, h, body := e.post(hdr("Accept", accept),
				`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","reject":true}}`)
			if status != 200 {
				t.Fatalf("status %d", status)
			}
			if accept == acceptJSON && h.Get(HeaderSessionID) != "" {
				t.Errorf("session id sent with an error: %v", h)
			}
			sess := recv(t, e.h.closed, "SessionClosed")
			if e.srv.session(sess.ID()) != nil {
				t.Fatal("rejected session still registered")
			}
			if accept == acceptJSON {
				if _, we := wireError(t, body); we.Code != mcp.CodeInvalidParams {
					t.Fatalf("error %+v", we)
				}
			}
		})
	}
}

func TestSessionExpiry(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, Options{Now: clock.Now, SessionIdleTimeout: time.Minute})
	sid := e.initialize(mcp.Version20251125)

	// Activity keeps it alive.
	for range 3 {
		clock.Advance(50 * time.Second)
		if status, _, b := e.post(sessionHeader(sid), echo); status != 200 {
			t.Fatalf("status %d %s", status, b)
		}
	}
	if got := e.srv.session(sid).LastActive(); !got.Equal(clock.Now()) {
		t.Errorf("LastActive %v, want %v", got, clock.Now())
	}

	// An open GET stream keeps it alive too.
	resp := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE), "")
	r := newSSEReader(resp.Body)
	if _, c, err := r.next(); err != nil || c != "stream open" {
		t.Fatalf("GET: %q %v", c, err)
	}
	clock.Advance(10 * time.Minute)
	e.srv.sweep()
	if status, _, _ := e.post(sessionHeader(sid), echo); status != 200 {
		t.Fatalf("session with an open stream expired: %d", status)
	}
	resp.Body.Close()
	// Closing the stream counts as activity: wait for the server to notice.
	if !waitCond(func() bool { return e.srv.session(sid).busyCount() == 0 }) {
		t.Fatal("GET stream never released the session")
	}

	clock.Advance(time.Minute)
	status, _, body := e.post(sessionHeader(sid), echo)
	if status != http.StatusNotFound {
		t.Fatalf("expired session: status %d", status)
	}
	if _, we := wireError(t, body); we.Code != codeSessionNotFound {
		t.Fatalf("error %+v", we)
	}
	if got := recv(t, e.h.closed, "SessionClosed"); got.ID() != sid {
		t.Fatalf("closed %s", got.ID())
	}

	// The sweeper ends idle sessions nobody asks for.
	sid2 := e.initialize(mcp.Version20251125)
	clock.Advance(time.Minute)
	e.srv.sweep()
	if got := recv(t, e.h.closed, "SessionClosed"); got.ID() != sid2 {
		t.Fatalf("closed %s", got.ID())
	}
	if e.srv.session(sid2) != nil {
		t.Fatal("swept session still registered")
	}
}

func (s *Session) busyCount() int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy
}

func TestDelete(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20251125)
	resp := e.do(nil, http.MethodDelete, sessionHeader(sid), "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if got := recv(t, e.h.closed, "SessionClosed"); got.ID() != sid {
		t.Fatalf("closed %s", got.ID())
	}
	for _, tc := range []struct {
		name   string
		method string
		h      http.Header
		status int
	}{
		{"POST after DELETE", http.MethodPost, sessionHeader(sid), 404},
		{"GET after DELETE", http.MethodGet, sessionHeader(sid, "Accept", acceptSSE), 404},
		{"DELETE again", http.MethodDelete, sessionHeader(sid), 404},
		{"DELETE without id", http.MethodDelete, nil, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(nil, tc.method, tc.h, echo)
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// DELETE ends what is in flight on the session: the open GET stream ends
// and a waiting JSON request is answered 404 (its ctx is cancelled).
func TestDeleteEndsInFlight(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20251125)
	get := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE), "")
	defer get.Body.Close()
	type result struct {
		status int
		body   string
	}
	posted := make(chan result, 1)
	go func() {
		status, _, body := e.post(sessionHeader(sid, "Accept", acceptJSON), `{"jsonrpc":"2.0","id":9,"method":"block"}`)
		posted <- result{status, body}
	}()
	e.h.waitStarted(t, "block")
	e.srv.session(sid).Close()
	r := recv(t, posted, "POST to end")
	if r.status != http.StatusNotFound {
		t.Fatalf("in-flight POST: %d %s", r.status, r.body)
	}
	if id, _ := wireError(t, r.body); string(id) != "9" {
		t.Fatalf("error id %s", id)
	}
	recv(t, e.h.cancelled, "request ctx to end")
	newSSEReader(get.Body).expectEOF(t)
}

func TestMaxSessionsEvictsLeastRecentlyUsed(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, Options{Now: clock.Now, MaxSessions: 2})
	a := e.initialize(mcp.Version20251125)
	clock.Advance(time.Second)
	b := e.initialize(mcp.Version20251125)
	clock.Advance(time.Second)
	if status, _, _ := e.post(sessionHeader(a), echo); status != 200 { // a is now more recent than b
		t.Fatal(status)
	}
	clock.Advance(time.Second)
	c := e.initialize(mcp.Version20251125)
	if got := recv(t, e.h.closed, "eviction"); got.ID() != b {
		t.Fatalf("evicted %s, want b", got.ID())
	}
	for id, want := range map[string]int{a: 200, b: 404, c: 200} {
		if status, _, _ := e.post(sessionHeader(id), echo); status != want {
			t.Errorf("session %s: status %d, want %d", id, status, want)
		}
	}

	// With every session busy (open GET streams) a new one is refused.
	for _, id := range []string{a, c} {
		resp := e.do(nil, http.MethodGet, sessionHeader(id, "Accept", acceptSSE), "")
		defer resp.Body.Close()
		if _, cm, err := newSSEReader(resp.Body).next(); err != nil || cm != "stream open" {
			t.Fatalf("GET: %v", err)
		}
	}
	status, h, body := e.post(hdr("Accept", acceptJSON),
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}`)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("status %d %v", status, h)
	}
	if _, we := wireError(t, body); we.Code != mcp.CodeServiceUnavailable {
		t.Fatalf("error %+v", we)
	}
}

func TestClose(t *testing.T) {
	var mu sync.Mutex
	var last int
	e := newEnv(t, Options{OnSessionCount: func(n int) { mu.Lock(); last = n; mu.Unlock() }})
	a := e.initialize(mcp.Version20251125)
	e.initialize(mcp.Version20250618)
	get := e.do(nil, http.MethodGet, sessionHeader(a, "Accept", acceptSSE), "")
	defer get.Body.Close()
	r := newSSEReader(get.Body)
	if _, c, err := r.next(); err != nil || c != "stream open" {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r.expectEOF(t)
	recv(t, e.h.closed, "SessionClosed")
	recv(t, e.h.closed, "SessionClosed")
	mu.Lock()
	if last != 0 {
		t.Errorf("session count %d after Close", last)
	}
	mu.Unlock()
	if status, _, _ := e.post(nil, echo); status != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d", status)
	}
	if err := e.srv.Close(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
}

func TestSessionValue(t *testing.T) {
	e := newEnv(t, Options{})
	sess := e.srv.session(e.initialize(mcp.Version20251125))
	if sess.Value() != nil {
		t.Fatal("value before SetValue")
	}
	if got := sess.ValueOrStore(1); got != 1 {
		t.Fatalf("ValueOrStore: %v", got)
	}
	if got := sess.ValueOrStore(2); got != 1 {
		t.Fatalf("ValueOrStore kept %v", got)
	}
	sess.SetValue("x")
	if sess.Value() != "x" {
		t.Fatal(sess.Value())
	}
	sess.Close()
	if err := sess.Deliver(json.RawMessage(`{}`)); err != ErrSessionClosed {
		t.Fatalf("Deliver after Close: %v", err)
	}
}
