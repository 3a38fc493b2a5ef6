// Package config defines paygate's settings and loads them from a config
// file (JSON or YAML), PAYGATE_* environment variables and the wrap
// command's flags, in that order of increasing precedence:
//
//	flags > environment > file > defaults
//
// The JSON keys are paygate-mcp's, so an existing paygate-mcp config file
// loads unchanged. Keys paygate-mcp documents that paygate does not
// implement yet are accepted and reported as warnings; keys nobody knows
// are reported as warnings with a "did you mean" suggestion. Nothing is
// dropped silently and nothing unknown is fatal.
//
// The lifecycle follows Caddy's modules: Load builds a complete Config,
// Validate (pure, no I/O) reports every problem with its JSON path, and a
// reload builds and validates a whole new Config before Reloadable says
// which keys may be swapped in without a restart.
package config

import (
	"fmt"
	"reflect"
	"time"

	"github.com/paygate/paygate/internal/credits"
)

// Config is paygate's complete configuration. The JSON tags are the config
// file keys. A *Config handed to the app is never mutated; a reload builds
// a new one.
//
// Fields tagged reload:"hot" may change on a running gateway (see
// Reloadable); every other key needs a restart.
type Config struct {
	// ── Backend ──────────────────────────────────────────────────────────

	// Name is the display name shown in /info and the startup banner.
	Name string `json:"name"`

	// ServerCommand starts a stdio MCP server. When ServerArgs is empty it
	// is a whole command line ("npx -y @modelcontextprotocol/server-filesystem
	// /tmp", as --server gives it) that the stdio backend splits; otherwise
	// it is split the same way and ServerArgs are appended verbatim, so
	// paygate-mcp's {"serverCommand": "npx", "serverArgs": [...]} works
	// unchanged. Use StdioArgv to get the final argv.
	ServerCommand string   `json:"serverCommand,omitempty"`
	ServerArgs    []string `json:"serverArgs,omitempty"`
	// ServerArgv is the exact argv given after "paygate wrap --". It wins
	// over ServerCommand and is never split. It has no config file key.
	ServerArgv []string `json:"-"`

	// RemoteURL is a remote MCP server (Streamable HTTP or legacy SSE).
	RemoteURL string `json:"remoteUrl,omitempty"`
	// RemoteHeaders are sent with every request to RemoteURL, for example
	// {"Authorization": "Bearer …"}.
	RemoteHeaders map[string]string `json:"remoteHeaders,omitempty"`
	// RemoteTransport is "auto" (try Streamable HTTP, fall back to SSE),
	// "streamable" or "sse".
	RemoteTransport string `json:"remoteTransport"`

	// Servers puts several backends behind one gateway; their tools are
	// exposed as prefix + ToolSeparator + tool ("fs:read_file").
	Servers []Server `json:"servers,omitempty"`
	// ToolSeparator joins a server prefix and a tool name. Default ":".
	ToolSeparator string `json:"toolSeparator"`
	// Discovery is "static" (tools/list shows every tool) or "dynamic"
	// (three meta-tools list, search and call the real ones).
	Discovery string `json:"discovery"`

	// ── Backend resilience (resilience.go) ───────────────────────────────

	// ToolTimeoutMs caps a tool call, in milliseconds, unless its
	// toolPricing entry sets its own timeoutMs; 0 means no limit. A call
	// that times out is answered -32004, cancelled upstream and not billed.
	// Default 60000.
	ToolTimeoutMs int64 `json:"toolTimeoutMs" reload:"hot"`
	// CircuitBreakerThreshold is how many consecutive failures of a
	// backend open its circuit breaker; 0 turns breakers off. Default 5.
	CircuitBreakerThreshold int `json:"circuitBreakerThreshold"`
	// CircuitBreakerCooldownSeconds is how long an open breaker refuses
	// calls before it lets one trial call through. Default 30.
	CircuitBreakerCooldownSeconds int64 `json:"circuitBreakerCooldownSeconds"`
	// RetryMaxRetries is how often a call that never reached its backend
	// (connection refused, backend restarting, HTTP 503) is sent again; 0
	// turns retries off. Calls that may have run are never retried.
	// Default 2.
	RetryMaxRetries int `json:"retryMaxRetries"`
	// RetryBaseDelayMs and RetryMaxDelayMs shape the retry backoff
	// (exponential, capped, full jitter). Defaults 100 and 1000.
	RetryBaseDelayMs int64 `json:"retryBaseDelayMs"`
	RetryMaxDelayMs  int64 `json:"retryMaxDelayMs"`
	// RetryBudgetPercent caps retries at this share of a backend's calls
	// over 10 s, plus 10 retries. Default 10.
	RetryBudgetPercent int `json:"retryBudgetPercent"`

	// ── Call controls: concurrency, response cache, aliases (features.go) ──

	// MaxConcurrentPerKey caps the tool calls one key may have in flight
	// at once; 0 (the default) means no cap. A call over it, or over its
	// tool's toolPricing.<tool>.maxConcurrent, is answered -32005 with a
	// retry hint. POST /admin/concurrency changes both at runtime.
	MaxConcurrentPerKey int64 `json:"maxConcurrentPerKey" reload:"hot"`
	// CacheTTLSeconds caches the successful results of every tool for this
	// many seconds, unless the tool's toolPricing entry sets its own
	// cacheTtlSeconds (0 there turns caching off for that tool). 0, the
	// default, caches only tools that set their own.
	CacheTTLSeconds int64 `json:"cacheTtlSeconds" reload:"hot"`
	// MaxCacheEntries and CacheMaxBytes bound the response cache; the
	// least recently used results go first. Defaults 1000 and 64 MiB.
	MaxCacheEntries int64    `json:"maxCacheEntries" reload:"hot"`
	CacheMaxBytes   ByteSize `json:"cacheMaxBytes" reload:"hot"`
	// CacheScope is who shares a cached result: "key" (each API key its
	// own, the default), "namespace" (keys of one namespace) or "global"
	// (every key; for public data only).
	CacheScope string `json:"cacheScope" reload:"hot"`
	// CacheHitCharge is what a cache hit costs: "free" (the default, as in
	// paygate-mcp: no ledger entry, a usage record with outcome
	// "cache_hit") or "full" (charged like the call it replaces).
	CacheHitCharge string `json:"cacheHitCharge" reload:"hot"`
	// ToolAliases maps deprecated tool names to their replacements. A call
	// to an alias runs, and is priced, limited and ACL-checked as, the
	// tool it points to; its response carries Deprecation and Sunset
	// headers.
	ToolAliases map[string]ToolAlias `json:"toolAliases,omitempty" reload:"hot"`
	// ListToolAliases adds each alias to tools/list as a deprecated copy
	// of the tool it points to.
	ListToolAliases bool `json:"listToolAliases" reload:"hot"`

	// ── Pricing & limits ─────────────────────────────────────────────────

	// DefaultCreditsPerCall is the price of a tool call with no entry in
	// ToolPricing. Default 1.
	DefaultCreditsPerCall credits.Amount `json:"defaultCreditsPerCall" reload:"hot"`
	// ToolPricing overrides the price, rate limit and timeout per tool.
	ToolPricing map[string]ToolPrice `json:"toolPricing,omitempty" reload:"hot"`
	// GlobalRateLimitPerMin caps tool calls per key per minute; 0 means no
	// limit. Default 60.
	GlobalRateLimitPerMin int64 `json:"globalRateLimitPerMin" reload:"hot"`
	// GlobalQuota is the default daily/monthly quota of keys that have none.
	GlobalQuota Quota `json:"globalQuota" reload:"hot"`
	// FreeMethods pass without an API key and without a charge.
	FreeMethods []string `json:"freeMethods" reload:"hot"`
	// ShadowMode logs every decision but never denies or charges.
	ShadowMode bool `json:"shadowMode" reload:"hot"`
	// RefundOnFailure gives the credits of a failed tool call back.
	RefundOnFailure bool `json:"refundOnFailure" reload:"hot"`
	// ImportKeys creates API keys with the given balance at startup (keys
	// that already exist are left alone). Keys start with "pg_".
	ImportKeys map[string]credits.Amount `json:"importKeys,omitempty"`

	// ── Storage ──────────────────────────────────────────────────────────

	// StateFile is the SQLite database holding keys, balances and the
	// ledger. Default: $XDG_DATA_HOME/paygate/state.db, else
	// ~/.local/share/paygate/state.db (see DefaultStateFile). Unused with
	// InMemory or RedisURL.
	StateFile string `json:"stateFile,omitempty"`
	// InMemory keeps all state in memory: everything is lost on exit.
	InMemory bool `json:"inMemory"`
	// Sync is SQLite's durability: "full" (every acknowledged write survives power loss, default) or
	// "normal" (faster; the last commits may be lost on power failure).
	Sync string `json:"sync"`
	// RedisURL shares state between several gateways (redis:// or rediss://).
	RedisURL string `json:"redisUrl,omitempty"`
	// RedisPrefix namespaces paygate's Redis keys as "{prefix}:..." (the
	// braces are a cluster hash tag); every instance of a fleet uses the
	// same one. Default "paygate".
	RedisPrefix string `json:"redisPrefix,omitempty"`
	// RedisFailOpen admits calls the Redis rate limiter cannot count while
	// Redis is unreachable (default true, like paygate-mcp); false refuses
	// them with store_unavailable. Charges never fail open.
	RedisFailOpen *bool `json:"redisFailOpen,omitempty"`

	// ── HTTP ─────────────────────────────────────────────────────────────

	// Host is the listen address. Default 127.0.0.1.
	Host string `json:"host"`
	// Port is the listen port; 0 picks a free one. Default 3402.
	Port int `json:"port"`
	// MaxBodyBytes caps a request body. Default 1 MiB.
	MaxBodyBytes ByteSize `json:"maxBodyBytes"`
	// AllowedOrigins are the browser origins allowed to call /mcp (the MCP
	// spec's DNS-rebinding defence). Empty: only requests without an
	// Origin header, or from the gateway's own origin.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	// AllowedHosts are the Host header values accepted. Empty: the
	// gateway's built-in default for its listen address.
	AllowedHosts []string `json:"allowedHosts,omitempty"`
	// SessionTimeout ends an idle MCP session. Default 30m.
	SessionTimeout Duration `json:"sessionTimeout"`
	// MaxSessions caps concurrent MCP sessions. Default 10000.
	MaxSessions int `json:"maxSessions"`
	// DrainTimeout is how long shutdown waits for in-flight calls. Default 30s.
	DrainTimeout Duration `json:"drainTimeout"`
	// RequestTimeout caps the time to read one request from a client
	// (paygate-mcp's requestTimeoutMs); 0 means no limit. Default 30s.
	// A tool call's own limit is ToolPricing[tool].TimeoutMs.
	RequestTimeout Duration `json:"requestTimeout"`
	// PublicRateLimitPerMin caps requests per client IP to the public
	// endpoints (/health, /pricing, /.well-known/…); 0 means no limit.
	// Default 300.
	PublicRateLimitPerMin int64 `json:"publicRateLimitPerMin"`
	// CORS sets the Access-Control-* headers. Nil: allow any origin.
	CORS *CORS `json:"cors,omitempty" reload:"hot"`
	// CustomHeaders are added to every HTTP response.
	CustomHeaders map[string]string `json:"customHeaders,omitempty" reload:"hot"`
	// TrustedProxies are the IPs and CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []string `json:"trustedProxies,omitempty"`

	// ── Security ─────────────────────────────────────────────────────────

	// AdminKey authenticates the admin API. Empty: one is generated and
	// printed at startup.
	AdminKey string `json:"adminKey,omitempty"`
	// OAuth enables the OAuth 2.1 authorization server. Nil: off.
	OAuth *OAuth `json:"oauth,omitempty"`

	// ── Webhooks & alerts ────────────────────────────────────────────────

	// WebhookURL receives batched usage and admin events.
	WebhookURL string `json:"webhookUrl,omitempty" reload:"hot"`
	// WebhookSecret signs webhook payloads (HMAC-SHA256).
	WebhookSecret string `json:"webhookSecret,omitempty" reload:"hot"`
	// WebhookMaxRetries is the number of retries of a failed delivery.
	// Default 5.
	WebhookMaxRetries int `json:"webhookMaxRetries" reload:"hot"`
	// WebhookFilters route some events to other destinations.
	WebhookFilters []WebhookFilter `json:"webhookFilters,omitempty" reload:"hot"`
	// AlertRules fire alert.fired events when thresholds are crossed.
	AlertRules []AlertRule `json:"alertRules,omitempty" reload:"hot"`

	// ── Logging ──────────────────────────────────────────────────────────

	// LogFormat is "text" or "json". Default "text".
	LogFormat string `json:"logFormat"`
	// LogLevel is "debug", "info", "warn", "error" or "silent". Default "info".
	LogLevel string `json:"logLevel"`

	// ── Usage log retention (usage.go) ───────────────────────────────────

	// UsageRetentionDays deletes usage records older than this; nil means
	// DefaultUsageRetentionDays, 0 keeps them regardless of age.
	UsageRetentionDays *int64 `json:"usageRetentionDays,omitempty"`
	// UsageMaxRecords keeps at most this many newest usage records; nil
	// means DefaultUsageMaxRecords, 0 means no count limit.
	UsageMaxRecords *int64 `json:"usageMaxRecords,omitempty"`

	// ── Audit trail (audit.go) ───────────────────────────────────────────

	// AuditRetentionDays deletes audit events older than this; nil means
	// DefaultAuditRetentionDays, 0 keeps them regardless of age.
	AuditRetentionDays *int64 `json:"auditRetentionDays,omitempty"`
	// AuditMaxEvents keeps at most this many newest audit events; nil means
	// DefaultAuditMaxEvents, 0 means no count limit.
	AuditMaxEvents *int64 `json:"auditMaxEvents,omitempty"`
	// AuditGateAllows is how allowed tool calls reach the audit trail:
	// "summary" (one event per key and interval, the default), "all" or
	// "none". Every denial is audited.
	AuditGateAllows string `json:"auditGateAllows,omitempty"`
	// AuditSummaryInterval is how often gate summaries are written. 0
	// means DefaultAuditSummaryInterval.
	AuditSummaryInterval Duration `json:"auditSummaryInterval,omitempty"`

	// ── Run options (flags and environment only) ─────────────────────────

	// DryRun starts the backend, prints the discovered tools and their
	// prices, and exits.
	DryRun bool `json:"dryRun,omitempty"`
	// JSONOutput asks for machine-readable output (wrap --json).
	JSONOutput bool `json:"-"`
	// Source is the config file this Config was read from, if any.
	Source string `json:"-"`

	// loaded remembers how Load built this Config, for Reload.
	loaded *LoadOptions
}

