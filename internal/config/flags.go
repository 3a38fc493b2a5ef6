package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
)

// Flag is one flag of "paygate wrap" (and "paygate validate"), and the
// PAYGATE_* variable that sets the same thing. The table in Flags is the
// single source for parsing, the environment, help and shell completion.
type Flag struct {
	Name       string   // "port" for --port
	Arg        string   // value placeholder for help ("N"); empty for a switch
	Group      string   // help section
	Usage      string   // one line
	Default    string   // shown in help; empty when there is none
	Env        string   // PAYGATE_* variable, if any
	Values     []string // the allowed values, when enumerated
	Path       bool     // the value is a file path (for completion)
	Repeatable bool     // may be given several times; values accumulate
	// Compat flags are paygate-mcp flags paygate accepts but does not
	// implement yet; using one prints a warning.
	Compat bool

	set     func(c *Config, v string) error
	backend bool // chooses the backend, replacing one from a lower layer
}

// IsSwitch reports whether the flag takes no value (--shadow).
func (f *Flag) IsSwitch() bool { return f.Arg == "" }

// Help sections, in display order.
const (
	GroupGeneral  = "General"
	GroupBackend  = "Backend"
	GroupPricing  = "Pricing & limits"
	GroupStorage  = "Storage"
	GroupHTTP     = "HTTP"
	GroupSecurity = "Security"
	GroupWebhooks = "Webhooks"
	GroupLogging  = "Logging"
)

// Groups lists the help sections in display order.
var Groups = []string{GroupGeneral, GroupBackend, GroupPricing, GroupStorage, GroupHTTP, GroupSecurity, GroupWebhooks, GroupLogging}

// EnvConfig is the variable naming the config file, like --config.
const EnvConfig = "PAYGATE_CONFIG"

// runtimeEnv are PAYGATE_* variables read by other parts of the program,
// not settings: they are not unknown.
var runtimeEnv = map[string]bool{
	"PAYGATE_PPROF": true, // internal/app: a pprof listener for benchmarks
	"PAYGATE_CI":    true, // tests: missing test dependencies fail instead of skip
}

// envAliases are extra variables paygate-mcp's docs use for a flag.
var envAliases = []EnvVar{{Name: "PAYGATE_DEFAULT_CREDITS", Flag: "price"}}

