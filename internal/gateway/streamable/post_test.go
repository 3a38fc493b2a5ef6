package streamable

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/mcp"
)

const echo = `{"jsonrpc":"2.0","id":7,"method":"echo","params":{"x":1}}`

func TestPOSTStatus(t *testing.T) {
	e := newEnv(t, Options{MaxBodyBytes: 256})
	sid := e.initialize(mcp.Version20250618)
	big := `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"pad":"` + strings.Repeat("x", 300) + `"}}`

	tests := []struct {
		name   string
		h      http.Header
		body   string
		status int
		code   int64 // JSON-RPC error code of the body; 0: no error body expected
		msg    string
	}{
		{name: "json", h: hdr("Accept", acceptJSON), body: echo, status: 200},
		{name: "charset parameter", h: hdr("Accept", acceptJSON, "Content-Type", "application/json; charset=utf-8"), body: echo, status: 200},
		{name: "no Accept is JSON", body: echo, status: 200},
		{name: "*/* is JSON", h: hdr("Accept", "*/*"), body: echo, status: 200},
		{name: "text/plain", h: hdr("Content-Type", "text/plain"), body: echo, status: 415, code: mcp.CodeInvalidRequest},
		{name: "no Content-Type", h: hdr("Content-Type", "-"), body: echo, status: 415, code: mcp.CodeInvalidRequest},
		{name: "Accept html", h: hdr("Accept", "text/html"), body: echo, status: 406, code: mcp.CodeInvalidRequest},
		{name: "too large", body: big, status: 413, code: mcp.CodeInvalidRequest, msg: "exceeds 256 bytes"},
		{name: "not JSON", body: `{"jsonrpc":`, status: 400, code: mcp.CodeParseError},
		{name: "empty body", body: ``, status: 400, code: mcp.CodeParseError},
		{name: "not JSON-RPC", body: `{"hello":"world"}`, status: 400, code: mcp.CodeInvalidRequest},
		{name: "wrong jsonrpc", body: `{"jsonrpc":"1.0","id":1,"method":"echo"}`, status: 400, code: mcp.CodeInvalidRequest},
		{name: "bad batch element", h: hdr(HeaderProtocolVersion, mcp.Version20250326),
			body: `[` + echo + `,{"x":1}]`, status: 400, code: mcp.CodeInvalidRequest, msg: "message 1"},
		{name: "empty batch", body: `[]`, status: 400, code: mcp.CodeInvalidRequest},
		{name: "notification", body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, status: 202},
		{name: "response", body: `{"jsonrpc":"2.0","id":"s1","result":{}}`, status: 202},
		{name: "unknown session", h: sessionHeader("0123456789abcdef0123456789abcdef"), body: echo, status: 404, code: codeSessionNotFound},
		{name: "session", h: sessionHeader(sid), body: echo, status: 200},
		// Another supported revision on a session is accepted (the spec only
		// refuses invalid or unsupported values; the conformance suite
		// sends 2025-03-26 on 2025-11-25 sessions).
		{name: "session other supported version", h: sessionHeader(sid, HeaderProtocolVersion, mcp.Version20251125),
			body: echo, status: 200},
		{name: "session version unsupported", h: sessionHeader(sid, HeaderProtocolVersion, "1999-01-01"),
			body: echo, status: 400, code: mcp.CodeInvalidRequest, msg: "unsupported"},
		{name: "stateless version unsupported", h: hdr(HeaderProtocolVersion, "bogus"), body: echo, status: 400, code: mcp.CodeInvalidRequest},
		{name: "stateless future revision passes", h: hdr(HeaderProtocolVersion, "2099-01-01"), body: echo, status: 200},
		{name: "stateless batch default revision", body: `[` + echo + `]`, status: 200},
		{name: "stateless batch refused", h: hdr(HeaderProtocolVersion, mcp.Version20250618), body: `[` + echo + `]`,
			status: 400, code: mcp.CodeInvalidRequest, msg: "batches are not supported in protocol revision 2025-06-18"},
		{name: "session batch refused", h: sessionHeader(sid), body: `[` + echo + `]`,
			status: 400, code: mcp.CodeInvalidRequest, msg: "revision 2025-06-18"},
		{name: "initialize in batch", body: `[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}]`,
			status: 400, code: mcp.CodeInvalidRequest, msg: "batch"},
		{name: "initialize with session", h: sessionHeader(sid), body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`,
			status: 400, code: mcp.CodeInvalidRequest},
		{name: "initialize bad params", body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":5}}`,
			status: 400, code: mcp.CodeInvalidParams},
		{name: "handler panic", body: `{"jsonrpc":"2.0","id":1,"method":"panic"}`, status: 200, code: mcp.CodeInternalError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := e.post(tc.h, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %s", status, tc.status, body)
			}
			if status == http.StatusAccepted && body != "" {
				t.Errorf("202 with body %q", body)
			}
			if tc.code == 0 {
				return
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			_, we := wireError(t, body)
			if we.Code != tc.code || !strings.Contains(we.Message, tc.msg) {
				t.Errorf("error %d %q, want %d containing %q", we.Code, we.Message, tc.code, tc.msg)
			}
		})
	}
}

