package httpmcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/backend/backendtest"
	"github.com/paygate/paygate/internal/mcp"
)

func TestStreamableConformance(t *testing.T) {
	base := conformanceServer(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		u, rec := recordingProxy(t, base)
		return backendtest.Tap(New(Config{Name: "conformance", URL: u + "/mcp"}), rec.upstream)
	})
}

func TestStreamableNPMEverything(t *testing.T) {
	base := npmEverything(t, "streamableHttp")
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		u, rec := recordingProxy(t, base)
		return backendtest.Tap(New(Config{Name: "everything", URL: u + "/mcp"}), rec.upstream)
	})
}

func TestSSENPMEverything(t *testing.T) {
	base := npmEverything(t, "sse")
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		u, rec := recordingProxy(t, base)
		return backendtest.Tap(NewSSE(Config{Name: "everything-sse", URL: u + "/sse"}), rec.upstream)
	})
}

func call(ctx context.Context, b backend.Backend, method, params string) (*mcp.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return b.Call(ctx, &backend.Request{ID: mcp.ID(`1`), Method: method, Params: json.RawMessage(params)})
}

func TestAutoDetectsTransport(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"streamable", conformanceServer(t) + "/mcp", "streamable-http"},
		{"legacy sse", npmEverything(t, "sse") + "/sse", "sse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewAuto(Config{Name: tc.name, URL: tc.url, BackoffMin: time.Millisecond})
			closeOnCleanup(t, b)
			if err := b.Start(startCtx(t)); err != nil {
				t.Fatal(err)
			}
			if got := b.Status().Transport; got != tc.want {
				t.Errorf("transport %q, want %q", got, tc.want)
			}
			if m, err := call(context.Background(), b, mcp.MethodToolsList, `{}`); err != nil || m.Error != nil {
				t.Fatalf("tools/list: %v %+v", err, m)
			}
		})
	}
}

// sdkServer serves a Go SDK server over Streamable HTTP in process, behind
// a recorder.
func sdkServer(t *testing.T, opts *sdk.StreamableHTTPOptions) (*httptest.Server, *recorder, *sdk.Server) {
	s := sdk.NewServer(&sdk.Implementation{Name: "sdk-test", Version: "1"}, nil)
	text := func(s string) *sdk.CallToolResult {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}
	}
	sdk.AddTool(s, &sdk.Tool{Name: "hello"}, func(context.Context, *sdk.CallToolRequest, any) (*sdk.CallToolResult, any, error) {
		return text("hello"), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "drop_stream"}, func(_ context.Context, req *sdk.CallToolRequest, _ any) (*sdk.CallToolResult, any, error) {
		// Ends the POST's stream before the result: the client must
		// resume it with Last-Event-ID.
		if req.Extra != nil && req.Extra.CloseSSEStream != nil {
			req.Extra.CloseSSEStream(sdk.CloseSSEStreamArgs{RetryAfter: 5 * time.Millisecond})
		}
		return text("resumed"), nil, nil
	})
	rec := &recorder{next: sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, opts)}
	srv := httptest.NewServer(rec)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, rec, s
}

func startSDK(t *testing.T, cfg Config) (*Backend, *recorder, *sdk.Server, *backendtest.Listener) {
	srv, rec, s := sdkServer(t, &sdk.StreamableHTTPOptions{EventStore: sdk.NewMemoryEventStore(nil)})
	cfg.URL = srv.URL
	b := New(cfg)
	lis := &backendtest.Listener{}
	b.SetListener(lis)
	closeOnCleanup(t, b)
	if err := b.Start(startCtx(t)); err != nil {
		t.Fatal(err)
	}
	return b, rec, s, lis
}

func isInitialize(e exchange) bool {
	return e.Method == http.MethodPost && bytes.Contains(e.Body, []byte(`"method":"initialize"`))
}

func sessionOf(t *testing.T, rec *recorder) string {
	for _, e := range rec.exchanges() {
		if s := e.Header.Get(hdrSession); s != "" {
			return s
		}
	}
	t.Fatal("no request carried a session id")
	return ""
}

