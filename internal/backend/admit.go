package backend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors of the resilience layer (circuit breaker, retries, multi-server
// routing). Like the errors of backend.go, each means the client got no
// result, so the gateway never bills it.
var (
	// ErrNotDelivered: the request certainly did not reach the server
	// (connection refused, the child already gone, an HTTP 502/503 answered
	// before the server processed it). Unlike ErrConnectionLost it is safe
	// to send the request again.
	ErrNotDelivered = errors.New("request not delivered to the backend")
	// ErrCircuitOpen: the backend's circuit breaker refused the request
	// without sending it. Calls fail with an *OpenError, which matches it.
	ErrCircuitOpen = errors.New("circuit breaker open")
	// ErrUnknownTool: no backend serves the tool (in multi-server mode, the
	// name carries no known prefix). The client learns it as -32602.
	ErrUnknownTool = errors.New("unknown tool")
)

// NotDelivered reports whether err says the request never reached the
// server, so that sending it again cannot run it twice: ErrUnavailable
// (nothing was sent) or ErrNotDelivered. A closed backend, a lost
// connection, a timeout and any response are not.
func NotDelivered(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrConnectionLost) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotDelivered)
}

// OpenError is the error of a call refused by an open circuit breaker.
type OpenError struct {
	Backend string
	// RetryAfter is how long until the breaker lets a trial call through
	// (0 when a trial is already in flight).
	RetryAfter time.Duration
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("backend %s: %v", e.Backend, ErrCircuitOpen)
}

// Is makes an OpenError match ErrCircuitOpen.
func (e *OpenError) Is(target error) bool { return target == ErrCircuitOpen }

// CallError names the backend a call failed on, when a Backend fronts
// several (multi-server mode), so the client's error message names the
// right one.
type CallError struct {
	Status Status // the failing backend's status when the call failed
	Err    error
}

func (e *CallError) Error() string { return fmt.Sprintf("backend %s: %v", e.Status.Name, e.Err) }

// Unwrap returns the cause.
func (e *CallError) Unwrap() error { return e.Err }

// Admitter is implemented by backends that can tell, before a call is
// charged, that they would refuse it at once (an open circuit breaker, a
// tool no backend serves). The gateway asks before it reserves credits, so
// such calls leave no ledger entries. Admit is advisory: Call still
// decides, and a call admitted here may yet be refused (it is then
// refunded like any undelivered call).
type Admitter interface {
	// Admit returns nil, or an error matching ErrCircuitOpen or
	// ErrUnknownTool. tool is "" for methods other than tools/call.
	Admit(method, tool string) error
}

// StatusLister is implemented by backends that front several backends: it
// reports each of them (for /health), in configuration order.
type StatusLister interface {
	Statuses() []Status
}

// Find returns b, or the first backend under it, that implements the
// optional interface T. Decorators that add nothing to the optional
// interfaces expose what they wrap with an Unwrap() Backend method.
func Find[T any](b Backend) (T, bool) {
	for b != nil {
		if t, ok := b.(T); ok {
			return t, true
		}
		u, ok := b.(interface{ Unwrap() Backend })
		if !ok {
			break
		}
		b = u.Unwrap()
	}
	var zero T
	return zero, false
}

// Statuses reports each backend b fronts (StatusLister), or b itself.
func Statuses(b Backend) []Status {
	if l, ok := Find[StatusLister](b); ok {
		return l.Statuses()
	}
	return []Status{b.Status()}
}
