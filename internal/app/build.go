package app

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/backend/httpmcp"
	"github.com/paygate/paygate/internal/backend/stdio"
	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// newBackend builds the backend the config names, and a one-line
// description of it for the banner.
func (a *App) newBackend() (backend.Backend, string, error) {
	cfg := a.cfg
	switch {
	case len(cfg.Servers) > 0:
		return a.newRouter() // backends.go
	case cfg.RemoteURL != "":
		h := http.Header{}
		for k, v := range cfg.RemoteHeaders {
			h.Set(k, v)
		}
		hc := httpmcp.Config{Name: a.backendName(), URL: cfg.RemoteURL, Headers: h, Logger: a.log, ClientName: "paygate", ClientVersion: a.version}
		desc := "remote " + redactURL(cfg.RemoteURL)
		switch cfg.RemoteTransport {
		case "streamable":
			return a.resilient(httpmcp.New(hc)), desc + " (Streamable HTTP)", nil
		case "sse":
			return a.resilient(httpmcp.NewSSE(hc)), desc + " (legacy HTTP+SSE)", nil
		default:
			return a.resilient(httpmcp.NewAuto(hc)), desc, nil
		}
	default:
		argv, err := cfg.StdioArgv(stdio.SplitCommand)
		if err != nil {
			return nil, "", fmt.Errorf("--server: %w", err)
		}
		if len(argv) == 0 {
			return nil, "", fmt.Errorf("no backend: pass --server \"<command>\" or --remote-url URL (see paygate wrap --help)")
		}
		b := stdio.New(stdio.Config{Name: a.backendName(), Argv: argv, Logger: a.log, ClientName: "paygate", ClientVersion: a.version})
		return a.resilient(b), "stdio " + strings.Join(argv, " "), nil
	}
}

// redactURL keeps scheme, host and path: query strings often carry tokens.
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if at := strings.Index(u, "@"); at >= 0 {
		if s := strings.Index(u, "://"); s >= 0 && s < at {
			u = u[:s+3] + u[at+1:]
		}
	}
	return u
}

// policySettings converts the config's pricing and limit keys.
func policySettings(cfg *config.Config) policy.Settings {
	def := credits.Credits(cfg.DefaultCreditsPerCall)
	rl := cfg.GlobalRateLimitPerMin
	s := policy.Settings{
		DefaultPrice:          &def,
		GlobalRateLimitPerMin: &rl,
		GlobalQuota: store.Quota{
			DailyCalls:     cfg.GlobalQuota.DailyCalls,
			MonthlyCalls:   cfg.GlobalQuota.MonthlyCalls,
			DailyCredits:   credits.Credits(cfg.GlobalQuota.DailyCredits),
			MonthlyCredits: credits.Credits(cfg.GlobalQuota.MonthlyCredits),
		},
		FreeMethods:     cfg.FreeMethods,
		Shadow:          cfg.ShadowMode,
		RefundOnFailure: cfg.RefundOnFailure,
		ToolTimeout:     time.Duration(cfg.ToolTimeoutMs) * time.Millisecond,
		Cache:           cacheSettings(cfg), // features.go
	}
	if len(cfg.ToolPricing) > 0 {
		s.ToolPricing = make(map[string]policy.ToolPolicy, len(cfg.ToolPricing))
		for tool, tp := range cfg.ToolPricing {
			p := policy.ToolPolicy{
				CreditsPerKbInput: credits.Credits(tp.CreditsPerKbInput),
				RateLimitPerMin:   tp.RateLimitPerMin,
				TimeoutMs:         tp.TimeoutMs,
			}
			if tp.CreditsPerCall != nil {
				v := credits.Credits(*tp.CreditsPerCall)
				p.CreditsPerCall = &v
			}
			if tp.CacheTTLSeconds != nil {
				ttl := time.Duration(*tp.CacheTTLSeconds) * time.Second
				p.CacheTTL = &ttl
			}
			s.ToolPricing[tool] = p
		}
	}
	return s
}

// buildRules builds the policy snapshot and the gate chain for cfg.
func (a *App) buildRules(cfg *config.Config) (*gateway.Rules, error) {
	p, err := policy.New(policySettings(cfg))
	if err != nil {
		return nil, err
	}
	// With Redis, reading an account is a round trip and Reserve re-checks the
	// limits atomically anyway: one round trip per charged call.
	chain, err := gate.New(gate.Options{Policy: p, Keys: a.store, Limiter: a.limiter, AtomicLimits: a.cfg.RedisURL != "",
		Concurrency: a.features.conc})
	if err != nil {
		return nil, err
	}
	return &gateway.Rules{Policy: p, Chain: chain, ListAliases: cfg.ListToolAliases}, nil
}

// trustedProxies parses --trusted-proxies entries (addresses or CIDRs).
func trustedProxies(list []string) ([]netip.Prefix, error) {
	return gate.ParseIPAllowlist(list)
}

// backendName is the backend's display name: the operator's --name when one
// was given, else "backend".
func (a *App) backendName() string {
	if a.cfg.Name != "" && a.cfg.Name != config.DefaultName {
		return a.cfg.Name
	}
	return "backend"
}
