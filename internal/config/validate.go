package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/paygate/paygate/internal/credits"
)

// Validate reports every problem of c as diagnostics. It is pure: no file, network or clock access, so it can run
// on every reload and in "paygate validate".
func (c *Config) Validate() []Diagnostic {
	var ds diags
	c.validateBackend(&ds)
	c.validateResilience(&ds)
	c.validateFeatures(&ds)
	c.validatePricing(&ds)
	c.validateStorage(&ds)
	c.validateHTTP(&ds)
	c.validateSecurity(&ds)
	c.validateWebhooks(&ds)
	c.validateLogging(&ds)
	c.validateAudit(&ds)
	c.validateUsage(&ds)
	return ds
}

var prefixPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

func (c *Config) validateBackend(ds *diags) {
	stdio := c.ServerCommand != "" || len(c.ServerArgv) > 0
	remote := c.RemoteURL != ""
	multi := len(c.Servers) > 0
	switch {
	case !stdio && !remote && !multi:
		ds.errorf("serverCommand", "nothing to wrap: give --server \"CMD\", --remote-url URL, or a config file with serverCommand, remoteUrl or servers")
	case stdio && remote:
		ds.errorf("remoteUrl", "serverCommand and remoteUrl are both set; a gateway wraps one backend, or use servers for several")
	case multi && (stdio || remote):
		ds.errorf("servers", "servers cannot be combined with serverCommand or remoteUrl; move that backend into servers")
	}
	if len(c.ServerArgs) > 0 && c.ServerCommand == "" {
		ds.errorf("serverArgs", "is set without serverCommand; set serverCommand to the program to run")
	}
	if remote {
		checkURL(ds, "remoteUrl", c.RemoteURL, "http", "https")
	}
	checkEnum(ds, "remoteTransport", c.RemoteTransport, RemoteTransports)
	if len(c.RemoteHeaders) > 0 && !remote {
		ds.warnf("remoteHeaders", "remoteHeaders is set but remoteUrl is not; the headers are unused")
	}
	checkHeaders(ds, "remoteHeaders", c.RemoteHeaders)

	if c.ToolSeparator == "" {
		ds.errorf("toolSeparator", "must not be empty; the default is %q", DefaultToolSeparator)
	} else if strings.IndexFunc(c.ToolSeparator, unicode.IsSpace) >= 0 {
		ds.errorf("toolSeparator", "must not contain spaces, got %q", c.ToolSeparator)
	}
	seen := map[string]int{}
	for i, s := range c.Servers {
		p := fmt.Sprintf("servers[%d]", i)
		switch {
		case s.Prefix == "":
			ds.errorf(p+".prefix", "missing; each server needs a unique prefix for its tools, like \"fs\"")
		case c.ToolSeparator != "" && strings.Contains(s.Prefix, c.ToolSeparator):
			ds.errorf(p+".prefix", "%q contains the tool separator %q; tool names could not be routed", s.Prefix, c.ToolSeparator)
		case !prefixPattern.MatchString(s.Prefix):
			ds.warnf(p+".prefix", "%q has unusual characters; use letters, digits, '-' and '_', starting with a letter", s.Prefix)
		}
		if j, dup := seen[s.Prefix]; dup && s.Prefix != "" {
			ds.errorf(p+".prefix", "%q is already the prefix of servers[%d]; prefixes must be unique", s.Prefix, j)
		} else {
			seen[s.Prefix] = i
		}
		switch {
		case s.ServerCommand == "" && s.RemoteURL == "":
			ds.errorf(p, "has neither serverCommand nor remoteUrl; set one")
		case s.ServerCommand != "" && s.RemoteURL != "":
			ds.errorf(p, "has both serverCommand and remoteUrl; set one")
		}
		if len(s.ServerArgs) > 0 && s.ServerCommand == "" {
			ds.errorf(p+".serverArgs", "is set without serverCommand")
		}
		if s.RemoteURL != "" {
			checkURL(ds, p+".remoteUrl", s.RemoteURL, "http", "https")
		}
		if s.RemoteTransport != "" {
			checkEnum(ds, p+".remoteTransport", s.RemoteTransport, RemoteTransports)
		}
		checkHeaders(ds, p+".headers", s.Headers)
		if len(s.Headers) > 0 && s.RemoteURL == "" {
			ds.warnf(p+".headers", "headers are only sent to a remoteUrl; they are unused")
		}
		if len(s.Env) > 0 && s.ServerCommand == "" {
			ds.warnf(p+".env", "env is only passed to a serverCommand; it is unused")
		}
		for _, k := range sortedKeys(s.Env) {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				ds.errorf(joinPath(p+".env", k), "is not a valid environment variable name")
			}
		}
	}
	checkEnum(ds, "discovery", c.Discovery, DiscoveryModes)
}