// Server is one backend of multi-server mode.
type Server struct {
	// Prefix names the server's tools: prefix + separator + tool.
	Prefix        string   `json:"prefix"`
	ServerCommand string   `json:"serverCommand,omitempty"`
	ServerArgs    []string `json:"serverArgs,omitempty"`
	RemoteURL     string   `json:"remoteUrl,omitempty"`
	// Headers are sent to RemoteURL.
	Headers map[string]string `json:"headers,omitempty"`
	// RemoteTransport is "auto", "streamable" or "sse"; empty means auto.
	RemoteTransport string `json:"remoteTransport,omitempty"`
	// Env is added to the environment of ServerCommand.
	Env map[string]string `json:"env,omitempty"`
}

// StdioArgv returns the argv that starts this server, splitting
// ServerCommand with split (stdio.SplitCommand). It is empty when the
// server is remote.
func (s *Server) StdioArgv(split func(string) ([]string, error)) ([]string, error) {
	return stdioArgv(nil, s.ServerCommand, s.ServerArgs, split)
}

// StdioArgv returns the argv of the single stdio backend: ServerArgv
// verbatim, or ServerCommand split with split (stdio.SplitCommand) followed
// by ServerArgs. It is empty when the backend is not a stdio server.
func (c *Config) StdioArgv(split func(string) ([]string, error)) ([]string, error) {
	return stdioArgv(c.ServerArgv, c.ServerCommand, c.ServerArgs, split)
}

