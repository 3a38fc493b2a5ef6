package streamable

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/mcp"
)

// testTimeout bounds every wait in these tests; nothing sleeps.
const testTimeout = 10 * time.Second

// fakeHandler answers by method name:
//
//	initialize  InitializeResult; an error when params.reject is true
//	echo        result = params; sets X-Echo on the response
//	emit        params.n related notifications (Exchange.Deliver), then the result;
//	            sets X-Credits-Remaining before the first
//	emitWait    one related notification, then waits for ctx, then answers an error
//	block       waits for ctx, then answers an error
//	barrier     waits until params.n barrier requests have started, then answers
//	panic       panics
//	server/discover  -32601, as paygate answers the 2026-07-28 probe
type fakeHandler struct {
	started    chan string // method of each request, when it starts
	cancelled  chan string // method of each request whose ctx ended
	closed     chan *Session
	deliverErr chan error // Exchange.Deliver errors

	mu        sync.Mutex
	notes     []string // notification methods
	responses []*mcp.Message
	barrierN  int
	barrierC  chan struct{}
}

func newFakeHandler() *fakeHandler {
	return &fakeHandler{
		started:    make(chan string, 1000),
		cancelled:  make(chan string, 100),
		closed:     make(chan *Session, 20000),
		deliverErr: make(chan error, 100),
		barrierC:   make(chan struct{}),
	}
}

func (h *fakeHandler) HandleRequest(ctx context.Context, ex *Exchange) {
	select {
	case h.started <- ex.Msg.Method:
	default: // a test that does not wait for starts must not block the handler
	}
	var p struct {
		N      int  `json:"n"`
		Reject bool `json:"reject"`
	}
	_ = json.Unmarshal(ex.Msg.Params, &p)
	switch ex.Msg.Method {
	case mcp.MethodInitialize:
		if p.Reject {
			ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: "rejected"})
			return
		}
		ex.ReplyResult(json.RawMessage(fmt.Sprintf(
			`{"protocolVersion":%q,"capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1"}}`,
			ex.Session.ProtocolVersion())))
	case "echo":
		ex.Header.Set("X-Echo", "1")
		params := ex.Msg.Params
		if params == nil {
			params = json.RawMessage(`{}`)
		}
		ex.ReplyResult(params)
	case "emit":
		ex.Header.Set("X-Credits-Remaining", "42")
		for i := range p.N {
			if err := ex.Deliver(mcp.AppendRequest(nil, nil, mcp.NotificationProgress,
				json.RawMessage(fmt.Sprintf(`{"progressToken":1,"progress":%d}`, i)))); err != nil {
				h.deliverErr <- err
			}
		}
		ex.ReplyResult(json.RawMessage(`{"done":true}`))
	case "emitWait":
		if err := ex.Deliver(mcp.AppendRequest(nil, nil, mcp.NotificationProgress, json.RawMessage(`{"progress":0}`))); err != nil {
			h.deliverErr <- err
		}
		<-ctx.Done()
		h.cancelled <- ex.Msg.Method
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInternalError, Message: "cancelled"})
	case "block":
		<-ctx.Done()
		h.cancelled <- ex.Msg.Method
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInternalError, Message: "cancelled"})
	case "barrier":
		h.mu.Lock()
		h.barrierN++
		if h.barrierN == p.N {
			close(h.barrierC)
		}
		c := h.barrierC
		h.mu.Unlock()
		select {
		case <-c:
			ex.ReplyResult(ex.Msg.Params)
		case <-ctx.Done():
			ex.ReplyError(&mcp.WireError{Code: mcp.CodeInternalError, Message: "barrier not reached"})
		}
	case "panic":
		panic("boom")
	default:
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeMethodNotFound, Message: "method not found"})
	}
}

func (h *fakeHandler) HandleNotification(_ context.Context, _ *Session, _ *http.Request, msg *mcp.Message) {
	h.mu.Lock()
	h.notes = append(h.notes, msg.Method)
	h.mu.Unlock()
}

func (h *fakeHandler) HandleResponse(_ context.Context, _ *Session, _ *http.Request, msg *mcp.Message) {
	h.mu.Lock()
	h.responses = append(h.responses, msg)
	h.mu.Unlock()
}

// SessionClosed records sess; past the buffer (benchmarks open sessions by
// the hundred thousand) it drops the record rather than block Close.
func (h *fakeHandler) SessionClosed(sess *Session) {
	select {
	case h.closed <- sess:
	default:
	}
}

func (h *fakeHandler) notifications() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.notes...)
}

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a Server behind a real HTTP listener on 127.0.0.1.
type env struct {
	t   *testing.T
	srv *Server
	ts  *httptest.Server
	h   *fakeHandler
	url string
}