func (c *Config) validatePricing(ds *diags) {
	checkCredits(ds, "defaultCreditsPerCall", c.DefaultCreditsPerCall)
	for _, tool := range sortedKeys(c.ToolPricing) {
		tp := c.ToolPricing[tool]
		p := joinPath("toolPricing", tool)
		if strings.TrimSpace(tool) == "" {
			ds.errorf(p, "tool name is empty")
		}
		if tp.CreditsPerCall != nil {
			checkCredits(ds, p+".creditsPerCall", *tp.CreditsPerCall)
		}
		checkCredits(ds, p+".creditsPerKbInput", tp.CreditsPerKbInput)
		checkNonNegative(ds, p+".rateLimitPerMin", tp.RateLimitPerMin, "calls per minute; 0 means only the global limit applies")
		checkNonNegative(ds, p+".timeoutMs", tp.TimeoutMs, "milliseconds; 0 means no limit")
	}
	checkNonNegative(ds, "globalRateLimitPerMin", c.GlobalRateLimitPerMin, "calls per minute per key; 0 means unlimited")
	if c.GlobalRateLimitPerMin == 0 {
		ds.warnf("globalRateLimitPerMin", "0 turns rate limiting off; one key can call tools as fast as the backend answers")
	}
	checkNonNegative(ds, "globalQuota.dailyCallLimit", c.GlobalQuota.DailyCalls, "calls; 0 means no cap")
	checkNonNegative(ds, "globalQuota.monthlyCallLimit", c.GlobalQuota.MonthlyCalls, "calls; 0 means no cap")
	checkCredits(ds, "globalQuota.dailyCreditLimit", c.GlobalQuota.DailyCredits)
	checkCredits(ds, "globalQuota.monthlyCreditLimit", c.GlobalQuota.MonthlyCredits)
	q := c.GlobalQuota
	if q.DailyCalls > 0 && q.MonthlyCalls > 0 && q.DailyCalls > q.MonthlyCalls {
		ds.warnf("globalQuota.dailyCallLimit", "%d is above monthlyCallLimit %d; the daily cap can never be reached", q.DailyCalls, q.MonthlyCalls)
	}
	if q.DailyCredits > 0 && q.MonthlyCredits > 0 && q.DailyCredits > q.MonthlyCredits {
		ds.warnf("globalQuota.dailyCreditLimit", "%d is above monthlyCreditLimit %d; the daily cap can never be reached", q.DailyCredits, q.MonthlyCredits)
	}
	for i, m := range c.FreeMethods {
		p := fmt.Sprintf("freeMethods[%d]", i)
		switch m {
		case "tools/call", "tools/call_batch":
			ds.errorf(p, "%s is what paygate charges for; it cannot be free (use shadowMode to stop charging)", m)
		case "":
			ds.errorf(p, "method name is empty")
		}
	}
	if c.ShadowMode {
		ds.warnf("shadowMode", "shadow mode is on: calls are logged but never denied or charged")
	}
	for _, k := range sortedKeys(c.ImportKeys) {
		p := joinPath("importKeys", MaskSecret(k))
		if !strings.HasPrefix(k, "pg_") {
			ds.errorf(p, "API keys must start with \"pg_\"")
		} else if len(k) < 16 {
			ds.warnf(p, "a %d-character key is easy to guess; use at least 16 characters", len(k))
		}
		checkCredits(ds, p, c.ImportKeys[k])
	}
}

func (c *Config) validateStorage(ds *diags) {
	checkEnum(ds, "sync", c.Sync, SyncModes)
	if c.RedisURL != "" {
		checkURL(ds, "redisUrl", c.RedisURL, "redis", "rediss")
	}
	if strings.ContainsAny(c.RedisPrefix, "{} ") {
		ds.errorf("redisPrefix", "must not contain braces or spaces")
	}
	if c.RedisURL == "" && (c.RedisPrefix != "" || c.RedisFailOpen != nil) {
		ds.warnf("redisUrl", "redisPrefix and redisFailOpen are ignored without redisUrl")
	}
	switch {
	case c.InMemory && c.RedisURL != "":
		ds.errorf("inMemory", "inMemory and redisUrl are both set; choose one store")
	case c.InMemory && c.StateFile != "":
		ds.warnf("stateFile", "is ignored because inMemory is set")
	case c.RedisURL != "" && c.StateFile != "":
		ds.warnf("stateFile", "is ignored because redisUrl is set; Redis holds the state")
	case !c.InMemory && c.RedisURL == "" && c.StateFile == "":
		ds.errorf("stateFile", "no default location (neither XDG_DATA_HOME nor HOME is set); set stateFile, or inMemory for a throwaway gateway")
	}
	if strings.HasSuffix(strings.ToLower(c.StateFile), ".json") && !c.InMemory && c.RedisURL == "" {
		ds.warnf("stateFile", "%q looks like a paygate-mcp JSON state file; paygate stores state in SQLite. Point stateFile at a .db file and import the old one with \"paygate import-state\"", c.StateFile)
	}
	if c.InMemory {
		ds.warnf("inMemory", "state is kept in memory only; keys and balances are lost when paygate stops")
	}
}

