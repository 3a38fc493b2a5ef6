package httpmcp

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/backend/httpmcp/h1"
)

// undelivered marks err with backend.ErrNotDelivered when it proves the
// request never reached the server: the connection could not be opened
// (refused, unreachable, DNS), or the lean client could not write the
// request in full (h1.ErrNotSent). Every other transport error may have
// come after the server read the request, so it is left alone and the call
// is never sent again.
func undelivered(err error) error {
	var op *net.OpError
	if errors.Is(err, h1.ErrNotSent) || errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: %w", backend.ErrNotDelivered, err)
	}
	return err
}

// unprocessed reports whether an HTTP status says the server refused the
// request without processing it: 503 (not ready, overloaded, a proxy with
// no upstream) and 429 (rate limited). 502 and 504 are not among them: a
// proxy answers them when its upstream died or stalled, possibly after
// running the request.
func unprocessed(code int) bool {
	return code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests
}

// statusFailure is the error of a request answered with an HTTP error
// status instead of MCP.
func statusFailure(se *StatusError) error {
	if unprocessed(se.Code) {
		return fmt.Errorf("%w: %w", backend.ErrNotDelivered, se)
	}
	return se
}