func TestSessionExpiryReinitializes(t *testing.T) {
	// The GET stream also learns of the DELETE and would renew the session
	// itself, racing the call: the stream is made to be open before the
	// DELETE, and a long reconnect backoff leaves the 404 path to the call,
	// which is what this test is about.
	b, rec, _, _ := startSDK(t, Config{Name: "expiring", BackoffMin: time.Minute, BackoffMax: time.Minute})
	old := sessionOf(t, rec)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if slices.ContainsFunc(rec.exchanges(), func(e exchange) bool { return e.Method == http.MethodGet }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the GET stream never opened")
		}
	}
	// The server forgets the session (as after a restart or a timeout).
	req, _ := http.NewRequest(http.MethodDelete, b.cfg.URL, nil)
	req.Header.Set(hdrSession, old)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	m, err := call(context.Background(), b, mcp.MethodToolsCall, `{"name":"hello","arguments":{}}`)
	if err != nil || m.Error != nil || !bytes.Contains(m.Result, []byte("hello")) {
		t.Fatalf("call after expiry: %v %+v", err, m)
	}
	inits, got404 := 0, false
	for _, e := range rec.exchanges() {
		if isInitialize(e) {
			inits++
		}
		if e.Method == http.MethodPost && e.Header.Get(hdrSession) == old && e.Status == http.StatusNotFound && bytes.Contains(e.Body, []byte(`"tools/call"`)) {
			got404 = true
		}
	}
	if inits != 2 || !got404 {
		t.Errorf("initialize sent %d times, tools/call got 404: %v; want a 404 then one new initialize", inits, got404)
	}
	if st := b.Status(); st.State != backend.StateReady || st.Restarts != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestCloseDeletesSessionAndSendsOnlyOperatorHeaders(t *testing.T) {
	b, rec, _, _ := startSDK(t, Config{Name: "closing", Headers: http.Header{"Authorization": {"Bearer backend-token"}}})
	if _, err := call(context.Background(), b, mcp.MethodToolsList, `{}`); err != nil {
		t.Fatal(err)
	}
	session := sessionOf(t, rec)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var deleted bool
	for _, e := range rec.exchanges() {
		if e.Header.Get("Authorization") != "Bearer backend-token" {
			t.Errorf("%s without the operator's header", e.Method)
		}
		if e.Method == http.MethodDelete && e.Header.Get(hdrSession) == session {
			deleted = true
		}
	}
	if !deleted {
		t.Error("no DELETE for the session")
	}
	if _, err := call(context.Background(), b, mcp.MethodPing, `{}`); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("call after close: %v, want ErrClosed", err)
	}
}

func TestResumesStreamWithLastEventID(t *testing.T) {
	b, rec, _, _ := startSDK(t, Config{Name: "resuming"})
	m, err := call(context.Background(), b, mcp.MethodToolsCall, `{"name":"drop_stream","arguments":{}}`)
	if err != nil || m.Error != nil || !bytes.Contains(m.Result, []byte("resumed")) {
		t.Fatalf("%v %+v", err, m)
	}
	resumed := false
	for _, e := range rec.exchanges() {
		resumed = resumed || (e.Method == http.MethodGet && e.Header.Get(hdrLastEventID) != "")
	}
	if !resumed {
		t.Error("no GET with Last-Event-ID")
	}
}

func TestGETStreamReachesListener(t *testing.T) {
	_, _, s, lis := startSDK(t, Config{Name: "listening"})
	n := 0
	backendtest.Eventually(t, "tools/list_changed from the GET stream", func() bool {
		// Until the stream is up, changes may go nowhere: make new ones.
		n++
		sdk.AddTool(s, &sdk.Tool{Name: fmt.Sprint("extra", n)}, func(context.Context, *sdk.CallToolRequest, any) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{}, nil, nil
		})
		for _, m := range lis.Messages() {
			if m.Method == mcp.NotificationToolsListChanged {
				return true
			}
		}
		return false
	})
}

func TestReconnectsAfterServerRestart(t *testing.T) {
	s := sdk.NewServer(&sdk.Implementation{Name: "restarting", Version: "1"}, nil)
	handler := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)

	b := New(Config{Name: "restarting", URL: "http://" + addr, BackoffMin: time.Millisecond, BackoffMax: 50 * time.Millisecond})
	closeOnCleanup(t, b)
	if err := b.Start(startCtx(t)); err != nil {
		t.Fatal(err)
	}
	srv.Close() // the server goes away, sessions and all
	if _, err := call(context.Background(), b, mcp.MethodPing, `{}`); err == nil {
		t.Fatal("call succeeded with the server down")
	} else if !errors.Is(err, backend.ErrConnectionLost) && !backend.NotDelivered(err) {
		t.Fatalf("err = %v, want ErrConnectionLost, ErrUnavailable or ErrNotDelivered", err)
	}

	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv2 := &http.Server{Handler: sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)}
	go srv2.Serve(l2)
	t.Cleanup(func() { srv2.Close() })
	backendtest.Eventually(t, "the backend to reconnect", func() bool {
		m, err := call(context.Background(), b, mcp.MethodPing, `{}`)
		return err == nil && m.Error == nil
	})
	if st := b.Status(); st.Restarts < 1 {
		t.Errorf("status %+v, want a restart", st)
	}
}

