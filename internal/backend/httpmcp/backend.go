// Package httpmcp connects paygate to MCP servers over HTTP: the
// Streamable HTTP transport (2025-03-26 and later) and the legacy HTTP+SSE
// transport (2024-11-05), or whichever of the two a server speaks.
package httpmcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/backend/httpmcp/h1"
)

// Transport names, as reported in backend.Status.
const (
	transportStreamable = "streamable-http"
	transportSSE        = "sse"
	transportAuto       = "auto"
)

// Backend is an MCP server reached over HTTP.
type Backend struct {
	backend.Forward // the methods the Mux answers

	cfg    Config
	client *http.Client
	log    *slog.Logger
	mux    *backend.Mux
	sup    *backend.Supervisor
	// fast sends the Streamable HTTP POSTs when the server is plain http
	// and reached directly (see leanClient); nil otherwise. slow turns it
	// off for good once the server answered with a redirect, which only
	// net/http follows.
	fast *h1.Client
	slow atomic.Bool

	mu     sync.Mutex
	dialer backend.DialFunc // the transport; for auto, the detection until it succeeds
	auto   bool             // still detecting
}

var (
	_ backend.Backend       = (*Backend)(nil)
	_ backend.PeerForgetter = (*Backend)(nil)
)

// New returns a Streamable HTTP backend. Nothing is sent until Start.
func New(cfg Config) *Backend { return newBackend(cfg, transportStreamable) }

// NewSSE returns a legacy HTTP+SSE backend; cfg.URL is the SSE URL.
func NewSSE(cfg Config) *Backend { return newBackend(cfg, transportSSE) }

// NewAuto returns a backend that speaks Streamable HTTP, or legacy HTTP+SSE
// when the server refuses the Streamable HTTP initialize with 400, 404 or
// 405 and a GET of the same URL names an endpoint. The choice is made at
// the first connection and kept.
func NewAuto(cfg Config) *Backend { return newBackend(cfg, transportAuto) }

func newBackend(cfg Config, transport string) *Backend {
	custom := cfg.Client != nil
	cfg.defaults()
	b := &Backend{cfg: cfg, client: cfg.Client, log: cfg.Logger.With("backend", cfg.Name)}
	if !custom && transport != transportSSE {
		b.fast = leanClient(cfg, b.log, http.ProxyFromEnvironment)
	}
	b.mux = backend.NewMux(backend.MuxConfig{
		Name: cfg.Name, Transport: transport, Logger: cfg.Logger,
		ClientName: cfg.ClientName, ClientVersion: cfg.ClientVersion,
	})
	b.Forward = backend.ForwardTo(b.mux)
	switch transport {
	case transportSSE:
		b.dialer = b.dialSSE
	case transportAuto:
		b.dialer, b.auto = b.dialAuto, true
	default:
		b.dialer = b.dialStreamable
	}
	b.sup = backend.NewSupervisor(b.mux, b.dial,
		backend.Backoff{Min: cfg.BackoffMin, Max: cfg.BackoffMax}, cfg.Logger)
	return b
}

func (b *Backend) dial(ctx context.Context) (backend.Link, error) {
	b.mu.Lock()
	d := b.dialer
	b.mu.Unlock()
	return d(ctx)
}

// dialAuto tries Streamable HTTP, then legacy SSE; the first that
// completes a handshake is kept (see attach).
func (b *Backend) dialAuto(ctx context.Context) (backend.Link, error) {
	l, err := b.dialStreamable(ctx)
	if err == nil {
		return l, nil
	}
	var se *StatusError
	if !errors.As(err, &se) || (se.Code != http.StatusBadRequest && se.Code != http.StatusNotFound && se.Code != http.StatusMethodNotAllowed) {
		return nil, err
	}
	l, serr := b.dialSSE(ctx)
	if serr != nil {
		return nil, fmt.Errorf("streamable HTTP: %w; legacy SSE: %w", err, serr)
	}
	return l, nil
}

// attach ends a successful handshake. An auto backend first settles on
// the transport that got this far, so that it is known by the time the
// backend reports ready.
func (b *Backend) attach(ctx context.Context, c backend.Conn, res *backend.InitializeResult, transport string, d backend.DialFunc) error {
	b.mu.Lock()
	if b.auto {
		b.auto = false
		b.dialer = d
		b.mux.SetTransport(transport)
		b.log.Info("backend transport detected", "transport", transport)
	}
	b.mu.Unlock()
	return b.mux.Attach(ctx, c, res)
}

// Start implements backend.Backend.
func (b *Backend) Start(ctx context.Context) error { return b.sup.Start(ctx) }

// Close implements backend.Backend: pending calls fail with
// backend.ErrClosed and a Streamable HTTP session is ended with DELETE.
func (b *Backend) Close(ctx context.Context) error {
	err := b.sup.Close(ctx)
	if b.fast != nil {
		b.fast.Close()
	}
	return err
}
