// Package ratelimit counts calls per key in a sliding window. Limiter is the
// contract every implementation keeps (Local here; a Redis one shares limits
// across instances); callers pass the time, so tests use a fake clock.
package ratelimit

import (
	"context"
	"errors"
	"time"
)

// Errors for arguments no implementation can honour.
var (
	ErrInvalidWindow = errors.New("ratelimit: window must be positive")
	ErrInvalidCount  = errors.New("ratelimit: count must not be negative")
)

// Result is the state of one key's window after a call.
type Result struct {
	// Allowed reports whether the calls were admitted (and counted).
	Allowed bool
	// Limit is the limit the call was checked against.
	Limit int64
	// Remaining is how many more calls the window admits now: after this
	// call's own when it was allowed, unchanged when it was refused. It is
	// exact: the first call of an empty window with limit 60 leaves 59.
	Remaining int64
	// Reset is when the oldest counted call leaves the window and frees a
	// slot; now when the window is empty.
	Reset time.Time
	// RetryAfter is, for a refused call, how long until enough slots free
	// for it. For n > limit nothing will ever free enough, and it is the
	// window. Zero when allowed.
	RetryAfter time.Duration
}

// Limiter is a sliding-window rate limiter. A key's window holds the calls
// admitted in (now-window, now]; a call is admitted when they plus its own n
// fit in limit. A limit <= 0 means unlimited: every call is admitted and
// nothing is counted.
//
// Each method is one atomic step per key (one round trip, one script, for
// networked implementations), so concurrent callers never admit more than
// limit calls in any window. Refused calls are not counted. now should
// not go backwards for a key; implementations treat a now older than the
// key's newest call as that call's time.
type Limiter interface {
	// Allow admits and counts one call if it fits.
	Allow(ctx context.Context, key string, limit int64, window time.Duration, now time.Time) (Result, error)
	// AllowN admits and counts n calls (a batch) all together, or none.
	AllowN(ctx context.Context, key string, n, limit int64, window time.Duration, now time.Time) (Result, error)
	// Peek reports whether one call would be admitted, without counting it
	// (status endpoints). Remaining is the free slots now.
	Peek(ctx context.Context, key string, limit int64, window time.Duration, now time.Time) (Result, error)
}
