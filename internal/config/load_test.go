package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/credits"
)

// fileOpts returns LoadOptions whose config file "paygate.json" holds body.
func fileOpts(body string, args []string, env ...string) LoadOptions {
	return LoadOptions{
		Args:       args,
		Env:        append([]string{"HOME=/home/test"}, env...),
		ConfigPath: "paygate.json",
		ReadFile:   func(string) ([]byte, error) { return []byte(body), nil },
	}
}

// TestPrecedence checks flags > env > file > defaults for several kinds of
// setting: each case is run with every combination of layers.
func TestPrecedence(t *testing.T) {
	type layer struct {
		file string // JSON member
		env  string // NAME=value
		flag []string
	}
	tests := []struct {
		name  string
		layer layer
		get   func(*Config) any
		want  [4]any // defaults, file, env, flag
	}{
		{"port", layer{`"port": 1000`, "PAYGATE_PORT=2000", []string{"--port", "3000"}},
			func(c *Config) any { return c.Port }, [4]any{3402, 1000, 2000, 3000}},
		{"price", layer{`"defaultCreditsPerCall": 2`, "PAYGATE_PRICE=3", []string{"--price=4"}},
			func(c *Config) any { return c.DefaultCreditsPerCall }, [4]any{credits.Amount(1), credits.Amount(2), credits.Amount(3), credits.Amount(4)}},
		{"shadow", layer{`"shadowMode": false`, "PAYGATE_SHADOW=true", []string{"--shadow=false"}},
			func(c *Config) any { return c.ShadowMode }, [4]any{false, false, true, false}},
		{"duration", layer{`"drainTimeout": "5s"`, "PAYGATE_DRAIN_TIMEOUT=6s", []string{"--drain-timeout", "7s"}},
			func(c *Config) any { return c.DrainTimeout.D() }, [4]any{30 * time.Second, 5 * time.Second, 6 * time.Second, 7 * time.Second}},
		{"list", layer{`"trustedProxies": ["10.0.0.1"]`, "PAYGATE_TRUSTED_PROXIES=10.0.0.2,10.0.0.3", []string{"--trusted-proxies", "10.0.0.4"}},
			func(c *Config) any { return c.TrustedProxies }, [4]any{[]string(nil), []string{"10.0.0.1"}, []string{"10.0.0.2", "10.0.0.3"}, []string{"10.0.0.4"}}},
		{"backend", layer{`"serverCommand": "file-server"`, "PAYGATE_REMOTE_URL=https://env.example.com/mcp", []string{"--server", "flag-server --x"}},
			func(c *Config) any { return c.ServerCommand + "|" + c.RemoteURL }, [4]any{"|", "file-server|", "|https://env.example.com/mcp", "flag-server --x|"}},
		{"max body", layer{`"maxBodyBytes": 2048`, "PAYGATE_MAX_BODY=4KiB", []string{"--max-body", "1MB"}},
			func(c *Config) any { return c.MaxBodyBytes }, [4]any{ByteSize(1 << 20), ByteSize(2048), ByteSize(4096), ByteSize(1000000)}},
	}
	for _, tc := range tests {
		for level := range 4 {
			t.Run(fmt.Sprintf("%s/%d", tc.name, level), func(t *testing.T) {
				body := "{}"
				var env []string
				var args []string
				if level >= 1 {
					body = "{" + tc.layer.file + "}"
				}
				if level >= 2 {
					env = []string{tc.layer.env}
				}
				if level >= 3 {
					args = tc.layer.flag
				}
				cfg, _, err := Load(fileOpts(body, args, env...))
				if err != nil {
					t.Fatal(err)
				}
				if got := tc.get(cfg); !reflect.DeepEqual(got, tc.want[level]) {
					t.Errorf("got %#v, want %#v", got, tc.want[level])
				}
			})
		}
	}
}

