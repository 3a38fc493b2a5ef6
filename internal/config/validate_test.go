package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/credits"
)

// valid returns a configuration that validates without diagnostics.
func valid() *Config {
	c := Defaults()
	c.ServerCommand = "npx -y @modelcontextprotocol/server-everything"
	c.StateFile = "/var/lib/paygate/state.db"
	return c
}

func TestValidDefaults(t *testing.T) {
	if ds := valid().Validate(); len(ds) != 0 {
		t.Fatalf("want no diagnostics, got %v", ds)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		level  Level
		path   string
		msg    string // substring of the message
	}{
		{"no backend", func(c *Config) { c.ServerCommand = "" }, LevelError, "serverCommand", "nothing to wrap"},
		{"argv is a backend", func(c *Config) { c.ServerCommand = ""; c.ServerArgv = []string{"srv"}; c.RemoteURL = "https://x" }, LevelError, "remoteUrl", "both set"},
		{"server and remote", func(c *Config) { c.RemoteURL = "https://x.example.com/mcp" }, LevelError, "remoteUrl", "both set"},
		{"servers and server", func(c *Config) { c.Servers = []Server{{Prefix: "a", RemoteURL: "https://a"}} }, LevelError, "servers", "cannot be combined"},
		{"remote scheme", func(c *Config) { c.ServerCommand = ""; c.RemoteURL = "ws://x" }, LevelError, "remoteUrl", `scheme "ws://"`},
		{"remote no host", func(c *Config) { c.ServerCommand = ""; c.RemoteURL = "https:///mcp" }, LevelError, "remoteUrl", "no host"},
		{"remote transport", func(c *Config) { c.RemoteTransport = "grpc" }, LevelError, "remoteTransport", "not one of"},
		{"remote headers unused", func(c *Config) { c.RemoteHeaders = map[string]string{"A": "b"} }, LevelWarning, "remoteHeaders", "unused"},
		{"header injection", func(c *Config) { c.CustomHeaders = map[string]string{"X": "a\r\nSet-Cookie: x"} }, LevelError, "customHeaders.X", "line breaks"},
		{"empty separator", func(c *Config) { c.ToolSeparator = "" }, LevelError, "toolSeparator", "must not be empty"},
		{"prefix with separator", func(c *Config) {
			c.ServerCommand = ""
			c.ToolSeparator = "__"
			c.Servers = []Server{{Prefix: "my__fs", ServerCommand: "x"}}
		}, LevelError, "servers[0].prefix", "separator"},
		{"duplicate prefix", func(c *Config) {
			c.ServerCommand = ""
			c.Servers = []Server{{Prefix: "a", ServerCommand: "x"}, {Prefix: "b", ServerCommand: "y"}, {Prefix: "a", RemoteURL: "https://z"}}
		}, LevelError, "servers[2].prefix", "servers[0]"},
		{"odd prefix", func(c *Config) { c.ServerCommand = ""; c.Servers = []Server{{Prefix: "1fs", ServerCommand: "x"}} }, LevelWarning, "servers[0].prefix", "unusual"},
		{"discovery", func(c *Config) { c.Discovery = "dynamc" }, LevelError, "discovery", `did you mean "dynamic"`},
		{"negative price", func(c *Config) { c.DefaultCreditsPerCall = -1 }, LevelError, "defaultCreditsPerCall", "must not be negative"},
		{"tool price too large", func(c *Config) { c.ToolPricing = map[string]ToolPrice{"search": {CreditsPerCall: amt(1 << 60)}} }, LevelError, "toolPricing.search.creditsPerCall", "at most"},
		{"tool rate limit", func(c *Config) { c.ToolPricing = map[string]ToolPrice{"a.b": {RateLimitPerMin: -1}} }, LevelError, `toolPricing["a.b"].rateLimitPerMin`, "negative"},
		{"rate limit off", func(c *Config) { c.GlobalRateLimitPerMin = 0 }, LevelWarning, "globalRateLimitPerMin", "off"},
		{"quota negative", func(c *Config) { c.GlobalQuota.MonthlyCalls = -1 }, LevelError, "globalQuota.monthlyCallLimit", "negative"},
		{"quota daily above monthly", func(c *Config) { c.GlobalQuota.DailyCalls, c.GlobalQuota.MonthlyCalls = 10, 5 }, LevelWarning, "globalQuota.dailyCallLimit", "never be reached"},
		{"free tools/call", func(c *Config) { c.FreeMethods = append(c.FreeMethods, "tools/call_batch") }, LevelError, "freeMethods[7]", "cannot be free"},
		{"shadow", func(c *Config) { c.ShadowMode = true }, LevelWarning, "shadowMode", "never denied or charged"},
		{"import key prefix", func(c *Config) { c.ImportKeys = map[string]credits.Amount{"sk_0123456789abcdef": 1} }, LevelError, `importKeys["sk_0123...cdef"]`, `start with "pg_"`},
		{"short import key", func(c *Config) { c.ImportKeys = map[string]credits.Amount{"pg_abc": 1} }, LevelWarning, `importKeys["pg_..."]`, "easy to guess"},
		{"sync", func(c *Config) { c.Sync = "off" }, LevelError, "sync", "not one of"},
		{"redis scheme", func(c *Config) { c.RedisURL = "http://r:6379" }, LevelError, "redisUrl", "redis:// or rediss://"},
		{"in memory and redis", func(c *Config) { c.InMemory = true; c.RedisURL = "redis://r" }, LevelError, "inMemory", "choose one"},
		{"json state file", func(c *Config) { c.StateFile = "/x/state.json" }, LevelWarning, "stateFile", "import-state"},
		{"no state file", func(c *Config) { c.StateFile = "" }, LevelError, "stateFile", "no default location"},
		{"port", func(c *Config) { c.Port = 70000 }, LevelError, "port", "between 0 and 65535"},
		{"host with port", func(c *Config) { c.Host = "0.0.0.0:80" }, LevelError, "host", "give the port separately"},
		{"public host", func(c *Config) { c.Host = "0.0.0.0" }, LevelWarning, "host", "allowedOrigins"},
		{"ipv6 any", func(c *Config) { c.Host = "::" }, LevelWarning, "host", "allowedOrigins"},
		{"body", func(c *Config) { c.MaxBodyBytes = 0 }, LevelError, "maxBodyBytes", "positive"},
		{"small body", func(c *Config) { c.MaxBodyBytes = 100 }, LevelWarning, "maxBodyBytes", "small"},
		{"origin with path", func(c *Config) { c.AllowedOrigins = []string{"https://a.com/app"} }, LevelError, "allowedOrigins[0]", "not an origin"},
		{"host list", func(c *Config) { c.AllowedHosts = []string{"http://a.com/"} }, LevelError, "allowedHosts[0]", "not a host"},
		{"session timeout", func(c *Config) { c.SessionTimeout = 0 }, LevelError, "sessionTimeout", "positive"},
		{"max sessions", func(c *Config) { c.MaxSessions = 0 }, LevelError, "maxSessions", "at least 1"},
		{"drain", func(c *Config) { c.DrainTimeout = -1 }, LevelError, "drainTimeout", "negative"},
		{"cors star credentials", func(c *Config) { c.CORS = &CORS{Origin: []string{"*"}, Credentials: true} }, LevelError, "cors.credentials", "cannot be true"},
		{"trusted proxy", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "proxy.local"} }, LevelError, "trustedProxies[1]", "not an IP"},
		{"admin key spaces", func(c *Config) { c.AdminKey = "secret key with spaces" }, LevelError, "adminKey", "spaces"},
		{"admin key short", func(c *Config) { c.AdminKey = "admin" }, LevelWarning, "adminKey", "easy to guess"},
		{"oauth ttl", func(c *Config) { c.OAuth = &OAuth{RefreshTokenTTL: -5} }, LevelError, "oauth.refreshTokenTtl", "positive"},
		{"webhook unsigned", func(c *Config) { c.WebhookURL = "https://h.example.com/x" }, LevelWarning, "webhookSecret", "cannot verify"},
		{"webhook secret alone", func(c *Config) { c.WebhookSecret = "s" }, LevelWarning, "webhookSecret", "unused"},
		{"webhook filter", func(c *Config) { c.WebhookFilters = []WebhookFilter{{URL: "https://a"}} }, LevelError, "webhookFilters[0].events", "missing"},
		{"alert type", func(c *Config) { c.AlertRules = []AlertRule{{Type: "credit_low"}} }, LevelError, "alertRules[0].type", `did you mean "credits_low"`},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, LevelError, "logLevel", "not one of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(c)
			ds := c.Validate()
			for _, d := range ds {
				if d.Level == tc.level && d.Path == tc.path && strings.Contains(d.Message, tc.msg) {
					return
				}
			}
			t.Errorf("want %s at %s containing %q, got:\n%s", tc.level, tc.path, tc.msg, fmt.Sprint(ds))
		})
	}
}
