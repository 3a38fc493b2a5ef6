// Package app wires paygate together and runs it: it opens the store,
// starts the backend, builds the policy and gate chain, mounts the MCP
// endpoint and the HTTP API on one server, prints the banner, reloads on
// SIGHUP and drains on shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/cli"
	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/gateway"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/metrics"
	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/store"
)

// App is one running gateway.
type App struct {
	cfg     *config.Config
	cfgMu   sync.Mutex // guards cfg swaps on reload
	io      cli.IO
	log     *slog.Logger
	version string
	started time.Time

	store    store.Store
	backend  backend.Backend
	limiter  *ratelimit.Local
	metrics  *metrics.Metrics
	gw       *gateway.Gateway
	mcp      *streamable.Server
	server   *http.Server
	draining atomic.Bool
}

// Run starts the gateway described by cfg and blocks until ctx ends, then
// drains in-flight requests, stops the backend and closes the store.
func Run(ctx context.Context, cfg *config.Config, io cli.IO) error {
	a := &App{cfg: cfg, io: io, version: cli.Version(), started: time.Now()}
	a.log = newLogger(cfg, io.Stderr)
	return a.run(ctx)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(orDefault(cfg.LogLevel, "info"))); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (a *App) run(ctx context.Context) (err error) {
	cfg := a.cfg

	// Store.
	st, storeDesc, err := a.openStore(ctx)
	if err != nil {
		return fmt.Errorf("open state: %w", err)
	}
	a.store = st
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close state: %w", cerr)
		}
	}()
	adminShown, adminNote, err := a.bootstrapAdmin(ctx)
	if err != nil {
		return fmt.Errorf("admin key: %w", err)
	}
	imported, err := a.importKeys(ctx)
	if err != nil {
		return err
	}

	// Backend.
	be, beDesc, err := a.newBackend()
	if err != nil {
		return err
	}
	a.backend = be

	// Policy, limits, metrics, gateway.
	a.limiter = ratelimit.NewLocal(ratelimit.Options{})
	rules, err := a.buildRules(cfg)
	if err != nil {
		return fmt.Errorf("pricing and limits: %w", err)
	}
	a.metrics = metrics.New(metrics.Options{Version: a.version, Start: a.started})
	trusted, err := trustedProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("trustedProxies: %w", err)
	}
	a.gw = gateway.New(gateway.Options{
		Backend: be, Store: st, Rules: rules, Limiter: a.limiter, Metrics: a.metrics, Logger: a.log,
		ClientIP: &gateway.ClientIPResolver{Trusted: trusted}, ServerName: serverName(cfg),
	})
	a.mcp = streamable.New(a.gw, streamable.Options{
		BindHost:           cfg.Host,
		AllowedHosts:       cfg.AllowedHosts,
		AllowedOrigins:     cfg.AllowedOrigins,
		MaxBodyBytes:       int64(cfg.MaxBodyBytes),
		SessionIdleTimeout: time.Duration(cfg.SessionTimeout),
		MaxSessions:        cfg.MaxSessions,
		Logger:             a.log,
		OnSessionCount:     func(n int) { a.metrics.ActiveSessions.Set(float64(n)) },
	})

	if cfg.DryRun {
		return a.dryRun(ctx, beDesc)
	}

	// HTTP server.
	a.startPprof()
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on %s:%d: %w (is another process using the port? pick one with --port)", cfg.Host, cfg.Port, err)
	}
	a.server = &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.server.Serve(ln) }()

	// Start the backend: the HTTP server already answers /health meanwhile.
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	startErr := be.Start(startCtx)
	cancel()
	tools := -1
	if startErr == nil {
		tools = a.countTools(ctx)
	} else if ctx.Err() == nil {
		a.log.Warn("backend did not start; it keeps retrying in the background", "backend", be.Name(), "err", startErr)
	}
	a.printBanner(bannerInfo{addr: ln.Addr().String(), backend: beDesc, state: be.Status(), tools: tools,
		adminKey: adminShown, adminNote: adminNote, store: storeDesc, imported: imported})

	// Serve until ctx ends; SIGHUP reloads the config file.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				a.shutdown()
				return fmt.Errorf("http server: %w", err)
			}
			return nil
		case <-hup:
			if res, err := a.Reload(""); err != nil {
				a.log.Error("reload failed; nothing changed", "err", err)
			} else {
				a.log.Info("config reloaded", "changed", res.Changed, "skipped", res.Skipped)
			}
		case <-ctx.Done():
			a.shutdown()
			return nil
		}
	}
}

// shutdown drains: /health turns 503 at once, requests in flight finish
// (bounded by drainTimeout), then sessions, the backend and the listener
// close.
func (a *App) shutdown() {
	a.draining.Store(true)
	timeout := time.Duration(a.cfg.DrainTimeout)
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	a.log.Info("draining", "inflight", a.gw.InFlight(), "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Wait for MCP requests in flight before closing their streams.
	for a.gw.InFlight() > 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	_ = a.mcp.Close(ctx)
	if err := a.server.Shutdown(ctx); err != nil {
		a.log.Warn("drain timed out; closing remaining connections", "err", err)
		_ = a.server.Close()
	}
	bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer bcancel()
	if err := a.backend.Close(bctx); err != nil {
		a.log.Warn("backend close", "err", err)
	}
	a.log.Info("stopped")
}

// handler builds the HTTP routes.
func (a *App) handler() http.Handler {
	mux := http.NewServeMux()
	patterns := map[string]bool{"/mcp": true, "/health": true, "/ready": true, "/metrics": true}
	mux.Handle("/mcp", a.mcpGuard(a.mcp))
	mux.HandleFunc("GET /health", a.serveHealth)
	mux.HandleFunc("GET /ready", a.serveReady)
	mux.Handle("GET /metrics", a.metrics.Handler())
	a.mountAPI(mux, patterns)
	c := corsPolicy{}
	if a.cfg.CORS != nil {
		c = corsPolicy{origins: a.cfg.CORS.Origin, credentials: a.cfg.CORS.Credentials, maxAge: a.cfg.CORS.MaxAge}
	}
	return &middleware{next: mux, version: a.version, headers: a.cfg.CustomHeaders, cors: c, metrics: a.metrics, log: a.log, routeOf: routeLabel(patterns)}
}

// serverName is the serverInfo.name clients see: the backend's own unless
// the operator set --name.
func serverName(cfg *config.Config) string {
	if cfg.Name == config.DefaultName {
		return ""
	}
	return cfg.Name
}