// TestMapsMerge: map settings from a higher layer add entries rather than
// replacing the map.
func TestMapsMerge(t *testing.T) {
	body := `{"serverCommand": "s", "toolPricing": {"search": {"creditsPerCall": 5, "creditsPerKbInput": 2}, "other": {"creditsPerCall": 9}},
	          "customHeaders": {"X-A": "1"}}`
	cfg, _, err := Load(fileOpts(body, []string{"--tool-price", "search:1,fs:read_file=3", "--header", "X-B: 2"},
		"PAYGATE_CUSTOM_HEADERS=X-C:3,X-D:4"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ToolPrice{
		"search":       {CreditsPerCall: amt(1), CreditsPerKbInput: 2},
		"other":        {CreditsPerCall: amt(9)},
		"fs:read_file": {CreditsPerCall: amt(3)},
	}
	if !reflect.DeepEqual(cfg.ToolPricing, want) {
		t.Errorf("toolPricing = %+v, want %+v", cfg.ToolPricing, want)
	}
	wantH := map[string]string{"X-A": "1", "X-B": "2", "X-C": "3", "X-D": "4"}
	if !reflect.DeepEqual(cfg.CustomHeaders, wantH) {
		t.Errorf("customHeaders = %v, want %v", cfg.CustomHeaders, wantH)
	}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(*Config) bool
		wantErr string // substring of a usage error
	}{
		{name: "equals form", args: []string{"--server=node s.js", "--port=8080"},
			check: func(c *Config) bool { return c.ServerCommand == "node s.js" && c.Port == 8080 }},
		{name: "switch", args: []string{"--server", "x", "--shadow", "--port", "1"},
			check: func(c *Config) bool { return c.ShadowMode && c.Port == 1 }},
		{name: "switch with word", args: []string{"--server", "x", "--shadow", "false"},
			check: func(c *Config) bool { return !c.ShadowMode }},
		{name: "argv after --", args: []string{"--price", "2", "--", "npx", "-y", "pkg", "--port", "9"},
			check: func(c *Config) bool {
				return reflect.DeepEqual(c.ServerArgv, []string{"npx", "-y", "pkg", "--port", "9"}) && c.Port == DefaultPort && c.DefaultCreditsPerCall == 2
			}},
		{name: "negative value is a value", args: []string{"--server", "x", "--rate-limit", "-1"},
			check: func(c *Config) bool { return c.GlobalRateLimitPerMin == -1 }},
		{name: "remote headers", args: []string{"--remote-url", "https://h/mcp", "--remote-header", "Authorization: Bearer a,b", "--remote-header", "X-Y:z"},
			check: func(c *Config) bool {
				return reflect.DeepEqual(c.RemoteHeaders, map[string]string{"Authorization": "Bearer a,b", "X-Y": "z"})
			}},
		{name: "import keys", args: []string{"--server", "x", "--import-key", "pg_a:100,pg_b:5", "--import-key", "pg_c:0"},
			check: func(c *Config) bool {
				return reflect.DeepEqual(c.ImportKeys, map[string]credits.Amount{"pg_a": 100, "pg_b": 5, "pg_c": 0})
			}},
		{name: "cors origins", args: []string{"--server", "x", "--cors-origin", "https://a.com, https://b.com"},
			check: func(c *Config) bool {
				return reflect.DeepEqual(c.CORS.Origin, []string{"https://a.com", "https://b.com"})
			}},
		{name: "request timeout ms", args: []string{"--server", "x", "--request-timeout", "1500"},
			check: func(c *Config) bool { return c.RequestTimeout.D() == 1500*time.Millisecond }},
		{name: "json and dry run", args: []string{"--server", "x", "--json", "--dry-run"},
			check: func(c *Config) bool { return c.JSONOutput && c.DryRun }},

		{name: "unknown flag", args: []string{"--prot", "1"}, wantErr: "unknown flag --prot; did you mean --port?"},
		{name: "unknown with equals", args: []string{"--remote_url=x"}, wantErr: "did you mean --remote-url?"},
		{name: "prefix", args: []string{"--max-body-bytes", "1"}, wantErr: "did you mean --max-body?"},
		{name: "single dash", args: []string{"-port", "1"}, wantErr: "unknown flag -port"},
		{name: "missing value", args: []string{"--port"}, wantErr: "--port needs a value"},
		{name: "bad int", args: []string{"--port", "http"}, wantErr: `invalid value for --port: "http" is not a whole number`},
		{name: "fractional price", args: []string{"--price", "1.5"}, wantErr: "credits must be a whole number"},
		{name: "negative price", args: []string{"--price", "-1"}, wantErr: "credits must not be negative"},
		{name: "bad tool price", args: []string{"--tool-price", "search"}, wantErr: "is not TOOL:PRICE"},
		{name: "bad header", args: []string{"--header", "nocolon"}, wantErr: "is not a header"},
		{name: "bad size", args: []string{"--max-body", "1 parsec"}, wantErr: "unknown unit"},
		{name: "bad duration", args: []string{"--session-timeout", "30"}, wantErr: "has no unit"},
		{name: "positional", args: []string{"npx", "server"}, wantErr: "paygate wrap -- npx server"},
		{name: "empty argv", args: []string{"--"}, wantErr: "nothing after --"},
		{name: "server and argv", args: []string{"--server", "a", "--", "b"}, wantErr: "--server and -- CMD both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Load(LoadOptions{Args: tc.args, Env: []string{"HOME=/h"}})
			if tc.wantErr != "" {
				if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Errorf("unexpected config: %+v", cfg)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	t.Run("bad value names the variable", func(t *testing.T) {
		_, _, err := Load(LoadOptions{Env: []string{"PAYGATE_RATE_LIMIT=lots"}})
		if err == nil || errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "PAYGATE_RATE_LIMIT") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("empty is unset", func(t *testing.T) {
		cfg, _, err := Load(LoadOptions{Env: []string{"PAYGATE_PORT=", "PAYGATE_SERVER=x", "HOME=/h"}})
		if err != nil || cfg.Port != DefaultPort {
			t.Fatalf("port %d, err %v", cfg.Port, err)
		}
	})
	t.Run("alias and typos", func(t *testing.T) {
		cfg, diags, err := Load(LoadOptions{Env: []string{"PAYGATE_DEFAULT_CREDITS=7", "PAYGATE_SERVER=x", "PAYGATE_PROT=1", "PAYGATE_CI=1", "HOME=/h"}})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DefaultCreditsPerCall != 7 {
			t.Errorf("price = %d", cfg.DefaultCreditsPerCall)
		}
		if len(diags) != 1 || diags[0].Path != "PAYGATE_PROT" || !strings.Contains(diags[0].Message, "PAYGATE_PORT") {
			t.Errorf("diags = %v", diags)
		}
	})
	t.Run("compat variable warns", func(t *testing.T) {
		_, diags, err := Load(LoadOptions{Env: []string{"PAYGATE_STRIPE_SECRET=whsec", "PAYGATE_SERVER=x", "HOME=/h"}})
		if err != nil || len(diags) != 1 || !strings.Contains(diags[0].Message, "not supported yet") {
			t.Fatalf("diags %v, err %v", diags, err)
		}
	})
	t.Run("config path and home", func(t *testing.T) {
		var read string
		cfg, _, err := Load(LoadOptions{
			Env: []string{"PAYGATE_CONFIG=~/pg.yaml", "HOME=/home/u"},
			ReadFile: func(p string) ([]byte, error) {
				read = p
				return []byte("serverCommand: x\nstateFile: ~/data/s.db\n"), nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if read != "/home/u/pg.yaml" || cfg.StateFile != "/home/u/data/s.db" || cfg.Source != "/home/u/pg.yaml" {
			t.Errorf("read %q, stateFile %q, source %q", read, cfg.StateFile, cfg.Source)
		}
	})
}

// TestDocumentedEnvVars: every PAYGATE_* variable paygate-mcp documents is
// read (or, for unimplemented features, accepted with a warning).
func TestDocumentedEnvVars(t *testing.T) {
	documented := []string{
		"PAYGATE_SERVER", "PAYGATE_REMOTE_URL", "PAYGATE_CONFIG", "PAYGATE_PORT", "PAYGATE_PRICE",
		"PAYGATE_RATE_LIMIT", "PAYGATE_NAME", "PAYGATE_SHADOW", "PAYGATE_ADMIN_KEY", "PAYGATE_STATE_FILE",
		"PAYGATE_WEBHOOK_URL", "PAYGATE_WEBHOOK_SECRET", "PAYGATE_WEBHOOK_RETRIES", "PAYGATE_REFUND_ON_FAILURE",
		"PAYGATE_REDIS_URL", "PAYGATE_DRY_RUN", "PAYGATE_TOOL_PRICE", "PAYGATE_STRIPE_SECRET",
		"PAYGATE_CORS_ORIGIN", "PAYGATE_CUSTOM_HEADERS", "PAYGATE_TRUSTED_PROXIES", "PAYGATE_DEFAULT_CREDITS",
		"PAYGATE_LOG_LEVEL", "PAYGATE_LOG_FORMAT", "PAYGATE_REQUEST_TIMEOUT",
	}
	known := map[string]bool{}
	for _, e := range EnvVars() {
		if known[e.Name] {
			t.Errorf("%s listed twice", e.Name)
		}
		known[e.Name] = true
	}
	for _, name := range documented {
		if !known[name] {
			t.Errorf("%s is not read", name)
		}
	}
}

func TestDefaultStateFile(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_DATA_HOME": "/xdg", "HOME": "/h"}, "/xdg/paygate/state.db"},
		{map[string]string{"XDG_DATA_HOME": "relative", "HOME": "/h"}, "/h/.local/share/paygate/state.db"},
		{map[string]string{"HOME": "/h"}, "/h/.local/share/paygate/state.db"},
		{map[string]string{}, ""},
	} {
		if got := DefaultStateFile(env(tc.env)); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.env, got, tc.want)
		}
	}
	// No default with inMemory or redisUrl.
	cfg, _, err := Load(LoadOptions{Args: []string{"--server", "x", "--in-memory"}, Env: []string{"HOME=/h"}})
	if err != nil || cfg.StateFile != "" {
		t.Errorf("stateFile %q, err %v", cfg.StateFile, err)
	}
}

func TestReload(t *testing.T) {
	files := map[string]string{
		"a.json": `{"serverCommand": "x", "defaultCreditsPerCall": 2, "port": 1000}`,
		"b.json": `{"serverCommand": "x", "defaultCreditsPerCall": 5, "port": 1000}`,
	}
	opts := LoadOptions{
		Args:     []string{"--config", "a.json", "--port", "2000"},
		Env:      []string{"HOME=/h"},
		ReadFile: func(p string) ([]byte, error) { return []byte(files[p]), nil },
	}
	old, _, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	files["a.json"] = `{"serverCommand": "x", "defaultCreditsPerCall": 3, "port": 1001}`
	cur, _, err := old.Reload("")
	if err != nil {
		t.Fatal(err)
	}
	if cur.DefaultCreditsPerCall != 3 || cur.Port != 2000 {
		t.Errorf("reloaded price %d port %d; want 3 and the flag's 2000", cur.DefaultCreditsPerCall, cur.Port)
	}
	other, _, err := cur.Reload("b.json")
	if err != nil || other.DefaultCreditsPerCall != 5 {
		t.Fatalf("reload from b.json: %v %v", other, err)
	}
	again, _, err := other.Reload("")
	if err != nil || again.DefaultCreditsPerCall != 3 {
		t.Fatalf("a later reload must read a.json again: price %d, err %v", again.DefaultCreditsPerCall, err)
	}
	if _, _, err := Defaults().Reload(""); err == nil {
		t.Error("Reload of a Config not built by Load must fail")
	}
}

func amt(n int64) *credits.Amount { a := credits.Amount(n); return &a }
