package backend

import (
	"context"

	"github.com/paygate/paygate/internal/mcp"
)

// Forward implements the Backend methods a transport hands unchanged to
// its Mux: Name, Call, Notify, Reply, Initialize, Status, SetListener and
// PeerForgetter's ForgetPeer. A transport's Backend embeds the Forward of
// its Mux and adds Start and Close.
type Forward struct{ mux *Mux }

// ForwardTo returns the Forward of m.
func ForwardTo(m *Mux) Forward { return Forward{m} }

// Name implements Backend.
func (f Forward) Name() string { return f.mux.Name() }

// Call implements Backend.
func (f Forward) Call(ctx context.Context, req *Request) (*mcp.Message, error) {
	return f.mux.Call(ctx, req)
}

// Notify implements Backend.
func (f Forward) Notify(ctx context.Context, n *mcp.Message, from Peer) error {
	return f.mux.Notify(ctx, n, from)
}

// Reply implements Backend.
func (f Forward) Reply(ctx context.Context, resp *mcp.Message, from Peer) error {
	return f.mux.Reply(ctx, resp, from)
}

// ForgetPeer implements PeerForgetter.
func (f Forward) ForgetPeer(p Peer) { f.mux.ForgetPeer(p) }

// Initialize implements Backend.
func (f Forward) Initialize() *InitializeResult { return f.mux.Initialize() }

// Status implements Backend.
func (f Forward) Status() Status { return f.mux.Status() }

// SetListener implements Backend.
func (f Forward) SetListener(l Listener) { f.mux.SetListener(l) }