func stdioArgv(exact []string, command string, args []string, split func(string) ([]string, error)) ([]string, error) {
	if len(exact) > 0 {
		return append([]string(nil), exact...), nil
	}
	if command == "" {
		return nil, nil
	}
	argv, err := split(command)
	if err != nil {
		return nil, fmt.Errorf("split serverCommand: %w", err)
	}
	return append(argv, args...), nil
}

// ToolPrice is one entry of toolPricing.
type ToolPrice struct {
	// CreditsPerCall is the tool's price per call; nil (absent) means the
	// default price, so an entry that only sets a rate limit does not make
	// the tool free.
	CreditsPerCall *credits.Amount `json:"creditsPerCall,omitempty"`
	// CreditsPerKbInput adds this many credits per KiB of arguments
	// (rounded up, at least 1 KiB).
	CreditsPerKbInput credits.Amount `json:"creditsPerKbInput,omitempty"`
	// RateLimitPerMin caps calls of this tool per key per minute; 0 means
	// only the global limit applies.
	RateLimitPerMin int64 `json:"rateLimitPerMin,omitempty"`
	// TimeoutMs caps one call of this tool in milliseconds; 0: no limit.
	TimeoutMs int64 `json:"timeoutMs,omitempty"`
	// MaxConcurrent caps the calls of this tool in flight at once, across
	// all keys; 0: no cap.
	MaxConcurrent int64 `json:"maxConcurrent,omitempty"`
	// CacheTTLSeconds caches this tool's successful results; nil: the
	// global cacheTtlSeconds, 0: never cached.
	CacheTTLSeconds *int64 `json:"cacheTtlSeconds,omitempty"`
}

