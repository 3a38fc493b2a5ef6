package app

import (
	"errors"
	"fmt"

	"github.com/paygate/paygate/internal/config"
)

// ReloadResult reports what a reload applied.
type ReloadResult struct {
	Changed  []string `json:"changed"`
	Skipped  []string `json:"skipped"`
	Warnings []string `json:"warnings"`
}

// Reload re-reads the config file (path, or the one the gateway started
// with), validates the whole new config and, only if it is valid, swaps in
// the hot-reloadable parts. Keys that need a restart are reported as
// skipped. An invalid file changes nothing.
func (a *App) Reload(path string) (*ReloadResult, error) {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	old := a.cfg
	if path == "" {
		path = old.Source
	}
	if path == "" {
		return nil, errors.New("the gateway was started without --config; there is no file to reload")
	}
	next, diags, err := old.Reload(path)
	if err != nil {
		return nil, err
	}
	res := &ReloadResult{Changed: []string{}, Skipped: []string{}, Warnings: []string{}}
	var errs []error
	for _, d := range diags {
		if d.Level == config.LevelError {
			errs = append(errs, fmt.Errorf("%s: %s", d.Path, d.Message))
		} else {
			res.Warnings = append(res.Warnings, d.Path+": "+d.Message)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	rules, err := a.buildRules(next)
	if err != nil {
		return nil, err
	}
	res.Changed, res.Skipped = config.Reloadable(old, next)
	if res.Changed == nil {
		res.Changed = []string{}
	}
	if res.Skipped == nil {
		res.Skipped = []string{}
	}
	a.gw.SetRules(rules)
	// Keep the running values of keys that need a restart, so the next
	// reload compares against what is actually in effect.
	merged := next.Clone()
	keepRestartOnly(merged, old)
	a.cfg = merged
	return res, nil
}

// keepRestartOnly copies the keys that cannot change at runtime from old.
func keepRestartOnly(dst, old *config.Config) {
	dst.ServerCommand, dst.ServerArgs, dst.ServerArgv = old.ServerCommand, old.ServerArgs, old.ServerArgv
	dst.RemoteURL, dst.RemoteHeaders, dst.RemoteTransport = old.RemoteURL, old.RemoteHeaders, old.RemoteTransport
	dst.Servers = old.Servers
	dst.Host, dst.Port = old.Host, old.Port
	dst.StateFile, dst.InMemory, dst.Sync, dst.RedisURL = old.StateFile, old.InMemory, old.Sync, old.RedisURL
	dst.OAuth = old.OAuth
	dst.AdminKey = old.AdminKey
	dst.MaxBodyBytes, dst.SessionTimeout, dst.MaxSessions = old.MaxBodyBytes, old.SessionTimeout, old.MaxSessions
	dst.AllowedHosts, dst.AllowedOrigins, dst.TrustedProxies = old.AllowedHosts, old.AllowedOrigins, old.TrustedProxies
	dst.LogFormat, dst.LogLevel = old.LogFormat, old.LogLevel
	dst.Source = old.Source
}
