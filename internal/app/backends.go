package app

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/backend/httpmcp"
	"github.com/paygate/paygate/internal/backend/resilience"
	"github.com/paygate/paygate/internal/backend/router"
	"github.com/paygate/paygate/internal/backend/stdio"
	"github.com/paygate/paygate/internal/config"
)

// Multi-server mode and the resilience decorators: every transport
// backend is wrapped as
//
//	Breaker → Retrier → transport
//
// (each only when configured), and in multi-server mode the wrapped
// backends sit under one router.Router. Further per-backend decorators
// (concurrency limits, a response cache) belong in resilient; one that can
// refuse a call before it is charged implements backend.Admitter, which the
// gateway consults before reserving credits.

// resilient wraps a transport backend in the retry policy and the circuit
// breaker the config asks for, and records the breaker for /admin/circuit.
func (a *App) resilient(b backend.Backend) backend.Backend {
	cfg := a.cfg
	if cfg.RetryMaxRetries > 0 {
		b = resilience.NewRetrier(b, resilience.RetryConfig{
			MaxRetries:    cfg.RetryMaxRetries,
			BaseDelay:     time.Duration(cfg.RetryBaseDelayMs) * time.Millisecond,
			MaxDelay:      time.Duration(cfg.RetryMaxDelayMs) * time.Millisecond,
			BudgetPercent: cfg.RetryBudgetPercent,
			Logger:        a.log,
		})
	}
	if cfg.CircuitBreakerThreshold > 0 {
		br := resilience.NewBreaker(b, resilience.BreakerConfig{
			Threshold: cfg.CircuitBreakerThreshold,
			Cooldown:  time.Duration(cfg.CircuitBreakerCooldownSeconds) * time.Second,
			Logger:    a.log,
		})
		a.breakers = append(a.breakers, br)
		b = br
	}
	return b
}

// newRouter builds multi-server mode: one backend per entry of servers,
// named by its prefix, behind a router.
func (a *App) newRouter() (backend.Backend, string, error) {
	cfg := a.cfg
	routes := make([]router.Route, 0, len(cfg.Servers))
	descs := make([]string, 0, len(cfg.Servers))
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		b, desc, err := a.newServer(s)
		if err != nil {
			return nil, "", fmt.Errorf("servers[%d] (%s): %w", i, s.Prefix, err)
		}
		routes = append(routes, router.Route{Prefix: s.Prefix, Backend: a.resilient(b)})
		descs = append(descs, s.Prefix+": "+desc)
	}
	r, err := router.New(router.Config{
		Name: orDefault(cfg.Name, config.DefaultName), Version: a.version, Separator: cfg.ToolSeparator,
		Routes: routes, Logger: a.log,
	})
	if err != nil {
		return nil, "", err
	}
	return r, fmt.Sprintf("%d servers, tools named prefix%sname (%s)", len(routes), cfg.ToolSeparator, strings.Join(descs, "; ")), nil
}

// newServer builds the transport backend of one servers entry.
func (a *App) newServer(s *config.Server) (backend.Backend, string, error) {
	if s.RemoteURL != "" {
		h := http.Header{}
		for k, v := range s.Headers {
			h.Set(k, v)
		}
		hc := httpmcp.Config{Name: s.Prefix, URL: s.RemoteURL, Headers: h, Logger: a.log, ClientName: "paygate", ClientVersion: a.version}
		desc := "remote " + redactURL(s.RemoteURL)
		switch s.RemoteTransport {
		case "streamable":
			return httpmcp.New(hc), desc, nil
		case "sse":
			return httpmcp.NewSSE(hc), desc + " (legacy SSE)", nil
		default:
			return httpmcp.NewAuto(hc), desc, nil
		}
	}
	argv, err := s.StdioArgv(stdio.SplitCommand)
	if err != nil {
		return nil, "", err
	}
	if len(argv) == 0 {
		return nil, "", fmt.Errorf("neither serverCommand nor remoteUrl is set")
	}
	var env []string
	if len(s.Env) > 0 {
		env = os.Environ()
		for k, v := range s.Env {
			env = append(env, k+"="+v)
		}
	}
	b := stdio.New(stdio.Config{Name: s.Prefix, Argv: argv, Env: env, Logger: a.log, ClientName: "paygate", ClientVersion: a.version})
	return b, "stdio " + argv[0], nil
}
