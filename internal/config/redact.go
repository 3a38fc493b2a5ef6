package config

import (
	"net/url"

	"github.com/paygate/paygate/internal/credits"
)

// Redacted returns a copy of c that is safe to show (GET /config) or log:
// secrets become "***" (adminKey, webhook secrets, Redis passwords, header
// and env values sent to backends), server commands become "***", the keys
// of importKeys are masked, and URLs keep only their scheme and host.
func (c *Config) Redacted() *Config {
	r := c.Clone()
	r.AdminKey = redactString(r.AdminKey)
	r.WebhookSecret = redactString(r.WebhookSecret)
	r.WebhookURL = redactURL(r.WebhookURL)
	r.RemoteURL = redactURL(r.RemoteURL)
	r.RedisURL = redactURL(r.RedisURL)
	r.ServerCommand = redactString(r.ServerCommand)
	r.ServerArgs = redactList(r.ServerArgs)
	r.ServerArgv = redactList(r.ServerArgv)
	redactValues(r.RemoteHeaders)
	for i := range r.Servers {
		s := &r.Servers[i]
		s.ServerCommand = redactString(s.ServerCommand)
		s.ServerArgs = redactList(s.ServerArgs)
		s.RemoteURL = redactURL(s.RemoteURL)
		redactValues(s.Headers)
		redactValues(s.Env)
	}
	for i := range r.WebhookFilters {
		f := &r.WebhookFilters[i]
		f.Secret = redactString(f.Secret)
		f.URL = redactURL(f.URL)
	}
	if len(c.ImportKeys) > 0 {
		r.ImportKeys = make(map[string]credits.Amount, len(c.ImportKeys))
		for k, v := range c.ImportKeys {
			r.ImportKeys[MaskSecret(k)] = v
		}
	}
	return r
}

const redactedValue = "***"

func redactString(s string) string {
	if s == "" {
		return ""
	}
	return redactedValue
}

func redactList(ss []string) []string {
	if len(ss) == 0 {
		return ss
	}
	return []string{redactedValue}
}

func redactValues(m map[string]string) {
	for k := range m {
		m[k] = redactedValue
	}
}

// redactURL keeps a URL's scheme and host: credentials, path and query can
// all carry secrets. Text that does not parse as a URL is hidden entirely.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return redactedValue
	}
	return u.Scheme + "://" + u.Host
}
