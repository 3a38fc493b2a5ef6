package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/credits"
)

func TestReloadable(t *testing.T) {
	tests := []struct {
		name             string
		mutate           func(*Config)
		changed, skipped []string
	}{
		{"nothing", func(*Config) {}, nil, nil},
		{"prices", func(c *Config) {
			c.DefaultCreditsPerCall = 9
			c.ToolPricing = map[string]ToolPrice{"a": {CreditsPerCall: amt(2)}}
		}, []string{"defaultCreditsPerCall", "toolPricing"}, nil},
		{"hot keys", func(c *Config) {
			c.GlobalRateLimitPerMin = 1
			c.GlobalQuota.DailyCalls = 5
			c.ShadowMode = true
			c.RefundOnFailure = true
			c.FreeMethods = []string{"ping"}
			c.WebhookURL, c.WebhookSecret, c.WebhookMaxRetries = "https://w", "s", 1
			c.WebhookFilters = []WebhookFilter{{URL: "https://f", Events: []string{"*"}}}
			c.AlertRules = []AlertRule{{Type: "credits_low", Threshold: 1}}
			c.CORS = &CORS{Origin: []string{"*"}}
			c.CustomHeaders = map[string]string{"X": "y"}
		}, []string{"globalRateLimitPerMin", "globalQuota", "freeMethods", "shadowMode", "refundOnFailure", "cors", "customHeaders",
			"webhookUrl", "webhookSecret", "webhookMaxRetries", "webhookFilters", "alertRules"}, nil},
		{"restart keys", func(c *Config) {
			c.ServerCommand = "other"
			c.ServerArgs = []string{"--x"}
			c.Port = 1
			c.Host = "0.0.0.0"
			c.StateFile = "/other.db"
			c.RedisURL = "redis://r"
			c.OAuth = &OAuth{}
		}, nil, []string{"serverCommand", "serverArgs", "stateFile", "redisUrl", "host", "port", "oauth"}},
		{"argv counts as serverCommand", func(c *Config) { c.ServerArgv = []string{"a", "b"} }, nil, []string{"serverCommand"}},
		{"mixed", func(c *Config) { c.RemoteURL = "https://r"; c.ShadowMode = true }, []string{"shadowMode"}, []string{"remoteUrl"}},
		{"empty is nil", func(c *Config) { c.ToolPricing = map[string]ToolPrice{}; c.AllowedOrigins = []string{} }, nil, nil},
		{"run options ignored", func(c *Config) { c.DryRun = true; c.JSONOutput = true; c.Source = "x" }, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := valid()
			cur := old.Clone()
			tc.mutate(cur)
			changed, skipped := Reloadable(old, cur)
			if !reflect.DeepEqual(changed, tc.changed) || !reflect.DeepEqual(skipped, tc.skipped) {
				t.Errorf("changed %q skipped %q; want %q and %q", changed, skipped, tc.changed, tc.skipped)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	c := valid()
	c.AdminKey = "admin-secret-0123456789"
	c.ServerCommand = "node server.js --token=cmd-secret"
	c.ServerArgs = []string{"--password", "arg-secret"}
	c.ServerArgv = []string{"argv-secret"}
	c.RemoteURL = "https://user:url-secret@mcp.example.com/mcp?token=query-secret"
	c.RemoteHeaders = map[string]string{"Authorization": "Bearer header-secret"}
	c.RedisURL = "redis://:redis-secret@redis.internal:6379/2"
	c.WebhookURL = "https://hooks.example.com/path-secret"
	c.WebhookSecret = "webhook-secret"
	c.WebhookFilters = []WebhookFilter{{URL: "https://alerts.example.com/filter-secret", Secret: "filter-secret", Events: []string{"*"}}}
	c.Servers = []Server{{Prefix: "gh", RemoteURL: "https://gh.example.com/server-secret", Headers: map[string]string{"X-Key": "server-header-secret"}},
		{Prefix: "fs", ServerCommand: "fs-secret", ServerArgs: []string{"fs-arg-secret"}, Env: map[string]string{"TOKEN": "env-secret"}}}
	c.ImportKeys = map[string]credits.Amount{"pg_import0123456789secret": 5}
	before, _ := json.Marshal(c)

	r := c.Redacted()
	out, err := json.Marshal(struct {
		*Config
		Argv []string
	}{r, r.ServerArgv})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"admin-secret", "cmd-secret", "arg-secret", "argv-secret", "url-secret", "query-secret",
		"header-secret", "redis-secret", "path-secret", "webhook-secret", "filter-secret", "server-secret",
		"server-header-secret", "fs-secret", "fs-arg-secret", "env-secret", "import0123456789secret"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("redacted config shows %q:\n%s", secret, out)
		}
	}
	for _, keep := range []string{`"remoteUrl":"https://mcp.example.com"`, `"redisUrl":"redis://redis.internal:6379"`,
		`"webhookUrl":"https://hooks.example.com"`, `"adminKey":"***"`, `"serverArgs":["***"]`, `"pg_impo...cret":5`} {
		if !strings.Contains(string(out), keep) {
			t.Errorf("redacted config lacks %s:\n%s", keep, out)
		}
	}
	if after, _ := json.Marshal(c); string(after) != string(before) {
		t.Error("Redacted changed the original")
	}
}

func TestClone(t *testing.T) {
	c := valid()
	c.ToolPricing = map[string]ToolPrice{"a": {CreditsPerCall: amt(1)}}
	c.Servers = []Server{{Prefix: "p", Env: map[string]string{"A": "1"}}}
	c.CORS = &CORS{Origin: []string{"*"}}
	c.loaded = &LoadOptions{Args: []string{"--x"}}
	d := c.Clone()
	if !reflect.DeepEqual(c, d) {
		t.Fatal("clone differs")
	}
	d.ToolPricing["a"] = ToolPrice{CreditsPerCall: amt(2)}
	d.Servers[0].Env["A"] = "2"
	d.CORS.Origin[0] = "https://x"
	d.FreeMethods[0] = "x"
	if *c.ToolPricing["a"].CreditsPerCall != 1 || c.Servers[0].Env["A"] != "1" || c.CORS.Origin[0] != "*" || c.FreeMethods[0] == "x" {
		t.Error("clone shares memory with the original")
	}
}
