package app

import (
	"testing"

	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/toolalias"
)

// TestFeaturesReload: a reload applies the call-control keys that changed
// and leaves runtime changes to the others in place.
func TestFeaturesReload(t *testing.T) {
	cfg := config.Defaults()
	cfg.MaxConcurrentPerKey = 2
	cfg.ToolAliases = map[string]config.ToolAlias{"old": {To: "new"}}
	f, err := newFeatures(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Runtime changes through the admin API.
	_ = f.conc.Update(func(l *gate.ConcurrencyLimits) { l.PerKey = 5 })
	_ = f.aliases.Set(toolalias.Alias{From: "older", To: "new"})

	// A reload that changes neither keeps them; the cache bounds always follow.
	next := cfg.Clone()
	next.DefaultCreditsPerCall = 9
	next.MaxCacheEntries = 7
	if err := f.reload(cfg, next); err != nil {
		t.Fatal(err)
	}
	if f.conc.Limits().PerKey != 5 || len(f.aliases.List()) != 2 || f.cache.Stats().MaxEntries != 7 {
		t.Fatalf("after an unrelated reload: %+v, %v", f.conc.Limits(), f.aliases.List())
	}

	// A reload that changes them replaces the runtime values.
	changed := next.Clone()
	changed.ToolPricing = map[string]config.ToolPrice{"search": {MaxConcurrent: 1}}
	changed.ToolAliases = map[string]config.ToolAlias{"legacy": {To: "new"}}
	if err := f.reload(next, changed); err != nil {
		t.Fatal(err)
	}
	if l := f.conc.Limits(); l.PerKey != 2 || l.Tools["search"] != 1 {
		t.Fatalf("limits %+v", l)
	}
	if l := f.aliases.List(); len(l) != 1 || l[0].From != "legacy" {
		t.Fatalf("aliases %+v", l)
	}
}
