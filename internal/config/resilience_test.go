package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestValidateResilience(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		level  Level
		path   string
		msg    string
	}{
		{"negative tool timeout", func(c *Config) { c.ToolTimeoutMs = -1 }, LevelError, "toolTimeoutMs", "negative"},
		{"tiny tool timeout", func(c *Config) { c.ToolTimeoutMs = 5 }, LevelWarning, "toolTimeoutMs", "very short"},
		{"negative threshold", func(c *Config) { c.CircuitBreakerThreshold = -1 }, LevelError, "circuitBreakerThreshold", "negative"},
		{"no cooldown", func(c *Config) { c.CircuitBreakerCooldownSeconds = 0 }, LevelError, "circuitBreakerCooldownSeconds", "at least 1 second"},
		{"negative retries", func(c *Config) { c.RetryMaxRetries = -1 }, LevelError, "retryMaxRetries", "negative"},
		{"too many retries", func(c *Config) { c.RetryMaxRetries = 50 }, LevelError, "retryMaxRetries", "at most 10"},
		{"no base delay", func(c *Config) { c.RetryBaseDelayMs = 0 }, LevelError, "retryBaseDelayMs", "positive"},
		{"max below base", func(c *Config) { c.RetryMaxDelayMs = 50 }, LevelError, "retryMaxDelayMs", "below retryBaseDelayMs"},
		{"budget", func(c *Config) { c.RetryBudgetPercent = 0 }, LevelError, "retryBudgetPercent", "between 1 and 100"},
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
}

// TestResilienceOff: 0 turns breakers, retries and the global timeout off
// without complaints about the keys that then do not matter.
func TestResilienceOff(t *testing.T) {
	c := valid()
	c.ToolTimeoutMs, c.CircuitBreakerThreshold, c.CircuitBreakerCooldownSeconds = 0, 0, 0
	c.RetryMaxRetries, c.RetryBaseDelayMs, c.RetryMaxDelayMs, c.RetryBudgetPercent = 0, 0, 0, 0
	if ds := c.Validate(); len(ds) != 0 {
		t.Fatalf("want no diagnostics, got %v", ds)
	}
}

// TestResilienceKeysLoad: paygate-mcp's keys are read, no longer reported
// as unsupported.
func TestResilienceKeysLoad(t *testing.T) {
	path := t.TempDir() + "/c.json"
	writeResilienceConfig(t, path, `{"serverCommand":"srv","toolTimeoutMs":1500,"circuitBreakerThreshold":3,"circuitBreakerCooldownSeconds":9,
		"retryMaxRetries":1,"retryBaseDelayMs":20,"retryMaxDelayMs":200,"retryBudgetPercent":25,"stateFile":"/tmp/s.db"}`)
	cfg, diags, err := Load(LoadOptions{ConfigPath: path, Env: testEnv})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Errorf("unexpected diagnostic %s", d)
	}
	if cfg.ToolTimeoutMs != 1500 || cfg.CircuitBreakerThreshold != 3 || cfg.CircuitBreakerCooldownSeconds != 9 ||
		cfg.RetryMaxRetries != 1 || cfg.RetryBaseDelayMs != 20 || cfg.RetryMaxDelayMs != 200 || cfg.RetryBudgetPercent != 25 {
		t.Errorf("loaded %+v", cfg)
	}
}

func writeResilienceConfig(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
