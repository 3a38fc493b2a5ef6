package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func i64(n int64) *int64 { return &n }

func TestValidateFeatures(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		level  Level
		path   string
		msg    string // substring of the message
	}{
		{"negative per-key cap", func(c *Config) { c.MaxConcurrentPerKey = -1 }, LevelError, "maxConcurrentPerKey", "negative"},
		{"negative tool cap", func(c *Config) { c.ToolPricing = map[string]ToolPrice{"search": {MaxConcurrent: -2}} }, LevelError, "toolPricing.search.maxConcurrent", "negative"},
		{"huge cap", func(c *Config) { c.MaxConcurrentPerKey = 1 << 40 }, LevelError, "maxConcurrentPerKey", "at most"},
		{"negative ttl", func(c *Config) { c.CacheTTLSeconds = -1 }, LevelError, "cacheTtlSeconds", "negative"},
		{"tool ttl too long", func(c *Config) { c.ToolPricing = map[string]ToolPrice{"s": {CacheTTLSeconds: i64(1 << 40)}} }, LevelError, "toolPricing.s.cacheTtlSeconds", "at most"},
		{"no entries", func(c *Config) { c.MaxCacheEntries = 0 }, LevelError, "maxCacheEntries", "at least 1"},
		{"no bytes", func(c *Config) { c.CacheMaxBytes = 0 }, LevelError, "cacheMaxBytes", "positive"},
		{"scope", func(c *Config) { c.CacheScope = "keys" }, LevelError, "cacheScope", `did you mean "key"`},
		{"hit charge", func(c *Config) { c.CacheHitCharge = "half" }, LevelError, "cacheHitCharge", "not one of"},
		{"global scope", func(c *Config) { c.CacheScope, c.CacheTTLSeconds = "global", 60 }, LevelWarning, "cacheScope", "public"},
		{"alias without target", func(c *Config) { c.ToolAliases = map[string]ToolAlias{"old": {}} }, LevelError, "toolAliases.old.to", "missing"},
		{"alias to itself", func(c *Config) { c.ToolAliases = map[string]ToolAlias{"old": {To: "old"}} }, LevelError, "toolAliases.old.to", "itself"},
		{"alias chain", func(c *Config) {
			c.ToolAliases = map[string]ToolAlias{"a": {To: "b"}, "b": {To: "c"}}
		}, LevelError, "toolAliases.a.to", "do not chain"},
		{"alias sunset", func(c *Config) { c.ToolAliases = map[string]ToolAlias{"old": {To: "new", Sunset: "2027-01-01"}} }, LevelError, "toolAliases.old.sunset", "RFC 3339"},
		{"alias link", func(c *Config) { c.ToolAliases = map[string]ToolAlias{"old": {To: "new", Link: "docs"}} }, LevelError, "toolAliases.old.link", "not a URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(c)
			for _, d := range c.Validate() {
				if d.Level == tc.level && d.Path == tc.path && strings.Contains(d.Message, tc.msg) {
					return
				}
			}
			t.Errorf("want %s at %s containing %q, got:\n%s", tc.level, tc.path, tc.msg, fmt.Sprint(c.Validate()))
		})
	}
	t.Run("valid", func(t *testing.T) {
		c := valid()
		c.MaxConcurrentPerKey, c.CacheTTLSeconds, c.CacheScope, c.CacheHitCharge = 4, 30, "namespace", "full"
		c.ToolPricing = map[string]ToolPrice{"search": {MaxConcurrent: 2, CacheTTLSeconds: i64(0)}}
		c.ToolAliases = map[string]ToolAlias{"old": {To: "search", Sunset: "2027-01-01T00:00:00Z", Link: "https://docs.example.com"}}
		if ds := c.Validate(); len(ds) != 0 {
			t.Fatalf("diagnostics %v", ds)
		}
		if got := c.ToolAliases["old"].SunsetTime(); !got.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("SunsetTime %v", got)
		}
	})
}

// TestLoadFeatures reads the call-control keys from a file, paygate-mcp's
// cacheTtlSeconds and maxCacheEntries among them, without warnings.
func TestLoadFeatures(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paygate.json")
	body := `{
  "serverCommand": "srv", "stateFile": "/tmp/s.db",
  "maxConcurrentPerKey": 3, "cacheTtlSeconds": 60, "maxCacheEntries": 50, "cacheMaxBytes": "1MiB",
  "cacheScope": "global", "cacheHitCharge": "full",
  "toolPricing": {"search": {"maxConcurrent": 2, "cacheTtlSeconds": 0}},
  "toolAliases": {"find": {"to": "search", "sunset": "2027-01-01T00:00:00Z"}},
  "listToolAliases": true
}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, ds, err := Load(LoadOptions{ConfigPath: path, Env: testEnv})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Path != "cacheScope" { // the global scope warning
			t.Errorf("diagnostic %v", d)
		}
	}
	tp := c.ToolPricing["search"]
	if c.MaxConcurrentPerKey != 3 || c.CacheTTLSeconds != 60 || c.MaxCacheEntries != 50 || c.CacheMaxBytes != 1<<20 ||
		c.CacheScope != "global" || c.CacheHitCharge != "full" || tp.MaxConcurrent != 2 || tp.CacheTTLSeconds == nil ||
		*tp.CacheTTLSeconds != 0 || c.ToolAliases["find"].To != "search" || !c.ListToolAliases {
		t.Fatalf("loaded %+v", c)
	}
	if changed, _ := Reloadable(valid(), c); !strings.Contains(strings.Join(changed, ","), "maxConcurrentPerKey,cacheTtlSeconds,maxCacheEntries,cacheMaxBytes,cacheScope,cacheHitCharge,toolAliases,listToolAliases") {
		t.Fatalf("hot keys %v", changed)
	}
}
