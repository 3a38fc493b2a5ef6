package streamable

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/mcp"
)

func note(i int) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"notifications/message","params":{"i":%d}}`, i)
}

func TestGETStatus(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20251125)
	for _, tc := range []struct {
		name   string
		h      http.Header
		status int
	}{
		{"no Accept", sessionHeader(sid), 406},
		{"JSON only", sessionHeader(sid, "Accept", acceptJSON), 406},
		{"no session", hdr("Accept", acceptSSE), 400},
		{"unknown session", sessionHeader("nope", "Accept", acceptSSE), 404},
		{"malformed Last-Event-ID", sessionHeader(sid, "Accept", acceptSSE, headerLastEventID, "x"), 400},
		{"unknown stream", sessionHeader(sid, "Accept", acceptSSE, headerLastEventID, "7_1"), 400},
		{"unsupported version", sessionHeader(sid, "Accept", acceptSSE, HeaderProtocolVersion, "1999-01-01"), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(nil, http.MethodGet, tc.h, "")
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// Session.Deliver reaches an open GET stream; what arrives while no stream
// is open is buffered for the next one.
func TestGETStreamReceivesSessionMessages(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20251125)
	sess := e.srv.session(sid)
	if err := sess.Deliver(note(1)); err != nil { // before any GET: buffered
		t.Fatal(err)
	}
	resp := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE), "")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d Content-Type %q", resp.StatusCode, ct)
	}
	r := newSSEReader(resp.Body)
	if ev := r.event(t); ev != (sseEvent{"0_1", "message", string(note(1))}) {
		t.Fatalf("event %+v", ev)
	}
	for i := 2; i <= 3; i++ {
		if err := sess.Deliver(note(i)); err != nil {
			t.Fatal(err)
		}
		if ev := r.event(t); ev.id != fmt.Sprintf("0_%d", i) || ev.data != string(note(i)) {
			t.Fatalf("event %+v", ev)
		}
	}
	resp.Body.Close()

	// The next GET (no Last-Event-ID) gets only what no stream has written.
	waitDetached(t, sess)
	if err := sess.Deliver(note(4)); err != nil {
		t.Fatal(err)
	}
	resp = e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE), "")
	defer resp.Body.Close()
	if ev := newSSEReader(resp.Body).event(t); ev.id != "0_4" {
		t.Fatalf("event %+v, want 0_4", ev)
	}
}

// waitDetached waits until the session's GET stream has no writer.
func waitDetached(t *testing.T, sess *Session) {
	t.Helper()
	st, _ := sess.getStream()
	for !waitCond(func() bool { return !st.attached() }) {
		t.Fatal("GET stream writer never detached")
	}
}

func TestLastEventIDReplaysMissedEvents(t *testing.T) {
	e := newEnv(t, Options{EventBufferSize: 4})
	tests := []struct {
		last string
		want []string // ids; 0_1 was dropped from the 4-event buffer
	}{
		{"0_3", []string{"0_4", "0_5"}},
		{"0_5", nil},
		{"0_0", []string{"0_2", "0_3", "0_4", "0_5"}},
	}
	for _, tc := range tests {
		t.Run(tc.last, func(t *testing.T) {
			sid := e.initialize(mcp.Version20251125)
			sess := e.srv.session(sid)
			for i := 1; i <= 5; i++ {
				if err := sess.Deliver(note(i)); err != nil {
					t.Fatal(err)
				}
			}
			resp := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE, headerLastEventID, tc.last), "")
			defer resp.Body.Close()
			r := newSSEReader(resp.Body)
			for _, id := range tc.want {
				if ev := r.event(t); ev.id != id || ev.data != string(note(int(id[2]-'0'))) {
					t.Fatalf("event %+v, want %s", ev, id)
				}
			}
			// Nothing else was missed: the next event is a new one.
			if err := sess.Deliver(note(6)); err != nil {
				t.Fatal(err)
			}
			if ev := r.event(t); ev.id != "0_6" {
				t.Fatalf("event %+v, want 0_6", ev)
			}
		})
	}
}

// A second GET replaces the first, which ends; messages go to the new one.
func TestSecondGETReplacesFirst(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20251125)
	first := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE), "")
	defer first.Body.Close()
	r1 := newSSEReader(first.Body)
	if _, c, err := r1.next(); err != nil || c != "stream open" {
		t.Fatal(err)
	}
	second := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE), "")
	defer second.Body.Close()
	r1.expectEOF(t)
	if err := e.srv.session(sid).Deliver(note(1)); err != nil {
		t.Fatal(err)
	}
	if ev := newSSEReader(second.Body).event(t); ev.id != "0_1" {
		t.Fatalf("event %+v", ev)
	}
}

// A POST stream whose connection broke can be resumed with GET and
// Last-Event-ID (2025-11-25): the client gets what it missed, the answer
// last, and the stream ends. Once delivered, the stream is gone.
func TestPOSTStreamResume(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20251125)
	ctx, cancel := context.WithCancel(context.Background())
	resp := e.do(ctx, http.MethodPost, sessionHeader(sid, "Accept", acceptBoth), `{"jsonrpc":"2.0","id":5,"method":"emitWait"}`)
	r := newSSEReader(resp.Body)
	ev := r.event(t)
	if ev.id != "1_1" || !strings.Contains(ev.data, "progress") {
		t.Fatalf("event %+v", ev)
	}

	// While the POST is still served, its stream cannot be taken over.
	busy := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE, headerLastEventID, "1_1"), "")
	busy.Body.Close()
	if busy.StatusCode != http.StatusConflict {
		t.Fatalf("resume of a served stream: %d", busy.StatusCode)
	}

	cancel() // the connection breaks; the request is cancelled and answers
	resp.Body.Close()
	recv(t, e.h.cancelled, "request ctx to end")
	sess := e.srv.session(sid)
	st := sess.postStream(1)
	if st == nil || !waitCond(func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.ended && st.w == nil }) {
		t.Fatal("stream 1 not kept for resumption")
	}

	res := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE, headerLastEventID, "1_1"), "")
	defer res.Body.Close()
	rr := newSSEReader(res.Body)
	if ev := rr.event(t); ev.id != "1_2" || !strings.Contains(ev.data, `"id":5`) || !strings.Contains(ev.data, `"error"`) {
		t.Fatalf("resumed event %+v", ev)
	}
	rr.expectEOF(t)

	again := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE, headerLastEventID, "1_1"), "")
	again.Body.Close()
	if again.StatusCode != http.StatusBadRequest {
		t.Fatalf("resume of a delivered stream: %d", again.StatusCode)
	}
}
