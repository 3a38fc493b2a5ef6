package resilience

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// script is a backend whose calls return scripted outcomes, for the state
// machine tests. The real transports are exercised in real_test.go.
type script struct {
	mu      sync.Mutex
	results []error // one per call, in order; past the end: success
	calls   int
	block   chan struct{} // when non-nil, calls wait for it (or ctx)
}

func (s *script) push(errs ...error) {
	s.mu.Lock()
	s.results = append(s.results, errs...)
	s.mu.Unlock()
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *script) Call(ctx context.Context, req *backend.Request) (*mcp.Message, error) {
	s.mu.Lock()
	s.calls++
	var err error
	if len(s.results) > 0 {
		err, s.results = s.results[0], s.results[1:]
	}
	block := s.block
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err == errRPC {
		return &mcp.Message{ID: req.ID, Error: &mcp.WireError{Code: -32602, Message: "bad arguments"}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &mcp.Message{ID: req.ID, Result: json.RawMessage(`{"content":[]}`)}, nil
}

// errRPC scripts a JSON-RPC error response (an answer, not a failure).
var errRPC = &mcp.WireError{Code: -32602}

func (s *script) Name() string                                             { return "fake" }
func (s *script) Start(context.Context) error                              { return nil }
func (s *script) Notify(context.Context, *mcp.Message, backend.Peer) error { return nil }
func (s *script) Reply(context.Context, *mcp.Message, backend.Peer) error  { return nil }
func (s *script) Initialize() *backend.InitializeResult                    { return nil }
func (s *script) Status() backend.Status {
	return backend.Status{Name: "fake", State: backend.StateReady}
}
func (s *script) SetListener(backend.Listener) {}
func (s *script) Close(context.Context) error  { return nil }

// clock is a fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func call(b backend.Backend) (*mcp.Message, error) {
	return b.Call(context.Background(), &backend.Request{ID: mcp.Int64ID(1), Method: mcp.MethodToolsCall, Params: json.RawMessage(`{"name":"t"}`)})
}
