package backend

import "time"

// Backoff computes reconnect delays: exponential from Min to Max, back to
// Min once a connection has stayed up for Stable.
type Backoff struct {
	Min    time.Duration // 100 ms by default
	Max    time.Duration // 30 s by default
	Stable time.Duration // 60 s by default

	cur time.Duration
}

// Next returns the delay before the next attempt, given how long the
// previous connection lived (0 for a failed attempt).
func (b *Backoff) Next(uptime time.Duration) time.Duration {
	lo, hi, stable := b.Min, b.Max, b.Stable
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi < lo {
		hi = max(lo, 30*time.Second)
	}
	if stable <= 0 {
		stable = time.Minute
	}
	switch {
	case uptime >= stable || b.cur == 0:
		b.cur = lo
	default:
		b.cur = min(b.cur*2, hi)
	}
	return b.cur
}

// Reset makes the next delay Min.
func (b *Backoff) Reset() { b.cur = 0 }
