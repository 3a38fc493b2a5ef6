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
	validateRetention(ds, retention{
		daysKey: "auditRetentionDays", days: c.AuditRetentionDays,
		countKey: "auditMaxEvents", count: c.AuditMaxEvents, maxCount: 1_000_000_000, unit: "events",
		small: "summaries and denials may push admin actions out of the trail within minutes",
		what:  "the audit trail",
	})
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

// retention is a pair of record-retention settings: an age in days and a
// count (nil: the default; 0: no limit).
type retention struct {
	daysKey, countKey string
	days, count       *int64
	maxCount          int64
	unit, small, what string
}

func validateRetention(ds *diags, r retention) {
	if d := r.days; d != nil {
		switch {
		case *d < 0:
			ds.errorf(r.daysKey, "must not be negative (0 keeps %s regardless of age), got %d", r.unit, *d)
		case *d > 36500:
			ds.errorf(r.daysKey, "must be at most 36500 days, got %d", *d)
		}
	}
	if n := r.count; n != nil {
		switch {
		case *n < 0:
			ds.errorf(r.countKey, "must not be negative (0 means no count limit), got %d", *n)
		case *n > 0 && *n < 1000:
			ds.warnf(r.countKey, "%d %s is small; %s", *n, r.unit, r.small)
		case *n > r.maxCount:
			ds.errorf(r.countKey, "must be at most %d, got %d", r.maxCount, *n)
		}
	}
	if r.days != nil && *r.days == 0 && r.count != nil && *r.count == 0 {
		ds.warnf(r.daysKey, "with %s 0 too, %s grows without bound", r.countKey, r.what)
	}
}
