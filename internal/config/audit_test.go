package config

import (
	"strings"
	"testing"
	"time"
)

// TestRecordSettings checks the audit trail's and the usage log's settings.
func TestRecordSettings(t *testing.T) {
	i64 := func(n int64) *int64 { return &n }
	tests := []struct {
		name   string
		mutate func(*Config)
		level  Level // "" when valid
		path   string
		msg    string
	}{
		{"defaults", func(c *Config) {}, "", "", ""},
		{"explicit", func(c *Config) {
			c.AuditRetentionDays, c.AuditMaxEvents, c.AuditGateAllows = i64(7), i64(5000), "all"
			c.AuditSummaryInterval = Duration(5 * time.Minute)
		}, "", "", ""},
		{"negative days", func(c *Config) { c.AuditRetentionDays = i64(-1) }, LevelError, "auditRetentionDays", "negative"},
		{"negative count", func(c *Config) { c.AuditMaxEvents = i64(-5) }, LevelError, "auditMaxEvents", "negative"},
		{"tiny count", func(c *Config) { c.AuditMaxEvents = i64(10) }, LevelWarning, "auditMaxEvents", "small"},
		{"unbounded", func(c *Config) { c.AuditRetentionDays, c.AuditMaxEvents = i64(0), i64(0) }, LevelWarning, "auditRetentionDays", "without bound"},
		{"mode", func(c *Config) { c.AuditGateAllows = "sumary" }, LevelError, "auditGateAllows", `did you mean "summary"`},
		{"interval too short", func(c *Config) { c.AuditSummaryInterval = Duration(time.Millisecond) }, LevelError, "auditSummaryInterval", "at least 1s"},
		{"usage explicit", func(c *Config) { c.UsageRetentionDays, c.UsageMaxRecords = i64(7), i64(50_000) }, "", "", ""},
		{"usage negative days", func(c *Config) { c.UsageRetentionDays = i64(-1) }, LevelError, "usageRetentionDays", "negative"},
		{"usage too many days", func(c *Config) { c.UsageRetentionDays = i64(40000) }, LevelError, "usageRetentionDays", "at most"},
		{"usage negative count", func(c *Config) { c.UsageMaxRecords = i64(-1) }, LevelError, "usageMaxRecords", "negative"},
		{"usage tiny count", func(c *Config) { c.UsageMaxRecords = i64(10) }, LevelWarning, "usageMaxRecords", "small"},
		{"usage unbounded", func(c *Config) { c.UsageRetentionDays, c.UsageMaxRecords = i64(0), i64(0) }, LevelWarning, "usageRetentionDays", "without bound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(c)
			ds := c.Validate()
			if tc.level == "" {
				if len(ds) != 0 {
					t.Fatalf("want no diagnostics, got %v", ds)
				}
				return
			}
			for _, d := range ds {
				if d.Level == tc.level && d.Path == tc.path && strings.Contains(d.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want %s at %s containing %q, got %v", tc.level, tc.path, tc.msg, ds)
		})
	}
}

func TestRecordEffectiveValues(t *testing.T) {
	c := valid()
	if c.AuditMaxAge() != 30*24*time.Hour || c.AuditMaxEventCount() != 100_000 || c.AuditAllowMode() != "summary" || c.AuditInterval() != time.Minute {
		t.Fatalf("defaults: %v %v %v %v", c.AuditMaxAge(), c.AuditMaxEventCount(), c.AuditAllowMode(), c.AuditInterval())
	}
	if c.UsageMaxAge() != 90*24*time.Hour || c.UsageMaxRecordCount() != 10_000_000 {
		t.Fatalf("usage defaults: %v %v", c.UsageMaxAge(), c.UsageMaxRecordCount())
	}
	cfg, ds, err := Load(LoadOptions{ConfigPath: "p.yaml", Env: testEnv, ReadFile: func(string) ([]byte, error) {
		return []byte("serverCommand: srv\nstateFile: /tmp/s.db\nauditRetentionDays: 0\nauditMaxEvents: 2000\nauditGateAllows: none\nauditSummaryInterval: 10s\nusageRetentionDays: 0\nusageMaxRecords: 5000\n"), nil
	}})
	if err != nil || HasErrors(ds) {
		t.Fatalf("load: %v %v", err, ds)
	}
	if cfg.AuditMaxAge() != 0 || cfg.AuditMaxEventCount() != 2000 || cfg.AuditAllowMode() != "none" || cfg.AuditInterval() != 10*time.Second {
		t.Fatalf("loaded: %v %v %v %v", cfg.AuditMaxAge(), cfg.AuditMaxEventCount(), cfg.AuditAllowMode(), cfg.AuditInterval())
	}
	if cfg.UsageMaxAge() != 0 || cfg.UsageMaxRecordCount() != 5000 {
		t.Fatalf("loaded usage: %v %v", cfg.UsageMaxAge(), cfg.UsageMaxRecordCount())
	}
}