func TestPOSTOtherMethod(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.do(nil, http.MethodPut, nil, "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, POST, DELETE" {
		t.Fatalf("status %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestJSONResponseCarriesHandlerHeaders(t *testing.T) {
	e := newEnv(t, Options{})
	status, h, body := e.post(hdr("Accept", acceptBoth), echo)
	if status != 200 || h.Get("Content-Type") != "application/json" || h.Get("X-Echo") != "1" {
		t.Fatalf("status %d headers %v", status, h)
	}
	if want := `{"jsonrpc":"2.0","id":7,"result":{"x":1}}`; body != want {
		t.Fatalf("body %s, want %s", body, want)
	}
}

func TestNotificationsReachHandler(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20250326)
	body := `[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"s1","result":{"ok":true}}]`
	if status, _, b := e.post(sessionHeader(sid), body); status != http.StatusAccepted || b != "" {
		t.Fatalf("status %d body %q", status, b)
	}
	if n := e.h.notifications(); len(n) != 1 || n[0] != mcp.NotificationInitialized {
		t.Fatalf("notifications %v", n)
	}
	e.h.mu.Lock()
	defer e.h.mu.Unlock()
	if len(e.h.responses) != 1 || string(e.h.responses[0].ID) != `"s1"` {
		t.Fatalf("responses %v", e.h.responses)
	}
}

// A batch is allowed at 2025-03-26: its requests run concurrently (the
// barrier needs all three in flight at once) and the answers come as one
// array in request order; a notification in it gets no answer.
func TestBatchRunsConcurrentlyInOrder(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20250326)
	body := `[{"jsonrpc":"2.0","id":"a","method":"barrier","params":{"n":3}},` +
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{}},` +
		`{"jsonrpc":"2.0","id":"b","method":"barrier","params":{"n":3}},` +
		`{"jsonrpc":"2.0","id":"c","method":"barrier","params":{"n":3}}]`
	status, h, b := e.post(sessionHeader(sid, "Accept", acceptJSON), body)
	if status != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d: %s", status, b)
	}
	var replies []struct {
		ID     string          `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(b), &replies); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if len(replies) != 3 || replies[0].ID != "a" || replies[1].ID != "b" || replies[2].ID != "c" || replies[0].Result == nil {
		t.Fatalf("replies %s", b)
	}
}

// A batch of one request still gets an array.
func TestBatchOfOneIsArray(t *testing.T) {
	e := newEnv(t, Options{})
	status, _, b := e.post(hdr(HeaderProtocolVersion, mcp.Version20250326), `[`+echo+`]`)
	if status != 200 || b != `[{"jsonrpc":"2.0","id":7,"result":{"x":1}}]` {
		t.Fatalf("status %d body %s", status, b)
	}
}

