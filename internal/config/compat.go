package config

import "time"

// This file is the paygate-mcp compatibility table: config keys paygate
// accepts under another name, keys it accepts but does not implement yet,
// and common misspellings worth a suggestion. Keys are patterns: "*" stands
// for any map key and "[]" for any list index, as in "toolPricing.*.timeoutMs".

// notSupported are paygate-mcp config keys paygate does not implement yet.
// They are accepted and reported as warnings, never dropped silently.
var notSupported = map[string]string{
	"stripeWebhookSecret":              "Stripe payments",
	"webhookSsrfAtDelivery":            "webhook SSRF re-checks",
	"expiryScanner":                    "the key expiry scanner",
	"headersTimeoutMs":                 "the headers timeout",
	"keepAliveTimeoutMs":               "the keep-alive timeout",
	"maxRequestsPerSocket":             "the per-socket request limit",
	"maxConnections":                   "the connection limit",
	"adminRateLimit":                   "the admin rate limit",
	"sessionRateLimit":                 "the session creation rate limit",
	"billTaskCreation":                 "billing of tasks/send",
	"guardrails":                       "content guardrails",
	"geoCountryHeader":                 "country restrictions",
	"toolPricing.*.creditsPerKbOutput": "output-size pricing",
}

// renamed are paygate-mcp keys that paygate reads into a differently named
// setting. unit, when set, is the unit of a bare number feeding a Duration.
var renamed = map[string]struct {
	to   string
	unit time.Duration
}{
	"requestTimeoutMs": {to: "requestTimeout", unit: time.Millisecond},
	"publicRateLimit":  {to: "publicRateLimitPerMin"},
}

// hints map likely mistakes (often a CLI flag's name used as a key) to the
// key that was meant, for "did you mean" suggestions.
var hints = map[string]string{
	"price":          "defaultCreditsPerCall",
	"credits":        "defaultCreditsPerCall",
	"rateLimit":      "globalRateLimitPerMin",
	"server":         "serverCommand",
	"command":        "serverCommand",
	"args":           "serverArgs",
	"remote":         "remoteUrl",
	"url":            "remoteUrl",
	"shadow":         "shadowMode",
	"header":         "customHeaders",
	"headers":        "customHeaders",
	"toolPrice":      "toolPricing",
	"toolPrices":     "toolPricing",
	"importKey":      "importKeys",
	"quota":          "globalQuota",
	"webhookRetries": "webhookMaxRetries",
	"maxBody":        "maxBodyBytes",
	"corsOrigin":     "cors",
	"stripeSecret":   "stripeWebhookSecret",
	"state":          "stateFile",
	"redis":          "redisUrl",
}