// Flags returns the flag table of paygate wrap, in help order.
func Flags() []*Flag {
	return []*Flag{
		// General
		{Name: "config", Arg: "FILE", Group: GroupGeneral, Env: EnvConfig, Path: true,
			Usage: "read settings from a JSON or YAML file (flags and env override it)"},
		{Name: "dry-run", Group: GroupGeneral, Env: "PAYGATE_DRY_RUN",
			Usage: "start the backend, print its tools and prices, then exit",
			set:   boolSetter(func(c *Config) *bool { return &c.DryRun })},
		{Name: "json", Group: GroupGeneral,
			Usage: "machine-readable output",
			set:   boolSetter(func(c *Config) *bool { return &c.JSONOutput })},

		// Backend
		{Name: "server", Arg: "CMD", Group: GroupBackend, Env: "PAYGATE_SERVER", backend: true,
			Usage: "stdio MCP server command line (or put the command after --)",
			set: func(c *Config, v string) error {
				c.ServerCommand, c.ServerArgs, c.ServerArgv = v, nil, nil
				return nil
			}},
		{Name: "remote-url", Arg: "URL", Group: GroupBackend, Env: "PAYGATE_REMOTE_URL", backend: true,
			Usage: "remote MCP server URL (Streamable HTTP or SSE)",
			set:   func(c *Config, v string) error { c.RemoteURL = v; return nil }},
		{Name: "remote-header", Arg: "'K: V'", Group: GroupBackend, Env: "PAYGATE_REMOTE_HEADERS", Repeatable: true,
			Usage: "header for the remote server, like 'Authorization: Bearer $TOKEN' (repeatable)",
			set:   headerSetter(func(c *Config) *map[string]string { return &c.RemoteHeaders }, false)},
		{Name: "remote-transport", Arg: "MODE", Group: GroupBackend, Env: "PAYGATE_REMOTE_TRANSPORT", Default: "auto", Values: RemoteTransports,
			Usage: "how to talk to --remote-url",
			set:   stringSetter(func(c *Config) *string { return &c.RemoteTransport })},
		{Name: "name", Arg: "NAME", Group: GroupBackend, Env: "PAYGATE_NAME", Default: DefaultName,
			Usage: "display name of the gated server",
			set:   stringSetter(func(c *Config) *string { return &c.Name })},
		{Name: "discovery", Arg: "MODE", Group: GroupBackend, Env: "PAYGATE_DISCOVERY", Default: "static", Values: DiscoveryModes,
			Usage: "static lists every tool; dynamic shows 3 meta-tools to search and call them",
			set:   stringSetter(func(c *Config) *string { return &c.Discovery })},
		{Name: "tool-separator", Arg: "SEP", Group: GroupBackend, Env: "PAYGATE_TOOL_SEPARATOR", Default: DefaultToolSeparator,
			Usage: "joins a server prefix and a tool name in multi-server mode",
			set:   stringSetter(func(c *Config) *string { return &c.ToolSeparator })},

		// Pricing & limits
		{Name: "price", Arg: "N", Group: GroupPricing, Env: "PAYGATE_PRICE", Default: strconv.Itoa(DefaultPrice),
			Usage: "credits charged per tool call",
			set: func(c *Config, v string) error {
				n, err := parseCredits(v)
				c.DefaultCreditsPerCall = n
				return err
			}},
		{Name: "tool-price", Arg: "TOOL:N,...", Group: GroupPricing, Env: "PAYGATE_TOOL_PRICE", Repeatable: true,
			Usage: "per-tool prices, e.g. search:1,generate:5",
			set:   setToolPrices},
		{Name: "rate-limit", Arg: "N", Group: GroupPricing, Env: "PAYGATE_RATE_LIMIT", Default: strconv.Itoa(DefaultRateLimit),
			Usage: "tool calls per minute per key (0: unlimited)",
			set:   intSetter(func(c *Config) *int64 { return &c.GlobalRateLimitPerMin })},
		{Name: "shadow", Group: GroupPricing, Env: "PAYGATE_SHADOW",
			Usage: "shadow mode: log every decision, never deny or charge",
			set:   boolSetter(func(c *Config) *bool { return &c.ShadowMode })},
		{Name: "refund-on-failure", Group: GroupPricing, Env: "PAYGATE_REFUND_ON_FAILURE",
			Usage: "give credits back when the tool call fails",
			set:   boolSetter(func(c *Config) *bool { return &c.RefundOnFailure })},
		{Name: "import-key", Arg: "KEY:N", Group: GroupPricing, Env: "PAYGATE_IMPORT_KEY", Repeatable: true,
			Usage: "create API key KEY (pg_...) with N credits at startup (repeatable)",
			set:   setImportKeys},

		// Storage
		{Name: "state-file", Arg: "FILE", Group: GroupStorage, Env: "PAYGATE_STATE_FILE", Path: true, Default: "$XDG_DATA_HOME/paygate/state.db or ~/.local/share/paygate/state.db",
			Usage: "SQLite database for keys, balances and the ledger",
			set:   stringSetter(func(c *Config) *string { return &c.StateFile })},
		{Name: "in-memory", Group: GroupStorage, Env: "PAYGATE_IN_MEMORY",
			Usage: "keep state in memory only; it is lost on exit",
			set:   boolSetter(func(c *Config) *bool { return &c.InMemory })},
		{Name: "sync", Arg: "MODE", Group: GroupStorage, Env: "PAYGATE_SYNC", Default: "full", Values: SyncModes,
			Usage: "full: acknowledged writes survive power loss; normal: faster, survives process crashes only",
			set:   stringSetter(func(c *Config) *string { return &c.Sync })},
		{Name: "redis-url", Arg: "URL", Group: GroupStorage, Env: "PAYGATE_REDIS_URL",
			Usage: "share state between gateways through Redis (redis:// or rediss://)",
			set:   stringSetter(func(c *Config) *string { return &c.RedisURL })},
		{Name: "redis-prefix", Arg: "NAME", Group: GroupStorage, Env: "PAYGATE_REDIS_PREFIX", Default: "paygate",
			Usage: "namespace of paygate's Redis keys, for several fleets on one Redis",
			set:   stringSetter(func(c *Config) *string { return &c.RedisPrefix })},
		{Name: "redis-fail-open", Group: GroupStorage, Env: "PAYGATE_REDIS_FAIL_OPEN",
			Usage: "admit calls the Redis rate limiter cannot count while Redis is down (default on; =false refuses them)",
			set: func(c *Config, v string) error {
				b, err := parseBool(v)
				c.RedisFailOpen = &b
				return err
			}},

		// HTTP
		{Name: "host", Arg: "ADDR", Group: GroupHTTP, Env: "PAYGATE_HOST", Default: DefaultHost,
			Usage: "listen address (0.0.0.0 listens on every interface)",
			set:   stringSetter(func(c *Config) *string { return &c.Host })},
		{Name: "port", Arg: "N", Group: GroupHTTP, Env: "PAYGATE_PORT", Default: strconv.Itoa(DefaultPort),
			Usage: "listen port (0: any free port)",
			set: func(c *Config, v string) error {
				n, err := parseInt(v)
				c.Port = int(n)
				return err
			}},
		{Name: "max-body", Arg: "SIZE", Group: GroupHTTP, Env: "PAYGATE_MAX_BODY", Default: ByteSize(DefaultMaxBodyBytes).String(),
			Usage: "largest request body, in bytes or like 512KiB, 1MiB",
			set: func(c *Config, v string) error {
				b, err := ParseByteSize(v)
				c.MaxBodyBytes = b
				return err
			}},
		{Name: "cors-origin", Arg: "ORIGINS", Group: GroupHTTP, Env: "PAYGATE_CORS_ORIGIN",
			Usage: "origins sent in CORS headers, comma-separated (default: *)",
			set: func(c *Config, v string) error {
				if c.CORS == nil {
					c.CORS = &CORS{}
				}
				c.CORS.Origin = splitList(v)
				return nil
			}},
		{Name: "header", Arg: "'K: V'", Group: GroupHTTP, Env: "PAYGATE_CUSTOM_HEADERS", Repeatable: true,
			Usage: "header added to every response (repeatable, or comma-separated)",
			set:   headerSetter(func(c *Config) *map[string]string { return &c.CustomHeaders }, true)},
		{Name: "session-timeout", Arg: "DUR", Group: GroupHTTP, Env: "PAYGATE_SESSION_TIMEOUT", Default: Duration(DefaultSessionTimeout).String(),
			Usage: "end MCP sessions idle this long",
			set:   durationSetter(func(c *Config) *Duration { return &c.SessionTimeout }, 0)},
		{Name: "max-sessions", Arg: "N", Group: GroupHTTP, Env: "PAYGATE_MAX_SESSIONS", Default: strconv.Itoa(DefaultMaxSessions),
			Usage: "most concurrent MCP sessions",
			set: func(c *Config, v string) error {
				n, err := parseInt(v)
				c.MaxSessions = int(n)
				return err
			}},
		{Name: "drain-timeout", Arg: "DUR", Group: GroupHTTP, Env: "PAYGATE_DRAIN_TIMEOUT", Default: Duration(DefaultDrainTimeout).String(),
			Usage: "on shutdown, wait this long for calls in flight",
			set:   durationSetter(func(c *Config) *Duration { return &c.DrainTimeout }, 0)},
		{Name: "request-timeout", Arg: "DUR", Group: GroupHTTP, Env: "PAYGATE_REQUEST_TIMEOUT", Default: Duration(DefaultRequestTimeout).String(),
			Usage: "time to read a request; 0: no limit (a bare number is milliseconds)",
			set:   durationSetter(func(c *Config) *Duration { return &c.RequestTimeout }, time.Millisecond)},
		{Name: "public-rate-limit", Arg: "N", Group: GroupHTTP, Env: "PAYGATE_PUBLIC_RATE_LIMIT", Default: strconv.Itoa(DefaultPublicRate),
			Usage: "requests per minute per IP to public endpoints (0: unlimited)",
			set:   intSetter(func(c *Config) *int64 { return &c.PublicRateLimitPerMin })},

		// Security
		{Name: "admin-key", Arg: "KEY", Group: GroupSecurity, Env: "PAYGATE_ADMIN_KEY",
			Usage: "admin API key (default: generated and printed at startup)",
			set:   stringSetter(func(c *Config) *string { return &c.AdminKey })},
		{Name: "allowed-origins", Arg: "ORIGINS", Group: GroupSecurity, Env: "PAYGATE_ALLOWED_ORIGINS",
			Usage: "browser origins allowed to call /mcp, comma-separated",
			set:   listSetter(func(c *Config) *[]string { return &c.AllowedOrigins })},
		{Name: "allowed-hosts", Arg: "HOSTS", Group: GroupSecurity, Env: "PAYGATE_ALLOWED_HOSTS",
			Usage: "Host header values accepted, comma-separated",
			set:   listSetter(func(c *Config) *[]string { return &c.AllowedHosts })},
		{Name: "trusted-proxies", Arg: "CIDRS", Group: GroupSecurity, Env: "PAYGATE_TRUSTED_PROXIES",
			Usage: "proxies whose X-Forwarded-For is trusted, comma-separated IPs/CIDRs",
			set:   listSetter(func(c *Config) *[]string { return &c.TrustedProxies })},

		// Webhooks
		{Name: "webhook-url", Arg: "URL", Group: GroupWebhooks, Env: "PAYGATE_WEBHOOK_URL",
			Usage: "POST batched usage and admin events to this URL",
			set:   stringSetter(func(c *Config) *string { return &c.WebhookURL })},
		{Name: "webhook-secret", Arg: "SECRET", Group: GroupWebhooks, Env: "PAYGATE_WEBHOOK_SECRET",
			Usage: "sign webhook payloads with HMAC-SHA256",
			set:   stringSetter(func(c *Config) *string { return &c.WebhookSecret })},
		{Name: "webhook-retries", Arg: "N", Group: GroupWebhooks, Env: "PAYGATE_WEBHOOK_RETRIES", Default: strconv.Itoa(DefaultWebhookRetries),
			Usage: "retries of a failed delivery",
			set: func(c *Config, v string) error {
				n, err := parseInt(v)
				c.WebhookMaxRetries = int(n)
				return err
			}},

		// Logging
		{Name: "log-format", Arg: "FORMAT", Group: GroupLogging, Env: "PAYGATE_LOG_FORMAT", Default: "text", Values: LogFormats,
			Usage: "log format",
			set:   stringSetter(func(c *Config) *string { return &c.LogFormat })},
		{Name: "log-level", Arg: "LEVEL", Group: GroupLogging, Env: "PAYGATE_LOG_LEVEL", Default: "info", Values: LogLevels,
			Usage: "least severe level logged",
			set:   stringSetter(func(c *Config) *string { return &c.LogLevel })},

		// paygate-mcp flags accepted for compatibility.
		{Name: "stripe-secret", Arg: "SECRET", Env: "PAYGATE_STRIPE_SECRET", Compat: true, Usage: "Stripe payments"},
		{Name: "headers-timeout", Arg: "MS", Env: "PAYGATE_HEADERS_TIMEOUT", Compat: true, Usage: "the headers timeout"},
		{Name: "keepalive-timeout", Arg: "MS", Env: "PAYGATE_KEEPALIVE_TIMEOUT", Compat: true, Usage: "the keep-alive timeout"},
		{Name: "max-requests-per-socket", Arg: "N", Env: "PAYGATE_MAX_REQUESTS_PER_SOCKET", Compat: true, Usage: "the per-socket request limit"},
	}
}

