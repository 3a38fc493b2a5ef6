package config

import "time"

// Usage log retention: defaults, accessors and checks. The usage log holds
// one record per gate decision (about 300 bytes each in SQLite); the
// ledger, which is the money, is never pruned.

// Usage retention defaults.
const (
	DefaultUsageRetentionDays = 90
	DefaultUsageMaxRecords    = 10_000_000
)

// UsageMaxAge is the effective age limit of usage records; 0 means none.
func (c *Config) UsageMaxAge() time.Duration {
	days := int64(DefaultUsageRetentionDays)
	if c.UsageRetentionDays != nil {
		days = *c.UsageRetentionDays
	}
	return time.Duration(days) * 24 * time.Hour
}

// UsageMaxRecordCount is the effective count limit of usage records; 0
// means none.
func (c *Config) UsageMaxRecordCount() int {
	if c.UsageMaxRecords != nil {
		return int(*c.UsageMaxRecords)
	}
	return DefaultUsageMaxRecords
}

func (c *Config) validateUsage(ds *diags) {
	if d := c.UsageRetentionDays; d != nil {
		switch {
		case *d < 0:
			ds.errorf("usageRetentionDays", "must not be negative (0 keeps records regardless of age), got %d", *d)
		case *d > 36500:
			ds.errorf("usageRetentionDays", "must be at most 36500 days, got %d", *d)
		}
	}
	if n := c.UsageMaxRecords; n != nil {
		switch {
		case *n < 0:
			ds.errorf("usageMaxRecords", "must not be negative (0 means no count limit), got %d", *n)
		case *n > 0 && *n < 1000:
			ds.warnf("usageMaxRecords", "%d records is small; /usage and /keys/usage will only see the last few minutes of traffic", *n)
		case *n > 10_000_000_000:
			ds.errorf("usageMaxRecords", "must be at most 10000000000, got %d", *n)
		}
	}
	if c.UsageRetentionDays != nil && *c.UsageRetentionDays == 0 && c.UsageMaxRecords != nil && *c.UsageMaxRecords == 0 {
		ds.warnf("usageRetentionDays", "with usageMaxRecords 0 too, the usage log grows without bound (about 300 bytes per call)")
	}
}