// Rule returns the tool's price rule; def is the default price per call.
func (p ToolPrice) Rule(def credits.Credits) credits.Rule {
	r := credits.Rule{PerCall: def, PerKBInput: credits.Credits(p.CreditsPerKbInput)}
	if p.CreditsPerCall != nil {
		r.PerCall = credits.Credits(*p.CreditsPerCall)
	}
	return r
}

// Quota caps calls and credits per UTC day and month; zero means no cap.
// It has store.Quota's fields and JSON keys.
type Quota struct {
	DailyCalls     int64          `json:"dailyCallLimit"`
	MonthlyCalls   int64          `json:"monthlyCallLimit"`
	DailyCredits   credits.Amount `json:"dailyCreditLimit"`
	MonthlyCredits credits.Amount `json:"monthlyCreditLimit"`
}

// IsZero reports whether q sets no cap.
func (q Quota) IsZero() bool { return q == Quota{} }

// CORS is the cors object.
type CORS struct {
	// Origin lists the allowed origins; "*" allows any. A single string is
	// accepted too.
	Origin []string `json:"origin"`
	// Credentials sends Access-Control-Allow-Credentials: true.
	Credentials bool `json:"credentials,omitempty"`
	// MaxAge is the preflight cache time in seconds; 0 means the
	// gateway's default (86400).
	MaxAge int64 `json:"maxAge,omitempty"`
}

