// Package flakytest is an MCP server for resilience tests: a real go-sdk
// server over Streamable HTTP that counts how often each tool ran, behind a
// front that fails on purpose — a 503 before the request reaches the server,
// a connection dropped after the server ran it, or everything down. Tests of
// retries and circuit breaking use it to prove what reached the server.
package flakytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Options configure a Server.
type Options struct {
	// Name is the server's name, and the scheme of its resources
	// ("<name>://readme", "<name>://items/{id}"). Default "flaky".
	Name string
	// PageSize makes list results paginate (0: the SDK's default).
	PageSize int
	// Addr is the address to listen on ("127.0.0.1:0" by default); give a
	// fixed one to restart a server where it was.
	Addr string
}

// Server is a running flaky MCP server.
type Server struct {
	URL  string // the MCP endpoint
	Addr string // host:port it listens on
	name string

	srv    *mcp.Server
	hs     *httptest.Server
	cancel context.CancelFunc // ends every request's context

	mu          sync.Mutex
	failNext    int // tools/call POSTs to answer 503 before the server sees them
	dropNext    int // tools/call POSTs to run, then drop the connection
	down        bool
	executions  map[string]int
	cancels     int // notifications/cancelled messages received
	interrupted int // sleep calls whose context ended first
	posts       []string
}

// Start starts a server that stops when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Name == "" {
		o.Name = "flaky"
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	s := &Server{name: o.Name, executions: map[string]int{}}
	s.srv = s.mcpServer(o)
	// One MCP server for every session, so list changes and resource
	// updates reach them all.
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.srv }, &mcp.StreamableHTTPOptions{})
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		t.Fatal(err)
	}
	s.hs = httptest.NewUnstartedServer(s.front(h))
	// Requests (the session's endless GET stream above all) end when the
	// server closes, or Close would wait for them forever.
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.hs.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	s.hs.Listener.Close()
	s.hs.Listener = ln
	s.hs.Start()
	s.Addr = ln.Addr().String()
	s.URL = s.hs.URL + "/mcp"
	t.Cleanup(s.Close)
	return s
}

// Close stops the server, dropping open connections.
func (s *Server) Close() {
	s.cancel()
	s.hs.CloseClientConnections()
	s.hs.Close()
}

func (s *Server) mcpServer(o Options) *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: o.Name, Version: "1.0.0"}, &mcp.ServerOptions{
		Instructions:       "the " + o.Name + " test server",
		PageSize:           o.PageSize,
		SubscribeHandler:   func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	srv.AddTool(&mcp.Tool{Name: "count", Description: "counts its executions", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n := s.ran("count")
			return text(fmt.Sprintf("%s count=%d", o.Name, n)), nil
		})
	srv.AddTool(&mcp.Tool{Name: "echo", Description: "answers its arguments", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s.ran("echo")
			return text(o.Name + " echo " + string(req.Params.Arguments)), nil
		})
	srv.AddTool(&mcp.Tool{Name: "sleep", Description: "sleeps for ms milliseconds, or until cancelled",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"ms":{"type":"integer"}}}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s.ran("sleep")
			var a struct{ MS int64 }
			_ = json.Unmarshal(req.Params.Arguments, &a)
			t := time.NewTimer(time.Duration(a.MS) * time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
				return text("slept"), nil
			case <-ctx.Done():
				s.mu.Lock()
				s.interrupted++
				s.mu.Unlock()
				return nil, ctx.Err()
			}
		})
	srv.AddTool(&mcp.Tool{Name: "ask", Description: "asks the client to sample", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s.ran("ask")
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 8,
				Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: o.Name}}}})
			if err != nil {
				return nil, err
			}
			t, _ := res.Content.(*mcp.TextContent)
			if t == nil {
				return text(o.Name + " sampled nothing"), nil
			}
			return text(o.Name + " sampled " + t.Text), nil
		})
	srv.AddPrompt(&mcp.Prompt{Name: "greet", Description: "a greeting"},
		func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello from " + o.Name}}}}, nil
		})
	srv.AddResource(&mcp.Resource{Name: "readme", URI: o.Name + "://readme", MIMEType: "text/plain"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: o.Name + " readme"}}}, nil
		})
	srv.AddResourceTemplate(&mcp.ResourceTemplate{Name: "item", URITemplate: o.Name + "://items/{id}"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: o.Name + " item " + req.Params.URI}}}, nil
		})
	return srv
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func (s *Server) ran(tool string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.executions[tool]++
	return s.executions[tool]
}

// AddTool adds a tool answering "added" (the server then tells its
// sessions that its tool list changed).
func (s *Server) AddTool(name string) {
	s.srv.AddTool(&mcp.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s.ran(name)
			return text("added"), nil
		})
}

// ResourceUpdated tells the sessions subscribed to uri that it changed.
func (s *Server) ResourceUpdated(uri string) error {
	return s.srv.ResourceUpdated(context.Background(), &mcp.ResourceUpdatedNotificationParams{URI: uri})
}

// FailNext answers the next n tools/call requests with 503 before the MCP
// server sees them.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	s.failNext = n
	s.mu.Unlock()
}

// DropNext lets the next n tools/call requests run, then closes their
// connections without sending the answer.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	s.dropNext = n
	s.mu.Unlock()
}

// SetDown makes every request (any method) fail with 503, or stops that.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Executions reports how often tool ran.
func (s *Server) Executions(tool string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.executions[tool]
}

// Cancels reports how many notifications/cancelled the server received.
func (s *Server) Cancels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancels
}

// Interrupted reports how many sleep calls ended because their context did.
func (s *Server) Interrupted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interrupted
}

// Methods returns the JSON-RPC methods POSTed so far, in order.
func (s *Server) Methods() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.posts...)
}

// front wraps the MCP handler with the failure modes.
func (s *Server) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var method string
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var m struct {
				Method string `json:"method"`
			}
			_ = json.Unmarshal(body, &m)
			method = m.Method
		}
		s.mu.Lock()
		if method != "" {
			s.posts = append(s.posts, method)
		}
		if method == "notifications/cancelled" {
			s.cancels++
		}
		down := s.down
		fail, drop := false, false
		if method == "tools/call" && !down {
			switch {
			case s.failNext > 0:
				s.failNext--
				fail = true
			case s.dropNext > 0:
				s.dropNext--
				drop = true
			}
		}
		s.mu.Unlock()
		switch {
		case down || fail:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "flakytest: unavailable", http.StatusServiceUnavailable)
		case drop:
			s.runAndDrop(next, w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// runAndDrop serves r into a buffer (the tool runs to completion), then
// closes the client's connection without writing a byte of the answer.
func (s *Server) runAndDrop(next http.Handler, w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, not a clean close
	}
	conn.Close()
}

// Port returns the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}