func (c *Config) validateHTTP(ds *diags) {
	if c.Port < 0 || c.Port > 65535 {
		ds.errorf("port", "must be between 0 and 65535 (0 picks a free port), got %d", c.Port)
	}
	host := strings.Trim(c.Host, "[]")
	switch {
	case c.Host == "":
		ds.errorf("host", "must not be empty; use %s for this machine only or 0.0.0.0 for every interface", DefaultHost)
	case strings.Contains(c.Host, "://") || strings.ContainsAny(host, "/ :") && !isIP(host):
		ds.errorf("host", "%q is not a host name or IP address; give the port separately", c.Host)
	case !isLoopback(host) && len(c.AllowedOrigins) == 0:
		ds.warnf("host", "listening on %s with no allowedOrigins: any web page a user opens can send requests to /mcp; set allowedOrigins", c.Host)
	}
	if c.MaxBodyBytes <= 0 {
		ds.errorf("maxBodyBytes", "must be positive, got %d; the default is %s", c.MaxBodyBytes, ByteSize(DefaultMaxBodyBytes))
	} else if c.MaxBodyBytes < 4096 {
		ds.warnf("maxBodyBytes", "%d bytes is small; initialize requests may not fit", c.MaxBodyBytes)
	}
	for i, o := range c.AllowedOrigins {
		checkOrigin(ds, fmt.Sprintf("allowedOrigins[%d]", i), o, false)
	}
	for i, h := range c.AllowedHosts {
		if h == "" || strings.Contains(h, "/") || strings.IndexFunc(h, unicode.IsSpace) >= 0 {
			ds.errorf(fmt.Sprintf("allowedHosts[%d]", i), "%q is not a host (like example.com or example.com:8080)", h)
		}
	}
	if c.SessionTimeout <= 0 {
		ds.errorf("sessionTimeout", "must be positive, like \"30m\"; got %s", c.SessionTimeout)
	}
	if c.MaxSessions <= 0 {
		ds.errorf("maxSessions", "must be at least 1, got %d", c.MaxSessions)
	}
	if c.DrainTimeout < 0 {
		ds.errorf("drainTimeout", "must not be negative, got %s", c.DrainTimeout)
	}
	if c.RequestTimeout < 0 {
		ds.errorf("requestTimeout", "must not be negative (0 means no limit), got %s", c.RequestTimeout)
	}
	checkNonNegative(ds, "publicRateLimitPerMin", c.PublicRateLimitPerMin, "requests per minute per IP; 0 means unlimited")
	if cors := c.CORS; cors != nil {
		for i, o := range cors.Origin {
			checkOrigin(ds, fmt.Sprintf("cors.origin[%d]", i), o, true)
		}
		if cors.Credentials && slices.Contains(cors.Origin, "*") {
			ds.errorf("cors.credentials", "cannot be true with origin \"*\"; list the origins allowed to send credentials")
		}
		checkNonNegative(ds, "cors.maxAge", cors.MaxAge, "seconds")
	}
	checkHeaders(ds, "customHeaders", c.CustomHeaders)
	for i, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			ds.errorf(fmt.Sprintf("trustedProxies[%d]", i), "%q is not an IP address or CIDR (like 10.0.0.0/8)", p)
		}
	}
}

func (c *Config) validateSecurity(ds *diags) {
	if k := c.AdminKey; k != "" {
		if strings.IndexFunc(k, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			ds.errorf("adminKey", "must not contain spaces or control characters")
		} else if len(k) < 16 {
			ds.warnf("adminKey", "a %d-character admin key is easy to guess; use at least 16 random characters, or leave it empty to have one generated", len(k))
		}
	}
	if o := c.OAuth; o != nil {
		if o.Issuer != "" {
			checkURL(ds, "oauth.issuer", o.Issuer, "http", "https")
		}
		if o.AccessTokenTTL < 0 {
			ds.errorf("oauth.accessTokenTtl", "must be positive seconds (0 means the default, 3600), got %d", o.AccessTokenTTL)
		}
		if o.RefreshTokenTTL < 0 {
			ds.errorf("oauth.refreshTokenTtl", "must be positive seconds (0 means the default, 2592000), got %d", o.RefreshTokenTTL)
		}
	}
}