// EnvVar is one PAYGATE_* variable.
type EnvVar struct {
	Name string
	Flag string // the flag it mirrors, without dashes
}

// EnvVars lists every PAYGATE_* variable paygate reads, in flag order.
func EnvVars() []EnvVar {
	var out []EnvVar
	for _, f := range Flags() {
		if f.Env != "" {
			out = append(out, EnvVar{Name: f.Env, Flag: f.Name})
		}
	}
	return append(out, envAliases...)
}

// ── setters ──────────────────────────────────────────────────────────────

func stringSetter(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func boolSetter(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := parseBool(v)
		*field(c) = b
		return err
	}
}

func intSetter(field func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseInt(v)
		*field(c) = n
		return err
	}
}

func durationSetter(field func(*Config) *Duration, bareUnit time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := ParseDuration(v, bareUnit)
		*field(c) = d
		return err
	}
}

func listSetter(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = splitList(v); return nil }
}

// headerSetter adds "K: V" headers to a map. Several headers may be given
// on separate lines and, with commas, as "K1: V1,K2: V2"; a comma-separated
// piece with no colon continues the previous value ("Accept: a, b").
func headerSetter(field func(*Config) *map[string]string, commas bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		var pieces []string
		for _, line := range strings.Split(v, "\n") {
			if commas {
				pieces = append(pieces, strings.Split(line, ",")...)
			} else {
				pieces = append(pieces, line)
			}
		}
		m := field(c)
		if *m == nil {
			*m = map[string]string{}
		}
		last := ""
		for _, p := range pieces {
			if strings.TrimSpace(p) == "" {
				continue
			}
			k, val, ok := strings.Cut(p, ":")
			k = strings.TrimSpace(k)
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				if last != "" {
					(*m)[last] += "," + p
					continue
				}
				return fmt.Errorf("%q is not a header; write it as 'Name: value'", strings.TrimSpace(p))
			}
			(*m)[k] = strings.TrimSpace(val)
			last = k
		}
		return nil
	}
}