func TestLazySwitchesToSSEOnRelatedMessage(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20251125)
	resp := e.do(nil, http.MethodPost, sessionHeader(sid, "Accept", acceptBoth),
		`{"jsonrpc":"2.0","id":3,"method":"emit","params":{"n":2}}`)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	if resp.Header.Get("X-Credits-Remaining") != "42" {
		t.Errorf("handler header missing: %v", resp.Header)
	}
	r := newSSEReader(resp.Body)
	want := []sseEvent{
		{"1_1", "message", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":0}}`},
		{"1_2", "message", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}`},
		{"1_3", "message", `{"jsonrpc":"2.0","id":3,"result":{"done":true}}`},
	}
	for _, w := range want {
		if got := r.event(t); got != w {
			t.Fatalf("event %+v, want %+v", got, w)
		}
	}
	r.expectEOF(t)
}

// Without a related message the same Accept header gets plain JSON.
func TestLazyStaysJSON(t *testing.T) {
	e := newEnv(t, Options{})
	status, h, b := e.post(hdr("Accept", acceptBoth), `{"jsonrpc":"2.0","id":3,"method":"emit","params":{"n":0}}`)
	if status != 200 || h.Get("Content-Type") != "application/json" || b != `{"jsonrpc":"2.0","id":3,"result":{"done":true}}` {
		t.Fatalf("status %d %v %s", status, h, b)
	}
}

func TestSSEOnlyPrimesStream(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20251125)
	resp := e.do(nil, http.MethodPost, sessionHeader(sid, "Accept", acceptSSE), echo)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	// Streaming starts with the first event, so the handler's headers
	// (set just before its answer) are on the response.
	if resp.Header.Get("X-Echo") != "1" {
		t.Errorf("handler header missing: %v", resp.Header)
	}
	r := newSSEReader(resp.Body)
	if ev := r.event(t); ev != (sseEvent{id: "1_0"}) {
		t.Fatalf("priming event %+v", ev)
	}
	if ev := r.event(t); ev.id != "1_1" || ev.data != `{"jsonrpc":"2.0","id":7,"result":{"x":1}}` {
		t.Fatalf("event %+v", ev)
	}
	r.expectEOF(t)
}

// A lazy batch that switches to SSE sends the answers that were already
// in as events first.
func TestLazyBatchSwitchKeepsEarlierAnswers(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20250326)
	// "block" holds the stream open until the client goes; "emit" answers
	// at once after one related message; echo answers at once.
	body := `[{"jsonrpc":"2.0","id":1,"method":"echo"},{"jsonrpc":"2.0","id":2,"method":"emit","params":{"n":1}}]`
	resp := e.do(nil, http.MethodPost, sessionHeader(sid, "Accept", acceptBoth), body)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		// echo and emit race: emit's Deliver always precedes its own
		// answer, so the response is SSE whatever echo does.
		t.Fatalf("Content-Type %q", ct)
	}
	r := newSSEReader(resp.Body)
	got := map[string]bool{}
	for range 3 {
		got[r.event(t).data] = true
	}
	for _, w := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{}}`,
		`{"jsonrpc":"2.0","id":2,"result":{"done":true}}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":0}}`,
	} {
		if !got[w] {
			t.Errorf("missing event %s in %v", w, got)
		}
	}
	r.expectEOF(t)
}

