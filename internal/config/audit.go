package config

import "time"

// Audit trail settings: defaults, allowed values, accessors and checks.
// The keys are paygate's own (paygate-mcp kept its audit log in memory
// with fixed limits).

// Audit defaults.
const (
	DefaultAuditRetentionDays   = 30
	DefaultAuditMaxEvents       = 100_000
	DefaultAuditSummaryInterval = time.Minute
)

// AuditGateAllowModes are the values of auditGateAllows.
var AuditGateAllowModes = []string{"summary", "all", "none"}

// AuditMaxAge is the effective age limit of audit events; 0 means none.
func (c *Config) AuditMaxAge() time.Duration {
	days := int64(DefaultAuditRetentionDays)
	if c.AuditRetentionDays != nil {
		days = *c.AuditRetentionDays
	}
	return time.Duration(days) * 24 * time.Hour
}

// AuditMaxEventCount is the effective count limit of audit events; 0
// means none.
func (c *Config) AuditMaxEventCount() int {
	if c.AuditMaxEvents != nil {
		return int(*c.AuditMaxEvents)
	}
	return DefaultAuditMaxEvents
}

// AuditAllowMode is the effective auditGateAllows.
func (c *Config) AuditAllowMode() string {
	if c.AuditGateAllows == "" {
		return "summary"
	}
	return c.AuditGateAllows
}

// AuditInterval is the effective auditSummaryInterval.
func (c *Config) AuditInterval() time.Duration {
	if c.AuditSummaryInterval > 0 {
		return time.Duration(c.AuditSummaryInterval)
	}
	return DefaultAuditSummaryInterval
}

func (c *Config) validateAudit(ds *diags) {
	if d := c.AuditRetentionDays; d != nil {
		switch {
		case *d < 0:
			ds.errorf("auditRetentionDays", "must not be negative (0 keeps events regardless of age), got %d", *d)
		case *d > 36500:
			ds.errorf("auditRetentionDays", "must be at most 36500 days, got %d", *d)
		}
	}
	if n := c.AuditMaxEvents; n != nil {
		switch {
		case *n < 0:
			ds.errorf("auditMaxEvents", "must not be negative (0 means no count limit), got %d", *n)
		case *n > 0 && *n < 1000:
			ds.warnf("auditMaxEvents", "%d events is small; summaries and denials may push admin actions out of the trail within minutes", *n)
		case *n > 1_000_000_000:
			ds.errorf("auditMaxEvents", "must be at most 1000000000, got %d", *n)
		}
	}
	if c.AuditRetentionDays != nil && *c.AuditRetentionDays == 0 && c.AuditMaxEvents != nil && *c.AuditMaxEvents == 0 {
		ds.warnf("auditRetentionDays", "with auditMaxEvents 0 too, the audit trail grows without bound")
	}
	if c.AuditGateAllows != "" {
		checkEnum(ds, "auditGateAllows", c.AuditGateAllows, AuditGateAllowModes)
	}
	switch s := time.Duration(c.AuditSummaryInterval); {
	case s < 0:
		ds.errorf("auditSummaryInterval", "must not be negative, got %s", c.AuditSummaryInterval)
	case s > 0 && s < time.Second:
		ds.errorf("auditSummaryInterval", "must be at least 1s, got %s", c.AuditSummaryInterval)
	case s > 24*time.Hour:
		ds.errorf("auditSummaryInterval", "must be at most 24h, got %s", c.AuditSummaryInterval)
	}
}
