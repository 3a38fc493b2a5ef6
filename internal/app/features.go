package app

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/admin"
	"github.com/paygate/paygate/internal/cache"
	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/toolalias"
)

// features are the call controls whose state outlives a config reload:
// the in-flight counts and caps, the response cache and the tool aliases.
// Each is created once; a reload changes its settings in place, and only
// when the config's own keys for it changed, so a runtime change made
// through the admin API survives reloads of unrelated keys.
type features struct {
	conc    *gate.Concurrency
	cache   *cache.Cache
	aliases *toolalias.Table
}

func newFeatures(cfg *config.Config) (*features, error) {
	f := &features{aliases: &toolalias.Table{}}
	var err error
	if f.conc, err = gate.NewConcurrency(concurrencyLimits(cfg)); err != nil {
		return nil, fmt.Errorf("concurrency: %w", err)
	}
	f.cache = cache.New(cache.Options{MaxEntries: int(cfg.MaxCacheEntries), MaxBytes: int64(cfg.CacheMaxBytes)})
	if err := f.aliases.Replace(aliasList(cfg)); err != nil {
		return nil, fmt.Errorf("toolAliases: %w", err)
	}
	return f, nil
}

// reload applies the settings of next whose config keys differ from old.
func (f *features) reload(old, next *config.Config) error {
	if !reflect.DeepEqual(concurrencyLimits(old), concurrencyLimits(next)) {
		if err := f.conc.SetLimits(concurrencyLimits(next)); err != nil {
			return fmt.Errorf("concurrency: %w", err)
		}
	}
	f.cache.SetLimits(int(next.MaxCacheEntries), int64(next.CacheMaxBytes))
	if !reflect.DeepEqual(aliasList(old), aliasList(next)) {
		if err := f.aliases.Replace(aliasList(next)); err != nil {
			return fmt.Errorf("toolAliases: %w", err)
		}
	}
	return nil
}

// admin is what the admin API's call-control routes manage.
func (f *features) admin() admin.CallControls {
	return admin.CallControls{Concurrency: f.conc, Cache: f.cache, Aliases: f.aliases}
}

// concurrencyLimits converts maxConcurrentPerKey and
// toolPricing.<tool>.maxConcurrent.
func concurrencyLimits(cfg *config.Config) gate.ConcurrencyLimits {
	l := gate.ConcurrencyLimits{PerKey: cfg.MaxConcurrentPerKey, Tools: map[string]int64{}}
	for tool, tp := range cfg.ToolPricing {
		if tp.MaxConcurrent > 0 {
			l.Tools[tool] = tp.MaxConcurrent
		}
	}
	return l
}

// aliasList converts toolAliases, sorted by name.
func aliasList(cfg *config.Config) []toolalias.Alias {
	list := make([]toolalias.Alias, 0, len(cfg.ToolAliases))
	for from, a := range cfg.ToolAliases {
		list = append(list, toolalias.Alias{From: from, To: a.To, Sunset: a.SunsetTime(), Link: a.Link})
	}
	slices.SortFunc(list, func(a, b toolalias.Alias) int { return strings.Compare(a.From, b.From) })
	return list
}

// cacheSettings converts the response cache keys of the policy.
func cacheSettings(cfg *config.Config) policy.CacheSettings {
	return policy.CacheSettings{
		TTL:        time.Duration(cfg.CacheTTLSeconds) * time.Second,
		Scope:      policy.CacheScope(cfg.CacheScope),
		ChargeHits: cfg.CacheHitCharge == "full",
	}
}
