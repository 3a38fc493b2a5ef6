// Package resilience holds the decorators that keep a misbehaving backend
// from hurting callers: a circuit breaker that fails calls at once while a
// backend keeps failing, and retries of calls that provably never reached
// the server. Each is a backend.Backend around another one:
//
//	gateway → Breaker → Retrier → transport (stdio, httpmcp)
//
// The breaker sits outside the retries, so one call with its retries is one
// success or one failure, and a call the breaker refuses is never retried.
package resilience

import (
	"context"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// wrapped forwards every Backend method to next. The decorators embed it
// and override Call.
type wrapped struct {
	next backend.Backend
}

// Name implements backend.Backend.
func (w *wrapped) Name() string { return w.next.Name() }

// Start implements backend.Backend.
func (w *wrapped) Start(ctx context.Context) error { return w.next.Start(ctx) }

// Notify implements backend.Backend.
func (w *wrapped) Notify(ctx context.Context, n *mcp.Message, from backend.Peer) error {
	return w.next.Notify(ctx, n, from)
}

// Reply implements backend.Backend.
func (w *wrapped) Reply(ctx context.Context, resp *mcp.Message, from backend.Peer) error {
	return w.next.Reply(ctx, resp, from)
}

// Initialize implements backend.Backend.
func (w *wrapped) Initialize() *backend.InitializeResult { return w.next.Initialize() }

// Status implements backend.Backend.
func (w *wrapped) Status() backend.Status { return w.next.Status() }

// SetListener implements backend.Backend.
func (w *wrapped) SetListener(l backend.Listener) { w.next.SetListener(l) }

// Close implements backend.Backend.
func (w *wrapped) Close(ctx context.Context) error { return w.next.Close(ctx) }

// ForgetPeer implements backend.PeerForgetter when next does.
func (w *wrapped) ForgetPeer(p backend.Peer) {
	if f, ok := w.next.(backend.PeerForgetter); ok {
		f.ForgetPeer(p)
	}
}

// admit asks next, when it can tell.
func (w *wrapped) admit(method, tool string) error {
	if a, ok := w.next.(backend.Admitter); ok {
		return a.Admit(method, tool)
	}
	return nil
}
