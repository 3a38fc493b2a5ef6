package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// Stable error codes, rendered in the "code" member of every error body.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodePayloadTooLarge  = "payload_too_large"
	CodeRateLimited      = "rate_limited"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// codeStatus is the one table mapping each code to its HTTP status.
var codeStatus = map[string]int{
	CodeBadRequest:       http.StatusBadRequest,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeForbidden:        http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeConflict:         http.StatusConflict,
	CodePayloadTooLarge:  http.StatusRequestEntityTooLarge,
	CodeRateLimited:      http.StatusTooManyRequests,
	CodeUnavailable:      http.StatusServiceUnavailable,
	CodeInternal:         http.StatusInternalServerError,
}

// Error is an admin API error: what the client is told. Err, the cause, is
// only logged.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string // the request field at fault, if any
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func newError(code, field, format string, args ...any) *Error {
	return &Error{Status: codeStatus[code], Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// badField reports a problem with one request field: "<field>: <problem>".
func badField(field, format string, args ...any) *Error {
	e := newError(CodeBadRequest, field, format, args...)
	if field != "" {
		e.Message = field + ": " + e.Message
	}
	return e
}

func badRequest(format string, args ...any) *Error {
	return newError(CodeBadRequest, "", format, args...)
}

func notFound(field, what string) *Error { return newError(CodeNotFound, field, "%s not found", what) }

func conflict(field, format string, args ...any) *Error {
	return newError(CodeConflict, field, format, args...)
}

// errorBody is the JSON form of an Error.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	Field string `json:"field,omitempty"`
}

// classify turns any handler error into an *Error. Errors that are not
// already *Error map from store sentinels; anything else is internal.
func classify(err error, field string) *Error {
	var e *Error
	var mb *http.MaxBytesError
	var le *store.LimitError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &mb):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
			Message: fmt.Sprintf("request body exceeds %d bytes", mb.Limit)}
	case errors.As(err, &le):
		if field == "" {
			field = "credits"
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: field, Err: err,
			Message: field + ": " + le.Error()}
	case errors.Is(err, credits.ErrTooLarge):
		if field == "" {
			field = "credits"
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: field, Err: err,
			Message: field + ": the resulting balance would exceed " + fmt.Sprint(credits.Max)}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Field: field, Err: err, Message: "not found"}
	case errors.Is(err, store.ErrKeyInactive):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Field: field, Err: err, Message: "key is revoked"}
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrAlreadyExists):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Field: field, Err: err, Message: "conflicts with the current state"}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed),
		errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Err: err, Message: "store unavailable, try again"}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Err: err, Message: "internal error"}
}

// writeError renders err. Internal errors are logged with their cause; the
// client sees only the generic message and the request id header.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, rc *reqCtx, err error) {
	e := classify(err, "")
	if e.Status >= 500 {
		a.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", rc.requestID, "status", e.Status, "err", err)
	}
	if e.Status == 0 {
		e.Status = http.StatusInternalServerError
	}
	if e.Code == "" {
		e.Code = CodeInternal
	}
	writeJSON(w, e.Status, errorBody{Error: e.Message, Code: e.Code, Field: e.Field})
}

// jsonMarshal is json.Marshal without HTML escaping.
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := jsonMarshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error","code":"internal"}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)+1)) // HEAD answers carry it too
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
