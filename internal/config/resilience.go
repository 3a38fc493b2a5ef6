package config

// Defaults of the backend resilience keys: paygate-mcp's toolTimeoutMs,
// circuitBreakerThreshold and circuitBreakerCooldownSeconds, and paygate's
// retry policy.
const (
	DefaultToolTimeoutMs                 = 60_000
	DefaultCircuitBreakerThreshold       = 5
	DefaultCircuitBreakerCooldownSeconds = 30
	DefaultRetryMaxRetries               = 2
	DefaultRetryBaseDelayMs              = 100
	DefaultRetryMaxDelayMs               = 1000
	DefaultRetryBudgetPercent            = 10
)

// maxRetryMaxRetries bounds retryMaxRetries: retries are for a blip, not
// for waiting out an outage (the circuit breaker handles that).
const maxRetryMaxRetries = 10

// validateResilience checks the timeout, circuit breaker and retry keys.
func (c *Config) validateResilience(ds *diags) {
	checkNonNegative(ds, "toolTimeoutMs", c.ToolTimeoutMs, "milliseconds; 0 means no limit")
	if c.ToolTimeoutMs > 0 && c.ToolTimeoutMs < 100 {
		ds.warnf("toolTimeoutMs", "%d ms is very short; most tool calls will time out", c.ToolTimeoutMs)
	}
	checkNonNegative(ds, "circuitBreakerThreshold", int64(c.CircuitBreakerThreshold), "consecutive failures; 0 turns the circuit breaker off")
	if c.CircuitBreakerThreshold > 0 && c.CircuitBreakerCooldownSeconds <= 0 {
		ds.errorf("circuitBreakerCooldownSeconds", "must be at least 1 second while circuitBreakerThreshold is set, got %d; the default is %d",
			c.CircuitBreakerCooldownSeconds, DefaultCircuitBreakerCooldownSeconds)
	}
	switch {
	case c.RetryMaxRetries < 0:
		ds.errorf("retryMaxRetries", "must not be negative (0 turns retries off), got %d", c.RetryMaxRetries)
	case c.RetryMaxRetries > maxRetryMaxRetries:
		ds.errorf("retryMaxRetries", "must be at most %d, got %d; a backend that stays down is the circuit breaker's job", maxRetryMaxRetries, c.RetryMaxRetries)
	}
	if c.RetryMaxRetries > 0 {
		if c.RetryBaseDelayMs <= 0 {
			ds.errorf("retryBaseDelayMs", "must be positive, got %d; the default is %d", c.RetryBaseDelayMs, DefaultRetryBaseDelayMs)
		}
		if c.RetryMaxDelayMs < c.RetryBaseDelayMs {
			ds.errorf("retryMaxDelayMs", "%d is below retryBaseDelayMs %d", c.RetryMaxDelayMs, c.RetryBaseDelayMs)
		}
		if c.RetryBudgetPercent < 1 || c.RetryBudgetPercent > 100 {
			ds.errorf("retryBudgetPercent", "must be between 1 and 100, got %d", c.RetryBudgetPercent)
		}
	}
}
