package app

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/paygate/paygate/internal/admin"
	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/store"
)

// ReloadResult reports what a reload applied.
type ReloadResult struct {
	Changed  []string `json:"changed"`
	Skipped  []string `json:"skipped"`
	Warnings []string `json:"warnings"`
}

// Reload re-reads the config file (path, or the one the gateway started
// with), validates the whole new config and, only if it is valid, swaps in
// the hot-reloadable parts: the pricing and limit policy (gateway rules),
// CORS and custom headers (the HTTP policy). Keys that need a restart are
// reported as skipped and keep their running values. An invalid file
// changes nothing. Requests in flight keep the policy they started with.
func (a *App) Reload(path string) (*ReloadResult, error) {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	old := a.cfg
	if path == "" {
		path = old.Source
	}
	if path == "" {
		return nil, admin.ErrNoConfigFile
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
	// The running config keeps every restart-only key, so the next reload
	// compares against what is actually in effect.
	merged := old.Clone()
	applyHot(merged, next)
	a.gw.SetRules(rules)
	if err := a.features.reload(old, merged); err != nil { // features.go; Validate has vetted these keys
		res.Warnings = append(res.Warnings, err.Error())
	}
	a.http.Store(newHTTPPolicy(merged))
	a.cfg = merged
	return res, nil
}

// applyHot copies the fields tagged reload:"hot" from src to dst.
func applyHot(dst, src *config.Config) {
	dv, sv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	t := dv.Type()
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && f.Tag.Get("reload") == "hot" {
			dv.Field(i).Set(sv.Field(i))
		}
	}
}

// reloadOnSignal is SIGHUP: the reload of POST /config/reload, logged and
// audited.
func (a *App) reloadOnSignal() {
	ev := store.AuditEvent{Time: time.Now(), Actor: "signal:SIGHUP"}
	if res, err := a.Reload(""); err != nil {
		a.log.Error("config reload refused; nothing changed", "err", err)
		ev.Type, ev.Message = "config.reload_failed", "config reload refused; nothing changed"
	} else {
		a.log.Info("config reloaded", "changed", res.Changed, "skipped", res.Skipped, "warnings", res.Warnings)
		ev.Type = "config.reloaded"
		ev.Message = fmt.Sprintf("Config reloaded: %d fields updated", len(res.Changed))
		ev.Metadata = map[string]any{"changed": res.Changed, "skipped": res.Skipped}
	}
	a.store.AppendAudit(ev)
}
