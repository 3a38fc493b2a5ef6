package app

import (
	"context"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/admin"
	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// newAPI builds the HTTP API: the admin routes, the API-key holder's
// routes, and — through the Runtime — the public probe and discovery
// routes, maintenance, config reload, the docs and the MCP endpoint
// (mcpHandler). It is the one route table the server mounts.
func (a *App) newAPI(mcpHandler http.Handler) *admin.API {
	cfg := a.cfg
	return admin.New(admin.Options{
		Store:   a.store,
		Policy:  func() *policy.Snapshot { return a.gw.Rules().Policy },
		Limiter: a.limiter,
		Logger:  a.log,
		MaxBody: int64(cfg.MaxBodyBytes),
		Audit:   a.audit,
		Runtime: &admin.Runtime{
			Name:    orDefault(cfg.Name, "paygate"),
			Version: a.version,
			Started: a.started,
			Status: func() admin.RuntimeStatus {
				return admin.RuntimeStatus{InFlight: a.gw.InFlight(), Draining: a.draining.Load(),
					Backends: backend.Statuses(a.backend)}
			},
			Server:                a.serverInfo,
			Tools:                 a.tools.Tools,
			MCP:                   mcpHandler,
			Metrics:               a.metrics.Handler(),
			Maintenance:           a.gw.Maintenance,
			SetMaintenance:        a.gw.SetMaintenance,
			Reload:                a.reloadForAPI,
			ConfigFile:            cfg.Source,
			ClientIP:              a.clientIP.ClientIP,
			PublicRateLimitPerMin: cfg.PublicRateLimitPerMin,
			Features: map[string]bool{
				"redis":           cfg.RedisURL != "",
				"persistentState": !cfg.InMemory,
				"oauth":           false, // not in this build
				"multiServer":     len(cfg.Servers) > 0,
				"webhooks":        false,
			},
		},
		Circuits: a.breakers,         // backends.go
		Calls:    a.features.admin(), // features.go
	})
}

// serverInfo describes the backend for /info and /.well-known/mcp.json.
func (a *App) serverInfo() admin.ServerInfo {
	info := admin.ServerInfo{Transport: a.backend.Status().Transport}
	if init := a.backend.Initialize(); init != nil {
		info.ProtocolVersion, info.ServerInfo, info.Capabilities = init.ProtocolVersion, init.ServerInfo, init.Capabilities
	}
	return info
}

// reloadForAPI is POST /config/reload: the same reload as SIGHUP.
func (a *App) reloadForAPI() (admin.ReloadResult, error) {
	res, err := a.Reload("")
	if err != nil {
		return admin.ReloadResult{}, err
	}
	return admin.ReloadResult{Changed: res.Changed, Skipped: res.Skipped, Warnings: res.Warnings}, nil
}

// buildCommit is the VCS revision the binary was built from, if recorded.
func buildCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// activeKeyCounter returns the paygate_active_keys_total gauge function:
// the number of usable keys (not revoked, suspended or expired), counted
// at most once per ttl so frequent scrapes stay cheap on large stores.
func activeKeyCounter(st store.Store, ttl time.Duration) func() float64 {
	var mu sync.Mutex
	var at time.Time
	var n float64
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		if !at.IsZero() && time.Since(at) < ttl {
			return n
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, total, err := st.ListKeys(ctx, store.KeyFilter{Status: "active", Limit: 1}); err == nil {
			n, at = float64(total), time.Now()
		}
		return n
	}
}