func TestSSEReconnectsAfterStreamDrop(t *testing.T) {
	s := sdk.NewServer(&sdk.Implementation{Name: "legacy", Version: "1"}, nil)
	srv := httptest.NewServer(sdk.NewSSEHandler(func(*http.Request) *sdk.Server { return s }, nil))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	b := NewSSE(Config{Name: "legacy", URL: srv.URL, BackoffMin: time.Millisecond})
	closeOnCleanup(t, b)
	if err := b.Start(startCtx(t)); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections() // the stream drops
	backendtest.Eventually(t, "re-initialize on a new stream", func() bool {
		st := b.Status()
		return st.State == backend.StateReady && st.Restarts == 1
	})
	if m, err := call(context.Background(), b, mcp.MethodPing, `{}`); err != nil || m.Error != nil {
		t.Fatalf("ping after reconnect: %v %+v", err, m)
	}
}

// fakeSSE serves a legacy SSE stream that names endpoint, then hangs.
func fakeSSE(t *testing.T, endpoint string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "no", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: endpoint\ndata: %s\n\n", endpoint)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

func TestSSERefusesEndpointOnAnotherOrigin(t *testing.T) {
	evil := &recorder{next: http.NotFoundHandler()}
	evilSrv := httptest.NewServer(evil)
	defer evilSrv.Close()
	srv := fakeSSE(t, evilSrv.URL+"/steal")
	for _, newB := range []func(Config) *Backend{NewSSE, NewAuto} {
		b := newB(Config{Name: "ssrf", URL: srv.URL + "/sse", BackoffMin: time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := b.Start(ctx)
		cancel()
		b.Close(context.Background())
		if err == nil || !strings.Contains(err.Error(), "refusing endpoint") {
			t.Errorf("start: %v, want the endpoint refused", err)
		}
	}
	if n := len(evil.exchanges()); n != 0 {
		t.Errorf("the other origin got %d requests", n)
	}
}

func TestRefusesRedirectToAnotherOrigin(t *testing.T) {
	evil := &recorder{next: http.NotFoundHandler()}
	evilSrv := httptest.NewServer(evil)
	defer evilSrv.Close()
	srv := httptest.NewServer(http.RedirectHandler(evilSrv.URL+"/mcp", http.StatusTemporaryRedirect))
	defer srv.Close()
	b := New(Config{Name: "redirect", URL: srv.URL, Headers: http.Header{"Authorization": {"Bearer backend-token"}}, BackoffMin: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := b.Start(ctx)
	b.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 307") {
		t.Errorf("start: %v, want the redirect refused", err)
	}
	if n := len(evil.exchanges()); n != 0 {
		t.Errorf("the other origin got %d requests", n)
	}
}

func TestUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b := New(Config{Name: "nowhere", URL: "http://" + addr + "/mcp", BackoffMin: time.Millisecond})
	defer b.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := b.Start(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("start: %v", err)
	}
	if _, err := call(context.Background(), b, mcp.MethodPing, `{}`); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("call: %v, want ErrUnavailable", err)
	}
	if st := b.Status(); st.LastError == "" || st.State == backend.StateReady {
		t.Errorf("status %+v", st)
	}
}

func TestReadEvents(t *testing.T) {
	tests := []struct {
		name, in string
		want     []event
	}{
		{"single", "data: {}\n\n", []event{{data: []byte("{}")}}},
		{"fields and CRLF", "event: endpoint\r\nid: 7\r\nretry: 250\r\ndata: /m?s=1\r\n\r\n",
			[]event{{name: "endpoint", id: "7", retry: 250 * time.Millisecond, data: []byte("/m?s=1")}}},
		{"multi-line data and comments", ": ping\ndata: a\ndata:b\n\n", []event{{data: []byte("a\nb")}}},
		{"id only", "id: 9\n\n", []event{{id: "9"}}},
		{"unterminated event dropped", "data: x\n\ndata: cut", []event{{data: []byte("x")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []event
			readEvents(strings.NewReader(tc.in), 1<<20, func(e *event) bool {
				got = append(got, *e)
				return true
			})
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if err := readEvents(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 10, func(*event) bool { return true }); !errors.Is(err, errEventTooLarge) {
		t.Errorf("oversized event: %v", err)
	}
}
