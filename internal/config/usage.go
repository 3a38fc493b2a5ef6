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
	validateRetention(ds, retention{
		daysKey: "usageRetentionDays", days: c.UsageRetentionDays,
		countKey: "usageMaxRecords", count: c.UsageMaxRecords, maxCount: 10_000_000_000, unit: "records",
		small: "/usage and /keys/usage will only see the last few minutes of traffic",
		what:  "the usage log (about 300 bytes per call)",
	})
}