// setToolPrices reads "search:1,generate:5" (or "search=1"). The price is
// after the last ':' or '=', so prefixed names work: "fs:read_file:2".
func setToolPrices(c *Config, v string) error {
	for _, p := range splitList(v) {
		i := strings.LastIndexAny(p, ":=")
		if i <= 0 {
			return fmt.Errorf("%q is not TOOL:PRICE; write it like search:5", p)
		}
		tool := strings.TrimSpace(p[:i])
		n, err := parseCredits(p[i+1:])
		if err != nil {
			return fmt.Errorf("price of %s: %w", tool, err)
		}
		if c.ToolPricing == nil {
			c.ToolPricing = map[string]ToolPrice{}
		}
		tp := c.ToolPricing[tool]
		tp.CreditsPerCall = &n
		c.ToolPricing[tool] = tp
	}
	return nil
}

// setImportKeys reads "pg_abc:100" (comma-separated pairs allowed).
func setImportKeys(c *Config, v string) error {
	for _, p := range splitList(v) {
		i := strings.LastIndexByte(p, ':')
		if i <= 0 {
			return fmt.Errorf("%q is not KEY:CREDITS; write it like pg_abc123:100", MaskSecret(p))
		}
		key := strings.TrimSpace(p[:i])
		n, err := parseCredits(p[i+1:])
		if err != nil {
			return fmt.Errorf("credits of %s: %w", MaskSecret(key), err)
		}
		if c.ImportKeys == nil {
			c.ImportKeys = map[string]credits.Amount{}
		}
		c.ImportKeys[key] = n
	}
	return nil
}

// ── value parsers ────────────────────────────────────────────────────────

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "y", "on":
		return true, nil
	case "0", "f", "false", "no", "n", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean; use true or false", v)
}

func parseInt(v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%q is out of range", v)
		}
		return 0, fmt.Errorf("%q is not a whole number", v)
	}
	return n, nil
}

func parseCredits(v string) (credits.Amount, error) {
	n, err := credits.Parse([]byte(strings.TrimSpace(v)))
	if err != nil {
		return 0, fmt.Errorf("%q: credits %w", v, err)
	}
	return credits.Amount(n), nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