// newEnv starts a Server with opts. Most tests here were written for the
// lazy JSON-first response mode, so it is switched on; newDefaultEnv keeps
// the production default (SSE when both are accepted).
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	opts.PreferJSON = true
	return newDefaultEnv(t, opts)
}

func newDefaultEnv(t *testing.T, opts Options) *env {
	t.Helper()
	h := newFakeHandler()
	srv := New(h, opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = srv.Close(ctx)
		ts.Close()
	})
	return &env{t: t, srv: srv, ts: ts, h: h, url: ts.URL + "/mcp"}
}

const (
	acceptBoth = "application/json, text/event-stream"
	acceptJSON = "application/json"
	acceptSSE  = "text/event-stream"
)

// hdr builds request headers from key, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// do sends a request and returns the response, body unread. A POST gets
// Content-Type application/json unless h sets one (use "-" to omit it).
func (e *env) do(ctx context.Context, method string, h http.Header, body string) *http.Response {
	e.t.Helper()
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "-" {
		req.Header.Del("Content-Type")
	}
	if hh := h.Get("Host"); hh != "" {
		req.Host = hh
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// post sends a POST and returns status, headers and the whole body.
func (e *env) post(h http.Header, body string) (int, http.Header, string) {
	e.t.Helper()
	resp := e.do(nil, http.MethodPost, h, body)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// initialize opens a session at the given revision and returns its id.
func (e *env) initialize(version string) string {
	e.t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":%q,`+
		`"capabilities":{"roots":{"listChanged":true},"sampling":{}},"clientInfo":{"name":"test","version":"0.1"}}}`, version)
	code, h, b := e.post(hdr("Accept", acceptBoth), body)
	if code != http.StatusOK {
		e.t.Fatalf("initialize: status %d: %s", code, b)
	}
	id := h.Get(HeaderSessionID)
	if id == "" {
		e.t.Fatalf("initialize: no %s header; body %s", HeaderSessionID, b)
	}
	return id
}

// waitStarted waits until a request with the given method has started.
func (h *fakeHandler) waitStarted(t *testing.T, method string) {
	t.Helper()
	for recv(t, h.started, method+" to start") != method {
	}
}

// sessionHeader returns headers for a request on a session.
func sessionHeader(id string, kv ...string) http.Header {
	h := hdr(kv...)
	h.Set(HeaderSessionID, id)
	return h
}

// wireError decodes a JSON-RPC error body.
func wireError(t *testing.T, body string) (mcp.ID, *mcp.WireError) {
	t.Helper()
	m, err := mcp.Decode([]byte(body))
	if err != nil || m.Error == nil {
		t.Fatalf("body is not a JSON-RPC error: %q (%v)", body, err)
	}
	return m.ID, m.Error
}

// sseEvent is one parsed server-sent event; comments are skipped.
type sseEvent struct {
	id, name, data string
}

// sseReader parses an event stream.
type sseReader struct {
	r *bufio.Reader
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: bufio.NewReader(r)} }

// next returns the next event (an event with only an id is returned too:
// the priming event). comment reports a comment-only block instead.
func (s *sseReader) next() (ev sseEvent, comment string, err error) {
	var data []string
	seen := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, "", err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if seen {
				ev.data = strings.Join(data, "\n")
				return ev, "", nil
			}
			if comment != "" {
				return ev, comment, nil
			}
		case strings.HasPrefix(line, ":"):
			comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id:"):
			ev.id, seen = strings.TrimSpace(line[3:]), true
		case strings.HasPrefix(line, "event:"):
			ev.name, seen = strings.TrimSpace(line[6:]), true
		case strings.HasPrefix(line, "data:"):
			data, seen = append(data, strings.TrimPrefix(line[5:], " ")), true
		}
	}
}

// event returns the next event, skipping comments.
func (s *sseReader) event(t *testing.T) sseEvent {
	t.Helper()
	for {
		ev, c, err := s.next()
		if err != nil {
			t.Fatalf("reading event: %v", err)
		}
		if c == "" {
			return ev
		}
	}
}

// expectEOF checks that the stream ends without another event.
func (s *sseReader) expectEOF(t *testing.T) {
	t.Helper()
	for {
		ev, c, err := s.next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("want EOF, got %v", err)
		}
		if c == "" {
			t.Fatalf("want EOF, got event %+v", ev)
		}
	}
}

// recv waits for a value or fails the test.
func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitCond polls cond until it holds or the test timeout passes. It is for
// states only the server side can observe (a handler noticing a closed
// connection); everything else waits on channels.
func waitCond(cond func() bool) bool {
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