// With Accept: application/json the POST cannot stream, so a related
// message goes to the session's GET stream; a stateless request has none.
func TestDeliverFallsBack(t *testing.T) {
	e := newEnv(t, Options{})
	sid := e.initialize(mcp.Version20251125)
	status, _, b := e.post(sessionHeader(sid, "Accept", acceptJSON), `{"jsonrpc":"2.0","id":3,"method":"emit","params":{"n":1}}`)
	if status != 200 || b != `{"jsonrpc":"2.0","id":3,"result":{"done":true}}` {
		t.Fatalf("status %d %s", status, b)
	}
	resp := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE), "")
	defer resp.Body.Close()
	if ev := newSSEReader(resp.Body).event(t); ev.id != "0_1" || !strings.Contains(ev.data, "notifications/progress") {
		t.Fatalf("GET event %+v", ev)
	}

	status, _, _ = e.post(hdr("Accept", acceptJSON), `{"jsonrpc":"2.0","id":4,"method":"emit","params":{"n":1}}`)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	if err := recv(t, e.h.deliverErr, "Deliver error"); err != ErrNoStream {
		t.Fatalf("stateless Deliver: %v", err)
	}
}

// A stateless lazy POST can still stream its related messages, without
// event ids: nothing could resume it.
func TestStatelessSSEHasNoIDs(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.do(nil, http.MethodPost, hdr("Accept", acceptBoth), `{"jsonrpc":"2.0","id":3,"method":"emit","params":{"n":1}}`)
	defer resp.Body.Close()
	r := newSSEReader(resp.Body)
	for range 2 {
		if ev := r.event(t); ev.id != "" || ev.name != "message" {
			t.Fatalf("event %+v", ev)
		}
	}
	r.expectEOF(t)
}

// A client that goes away cancels the ctx of its requests.
func TestDisconnectCancelsRequest(t *testing.T) {
	for _, accept := range []string{acceptJSON, acceptBoth, acceptSSE} {
		t.Run(accept, func(t *testing.T) {
			e := newEnv(t, Options{})
			sid := e.initialize(mcp.Version20251125)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url,
					strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"block"}`))
				req.Header = sessionHeader(sid, "Accept", accept, "Content-Type", "application/json")
				if resp, err := e.ts.Client().Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			e.h.waitStarted(t, "block")
			cancel()
			if m := recv(t, e.h.cancelled, "request ctx to end"); m != "block" {
				t.Fatalf("cancelled %q", m)
			}
			<-done
			// Nothing reached the client, so nothing is kept to resume.
			sess := e.srv.session(sid)
			if !waitCond(func() bool { sess.mu.Lock(); defer sess.mu.Unlock(); return len(sess.posts) == 0 }) {
				t.Fatal("an unseen stream is kept for resumption")
			}
		})
	}
}

// The deadline on SSE writes never fires in these tests, but a stream must
// still be usable after a keepalive.
func TestKeepAliveComments(t *testing.T) {
	e := newEnv(t, Options{KeepAlive: 10 * time.Millisecond})
	sid := e.initialize(mcp.Version20251125)
	resp := e.do(nil, http.MethodGet, sessionHeader(sid, "Accept", acceptSSE), "")
	defer resp.Body.Close()
	r := newSSEReader(resp.Body)
	var seen []string
	for len(seen) < 2 {
		_, c, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, c)
	}
	if seen[0] != "stream open" || seen[1] != "keepalive" {
		t.Fatalf("comments %q", seen)
	}
}

// TestBothAcceptedDefaultsToSSE: without PreferJSON, a client that accepts
// both media types gets an SSE stream (as the MCP SDK servers answer),
// carrying the handler's headers and resumable event ids.
func TestBothAcceptedDefaultsToSSE(t *testing.T) {
	e := newDefaultEnv(t, Options{})
	sid := e.initialize(mcp.Version20251125)
	resp := e.do(nil, http.MethodPost, sessionHeader(sid, "Accept", "application/json, text/event-stream"), echo)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	if resp.Header.Get("X-Echo") != "1" {
		t.Errorf("handler header missing: %v", resp.Header)
	}
	r := newSSEReader(resp.Body)
	if ev := r.event(t); ev.data != "" || ev.id == "" {
		t.Fatalf("want a priming event first, got %+v", ev)
	}
	if ev := r.event(t); ev.data != `{"jsonrpc":"2.0","id":7,"result":{"x":1}}` {
		t.Fatalf("event %+v", ev)
	}
	r.expectEOF(t)
}