func (c *Config) validateWebhooks(ds *diags) {
	if c.WebhookURL != "" {
		checkURL(ds, "webhookUrl", c.WebhookURL, "http", "https")
		if c.WebhookSecret == "" {
			ds.warnf("webhookSecret", "webhookUrl is set without a webhookSecret; receivers cannot verify that events come from paygate")
		}
	} else if c.WebhookSecret != "" && len(c.WebhookFilters) == 0 {
		ds.warnf("webhookSecret", "is set but webhookUrl is not; the secret is unused")
	}
	checkNonNegative(ds, "webhookMaxRetries", int64(c.WebhookMaxRetries), "retries")
	for i, f := range c.WebhookFilters {
		p := fmt.Sprintf("webhookFilters[%d]", i)
		if f.URL == "" {
			ds.errorf(p+".url", "missing; each filter needs a destination url")
		} else {
			checkURL(ds, p+".url", f.URL, "http", "https")
		}
		if len(f.Events) == 0 {
			ds.errorf(p+".events", "missing; list event types like \"key.created\", or \"*\" for all")
		}
	}
	for i, r := range c.AlertRules {
		p := fmt.Sprintf("alertRules[%d]", i)
		if !checkEnum(ds, p+".type", r.Type, AlertTypes) {
			continue
		}
		checkNonNegative(ds, p+".threshold", r.Threshold, "")
		if (r.Type == "spending_threshold" || r.Type == "quota_warning") && r.Threshold > 100 {
			ds.errorf(p+".threshold", "is a percentage for %s; use 0 to 100, got %d", r.Type, r.Threshold)
		}
		checkNonNegative(ds, p+".cooldownSeconds", r.CooldownSeconds, "seconds; 0 means the default, 300")
	}
}

func (c *Config) validateLogging(ds *diags) {
	checkEnum(ds, "logFormat", c.LogFormat, LogFormats)
	checkEnum(ds, "logLevel", c.LogLevel, LogLevels)
}

// ── checks ───────────────────────────────────────────────────────────────

func checkEnum(ds *diags, path, v string, allowed []string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	msg := fmt.Sprintf("%q is not one of %s", v, strings.Join(quoteAll(allowed), ", "))
	if s := suggest(v, allowed); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	ds.errorf(path, "%s", msg)
	return false
}

func checkCredits(ds *diags, path string, a credits.Amount) {
	if err := credits.Validate(credits.Credits(a)); err != nil {
		ds.errorf(path, "credits %v, got %d; use a whole number from 0 to %d", err, a, credits.Max)
	}
}

func checkNonNegative(ds *diags, path string, n int64, unit string) {
	if n < 0 {
		if unit != "" {
			unit = " (" + unit + ")"
		}
		ds.errorf(path, "must not be negative%s, got %d", unit, n)
	}
}

// checkURL requires an absolute URL with one of the schemes and a host.
func checkURL(ds *diags, path, raw string, schemes ...string) {
	u, err := url.Parse(raw)
	if err != nil {
		ds.errorf(path, "is not a valid URL: %v", trimURLError(err))
		return
	}
	if !slices.Contains(schemes, strings.ToLower(u.Scheme)) {
		want := strings.Join(schemes, ":// or ") + "://"
		if u.Scheme == "" {
			ds.errorf(path, "is not a URL; it must start with %s", want)
		} else {
			ds.errorf(path, "scheme %q is not allowed; use %s", u.Scheme+"://", want)
		}
		return
	}
	if u.Host == "" {
		ds.errorf(path, "has no host; write it like %s://host[:port]/path", schemes[0])
	}
}

func trimURLError(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// checkOrigin requires "scheme://host[:port]" with nothing after it, or "*"
// when star is allowed.
func checkOrigin(ds *diags, path, o string, star bool) {
	if star && o == "*" {
		return
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		ds.errorf(path, "%q is not an origin; write it as scheme://host[:port], like https://app.example.com", o)
	}
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func checkHeaders(ds *diags, path string, h map[string]string) {
	for _, k := range sortedKeys(h) {
		p := joinPath(path, k)
		if !headerName.MatchString(k) {
			ds.errorf(p, "%q is not a valid header name", k)
		}
		if strings.ContainsAny(h[k], "\r\n\x00") {
			ds.errorf(p, "header values must not contain line breaks")
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func isIP(s string) bool { _, err := netip.ParseAddr(s); return err == nil }

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
