// Package stdio runs an MCP server as a child process and talks to it over
// newline-delimited JSON on its stdin and stdout, restarting it when it
// dies. One process serves every client: backend.Mux gives each request a
// fresh id so their responses cannot cross.
package stdio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/backend"
)

// Config describes the server process.
type Config struct {
	Name string   // display name; the backend=<name> log attribute
	Argv []string // program and arguments (see SplitCommand)
	Env  []string // the child's environment; nil inherits paygate's
	Dir  string   // working directory; "" is paygate's

	Logger *slog.Logger // also receives the child's stderr, line by line

	ClientName, ClientVersion string // clientInfo sent in initialize

	InitTimeout     time.Duration // spawn to initialized; 60 s (npx may download first)
	BackoffMin      time.Duration // first restart delay; 100 ms
	BackoffMax      time.Duration // restart delay cap; 30 s
	StopTimeout     time.Duration // Close: wait after closing stdin; 2 s
	TermTimeout     time.Duration // Close: wait after SIGTERM before SIGKILL; 2 s
	MaxMessageBytes int           // longest line accepted from the child; 64 MiB
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = 60 * time.Second
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 2 * time.Second
	}
	if c.TermTimeout <= 0 {
		c.TermTimeout = 2 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 20
	}
}

// Backend is a child-process MCP server.
type Backend struct {
	backend.Forward // the methods the Mux answers

	cfg Config
	log *slog.Logger
	mux *backend.Mux
	sup *backend.Supervisor

	mu  sync.Mutex
	cur *child // the latest process, for tests
}

var (
	_ backend.Backend       = (*Backend)(nil)
	_ backend.PeerForgetter = (*Backend)(nil)
)

// New returns a Backend for cfg. Nothing runs until Start.
func New(cfg Config) *Backend {
	cfg.defaults()
	b := &Backend{cfg: cfg, log: cfg.Logger.With("backend", cfg.Name)}
	b.mux = backend.NewMux(backend.MuxConfig{
		Name: cfg.Name, Transport: "stdio", Logger: cfg.Logger,
		ClientName: cfg.ClientName, ClientVersion: cfg.ClientVersion,
	})
	b.Forward = backend.ForwardTo(b.mux)
	b.sup = backend.NewSupervisor(b.mux, b.dial,
		backend.Backoff{Min: cfg.BackoffMin, Max: cfg.BackoffMax}, cfg.Logger)
	return b
}

// dial spawns a process and initializes it.
func (b *Backend) dial(ctx context.Context) (backend.Link, error) {
	if len(b.cfg.Argv) == 0 {
		return nil, errors.New("no command configured")
	}
	c, err := spawn(&b.cfg, b.mux, b.log)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", b.cfg.Argv[0], err)
	}
	b.mu.Lock()
	b.cur = c
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, b.cfg.InitTimeout)
	defer cancel()
	res, err := b.mux.Handshake(ctx, c)
	if err == nil {
		err = b.mux.Attach(ctx, c, res)
	}
	if err != nil {
		c.kill()
		<-c.done
		return nil, err
	}
	return c, nil
}

// Start implements backend.Backend.
func (b *Backend) Start(ctx context.Context) error { return b.sup.Start(ctx) }

// Close implements backend.Backend: pending calls fail with
// backend.ErrClosed and the process group is stopped (stdin closed,
// SIGTERM, SIGKILL).
func (b *Backend) Close(ctx context.Context) error { return b.sup.Close(ctx) }

// current returns the latest child process.
func (b *Backend) current() *child {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur
}