// OAuth is the oauth object.
type OAuth struct {
	// Issuer is the public base URL; empty: derived from the request.
	Issuer string `json:"issuer,omitempty"`
	// AccessTokenTTL and RefreshTokenTTL are lifetimes in seconds; 0
	// means the defaults (3600 and 2592000).
	AccessTokenTTL  int64    `json:"accessTokenTtl,omitempty"`
	RefreshTokenTTL int64    `json:"refreshTokenTtl,omitempty"`
	Scopes          []string `json:"scopes,omitempty"`
}

// WebhookFilter sends matching events to another URL.
type WebhookFilter struct {
	ID          string   `json:"id,omitempty"`
	Name        string   `json:"name,omitempty"`
	Events      []string `json:"events"`
	URL         string   `json:"url"`
	Secret      string   `json:"secret,omitempty"`
	KeyPrefixes []string `json:"keyPrefixes,omitempty"`
	// Active defaults to true.
	Active *bool `json:"active,omitempty"`
}

// IsActive reports whether the filter routes events.
func (f *WebhookFilter) IsActive() bool { return f.Active == nil || *f.Active }

// AlertRule is one entry of alertRules.
type AlertRule struct {
	// Type is one of AlertTypes.
	Type string `json:"type"`
	// Threshold's unit depends on Type: a percentage (spending_threshold,
	// quota_warning), credits (credits_low), seconds (key_expiry_soon) or
	// a count of denials in five minutes (rate_limit_spike).
	Threshold int64 `json:"threshold"`
	// CooldownSeconds between two alerts of this rule for one key; 0
	// means the default (300).
	CooldownSeconds int64 `json:"cooldownSeconds,omitempty"`
}

