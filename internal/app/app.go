// Package app wires paygate together and runs it: it opens the store,
// starts the backend, builds the policy and gate chain, mounts the MCP
// endpoint and the HTTP API on one server, prints the banner, reloads on
// SIGHUP and drains on shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/paygate/paygate/internal/audit"
	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/backend/resilience"
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
	limiter  ratelimit.Limiter // Local, or shared on Redis (state.go)
	metrics  *metrics.Metrics
	gw       *gateway.Gateway
	mcp      *streamable.Server
	server   *http.Server
	draining atomic.Bool
	audit    *audit.Recorder // audit.go

	http     atomic.Pointer[httpPolicy] // CORS and custom headers; swapped on reload
	clientIP *gateway.ClientIPResolver
	tools    *toolCache // the backend's tool names, for /pricing
	guard    *mcpGuard  // in front of /mcp: draining, maintenance, in-flight count
	// breakers are the backends' circuit breakers, for /admin/circuit (backends.go).
	breakers resilience.Breakers
	// features are the concurrency caps, response cache and tool aliases (features.go).
	features *features
}

// Run starts the gateway described by cfg and blocks until ctx ends, then
// drains in-flight requests, stops the backend and closes the store.
func Run(ctx context.Context, cfg *config.Config, io cli.IO) error {
	a := &App{cfg: cfg, io: io, version: cli.Version(), started: time.Now()}
	a.log = newLogger(cfg, io.Stderr)
	return a.run(ctx)
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
	defer a.startAudit(ctx)()          // audit.go: summaries and retention; flushed before the store closes
	defer a.startUsageRetention(ctx)() // retention.go
	adminShown, adminNote, err := a.bootstrapAdmin(ctx)
	if err != nil {
		return fmt.Errorf("admin key: %w", err)
	}
	imported, err := a.importKeys(ctx)
	if err != nil {
		return err
	}
	// Loading a large store leaves garbage behind (rows scanned into keys);
	// give it back to the OS now instead of carrying it as idle RSS.
	debug.FreeOSMemory()

	// Backend.
	be, beDesc, err := a.newBackend()
	if err != nil {
		return err
	}
	a.tools = newToolCache(a.listTools)
	a.backend = &watchedBackend{Backend: be, onToolsChanged: a.tools.invalidate}

	// Policy, limits, metrics, gateway.
	a.limiter = a.newLimiter()
	if a.features, err = newFeatures(cfg); err != nil {
		return err
	}
	rules, err := a.buildRules(cfg)
	if err != nil {
		return fmt.Errorf("pricing and limits: %w", err)
	}
	a.metrics = metrics.New(metrics.Options{Version: a.version, Commit: buildCommit(), Start: a.started,
		ActiveKeys: activeKeyCounter(st, 5*time.Second)})
	for _, st := range backend.Statuses(be) { // each server in multi-server mode
		a.metrics.BackendUp.WithLabelValues(st.Name).Set(0)
		a.metrics.BackendRestart.WithLabelValues(st.Name).Add(0)
	}
	trusted, err := trustedProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("trustedProxies: %w", err)
	}
	a.clientIP = &gateway.ClientIPResolver{Trusted: trusted}
	a.gw = gateway.New(gateway.Options{
		Backend: a.backend, Store: st, Rules: rules, Limiter: a.limiter, Metrics: a.metrics, Logger: a.log,
		ClientIP: a.clientIP, ServerName: serverName(cfg), Audit: a.audit,
		Cache: a.features.cache, Aliases: a.features.aliases, Discovery: cfg.Discovery == "dynamic",
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
	a.server.RegisterOnShutdown(a.audit.CloseStreams) // end /admin/events streams so Shutdown need not wait for them
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

	go a.tools.run(ctx, func(err error) { a.log.Warn("tool list refresh failed", "err", err) })

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
			a.reloadOnSignal()
		case <-ctx.Done():
			a.shutdown()
			return nil
		}
	}
}

// shutdown drains: /health and /ready turn 503 and new /mcp requests are
// refused with 503 at once; MCP requests already in flight finish and
// their answers are written (bounded by drainTimeout); then sessions and
// their streams end, the listener closes (new connections are refused),
// the backend stops.
func (a *App) shutdown() {
	a.draining.Store(true)
	a.cfgMu.Lock()
	timeout := time.Duration(a.cfg.DrainTimeout)
	a.cfgMu.Unlock()
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	a.log.Info("draining", "inflight", a.gw.InFlight(), "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Wait until every POST and DELETE /mcp the guard let in has returned,
	// its answer written: closing the transport earlier could cut an
	// answer that is ready but not yet sent.
	for a.guard.active.Load() > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if n := a.guard.active.Load(); n > 0 {
		a.log.Warn("drain timeout: closing with requests in flight", "inflight", n)
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

// handler builds the HTTP routes: every one of them, /mcp included, comes
// from the admin route table (api.go), so the mux, the metrics labels and
// /openapi.json cannot disagree.
func (a *App) handler() http.Handler {
	a.guard = &mcpGuard{next: a.mcp, draining: &a.draining, maintenance: a.gw.Maintenance}
	mux := http.NewServeMux()
	a.newAPI(a.guard).Mount(mux)
	a.http.Store(newHTTPPolicy(a.cfg))
	return &middleware{next: mux, version: a.version, policy: &a.http, metrics: a.metrics, log: a.log, clientIP: a.clientIP}
}

// serverName is the serverInfo.name clients see: the backend's own unless
// the operator set --name.
func serverName(cfg *config.Config) string {
	if cfg.Name == config.DefaultName {
		return ""
	}
	return cfg.Name
}