// Allowed values of the enumerated settings.
var (
	RemoteTransports = []string{"auto", "streamable", "sse"}
	DiscoveryModes   = []string{"static", "dynamic"}
	SyncModes        = []string{"full", "normal"}
	LogFormats       = []string{"text", "json"}
	LogLevels        = []string{"debug", "info", "warn", "error", "silent"}
	AlertTypes       = []string{"spending_threshold", "credits_low", "quota_warning", "key_expiry_soon", "rate_limit_spike"}
)

// Defaults of the settings that have one.
const (
	DefaultName           = "paygate"
	DefaultHost           = "127.0.0.1"
	DefaultPort           = 3402
	DefaultPrice          = 1
	DefaultRateLimit      = 60
	DefaultMaxBodyBytes   = 1 << 20
	DefaultSessionTimeout = 30 * time.Minute
	DefaultMaxSessions    = 10000
	DefaultDrainTimeout   = 30 * time.Second
	DefaultRequestTimeout = 30 * time.Second
	DefaultPublicRate     = 300
	DefaultToolSeparator  = ":"
	DefaultWebhookRetries = 5
)

// DefaultFreeMethods are the methods that need no API key by default.
func DefaultFreeMethods() []string {
	return []string{
		"initialize", "initialized", "notifications/initialized", "ping",
		"tools/list", "resources/list", "prompts/list",
	}
}

// Defaults returns a Config holding every default. It has no backend, so it
// does not validate on its own.
func Defaults() *Config {
	return &Config{
		Name:                  DefaultName,
		RemoteTransport:       "auto",
		ToolSeparator:         DefaultToolSeparator,
		Discovery:             "static",
		DefaultCreditsPerCall: DefaultPrice,
		GlobalRateLimitPerMin: DefaultRateLimit,
		FreeMethods:           DefaultFreeMethods(),
		Sync:                  "full",
		Host:                  DefaultHost,
		Port:                  DefaultPort,
		MaxBodyBytes:          DefaultMaxBodyBytes,
		SessionTimeout:        Duration(DefaultSessionTimeout),
		MaxSessions:           DefaultMaxSessions,
		DrainTimeout:          Duration(DefaultDrainTimeout),
		RequestTimeout:        Duration(DefaultRequestTimeout),
		PublicRateLimitPerMin: DefaultPublicRate,
		WebhookMaxRetries:     DefaultWebhookRetries,
		LogFormat:             "text",
		LogLevel:              "info",

		ToolTimeoutMs:                 DefaultToolTimeoutMs,
		CircuitBreakerThreshold:       DefaultCircuitBreakerThreshold,
		CircuitBreakerCooldownSeconds: DefaultCircuitBreakerCooldownSeconds,
		RetryMaxRetries:               DefaultRetryMaxRetries,
		RetryBaseDelayMs:              DefaultRetryBaseDelayMs,
		RetryMaxDelayMs:               DefaultRetryMaxDelayMs,
		RetryBudgetPercent:            DefaultRetryBudgetPercent,

		MaxCacheEntries: DefaultMaxCacheEntries,
		CacheMaxBytes:   DefaultCacheMaxBytes,
		CacheScope:      "key",
		CacheHitCharge:  "free",
	}
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	return deepCopy(reflect.ValueOf(c)).Interface().(*Config)
}

// deepCopy copies maps, slices and pointers recursively. Structs are first
// copied whole (so unexported fields keep their values), then their
// exported fields are replaced by deep copies.
func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(deepCopy(v.Elem()))
		return p
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(deepCopy(v.Index(i)))
		}
		return s
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			m.SetMapIndex(iter.Key(), deepCopy(iter.Value()))
		}
		return m
	case reflect.Struct:
		s := reflect.New(v.Type()).Elem()
		s.Set(v)
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				s.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return s
	default:
		return v
	}
}
