// Package mcp holds the JSON-RPC 2.0 wire format and the few MCP method
// shapes paygate routes on. It decodes only what routing needs (id, method,
// tool name, raw params) and keeps everything else as raw bytes so bodies can
// be forwarded without re-encoding.
package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Standard JSON-RPC 2.0 error codes, and the ones MCP and paygate add.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603

	// CodePaymentRequired is what paygate-mcp answers for every gate denial;
	// its clients match on it, so paygate keeps it.
	CodePaymentRequired = -32402
	// CodeBackendUnavailable: the backend is down, restarting or its breaker is open.
	CodeBackendUnavailable = -32003
	// CodeToolTimeout: the tool call exceeded its timeout.
	CodeToolTimeout = -32004
	// CodeConcurrencyLimited: too many calls in flight for this key or tool.
	CodeConcurrencyLimited = -32005
	// CodeServiceUnavailable is used while draining or in maintenance.
	CodeServiceUnavailable = -32000
)

// ErrParse reports bytes that are not JSON at all (JSON-RPC -32700).
var ErrParse = errors.New("parse error")

// ErrInvalidRequest reports JSON that is not a valid JSON-RPC 2.0 message (-32600).
var ErrInvalidRequest = errors.New("invalid request")

// ID is a JSON-RPC id as it appeared on the wire: a JSON string or number,
// kept as raw bytes so it can be echoed back byte for byte. A nil ID marks a
// notification.
type ID []byte

// String returns the raw JSON text of the id.
func (id ID) String() string { return string(id) }

// IsValid reports whether the id is present.
func (id ID) IsValid() bool { return len(id) > 0 }

// Int64ID returns the id for an integer.
func Int64ID(n int64) ID { return ID(strconv.AppendInt(nil, n, 10)) }

// StringID returns the id for a string.
func StringID(s string) ID {
	b, _ := json.Marshal(s)
	return ID(b)
}

// Message is one decoded JSON-RPC message: a request (Method and ID), a
// notification (Method, no ID) or a response (ID and Result or Error).
type Message struct {
	ID     ID
	Method string
	Params json.RawMessage
	Result json.RawMessage
	Error  *WireError
}

// IsRequest reports whether m is a request that expects a response.
func (m *Message) IsRequest() bool { return m.Method != "" && m.ID.IsValid() }

// IsNotification reports whether m is a notification.
func (m *Message) IsNotification() bool { return m.Method != "" && !m.ID.IsValid() }

// IsResponse reports whether m is a response (result or error).
func (m *Message) IsResponse() bool { return m.Method == "" }

// WireError is the error member of a JSON-RPC response.
type WireError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *WireError) Error() string { return fmt.Sprintf("jsonrpc error %d: %s", e.Code, e.Message) }

// wire holds the raw top-level members of a message.
type wire struct {
	JSONRPC []byte
	ID      []byte
	Method  []byte
	Params  []byte
	Result  []byte
	Error   []byte
}

// Decode parses one JSON-RPC message. It returns an error wrapping ErrParse
// for bytes that are not JSON and ErrInvalidRequest for JSON that is not a
// JSON-RPC 2.0 message. Member names are case-sensitive, as JSON-RPC says.
// The returned message aliases b.
func Decode(b []byte) (*Message, error) {
	var w wire
	err := members(b, func(key, val []byte) error {
		switch string(key) {
		case "jsonrpc":
			w.JSONRPC = val
		case "id":
			w.ID = val
		case "method":
			w.Method = val
		case "params":
			w.Params = val
		case "result":
			w.Result = val
		case "error":
			w.Error = val
		}
		return nil
	})
	if err != nil {
		if valid(b) {
			return nil, fmt.Errorf("%w: a message must be a JSON object", ErrInvalidRequest)
		}
		return nil, fmt.Errorf("%w: malformed JSON", ErrParse)
	}
	return fromWire(&w)
}

func fromWire(w *wire) (*Message, error) {
	if v, ok := unquote(w.JSONRPC); !ok || v != "2.0" {
		return nil, fmt.Errorf("%w: jsonrpc must be \"2.0\"", ErrInvalidRequest)
	}
	m := &Message{Params: nullToNil(w.Params)}
	if len(w.ID) > 0 && !isNull(w.ID) {
		if !validID(w.ID) {
			return nil, fmt.Errorf("%w: id must be a string or a number", ErrInvalidRequest)
		}
		m.ID = ID(w.ID)
	}
	if w.Method != nil && !isNull(w.Method) {
		method, ok := unquote(w.Method)
		if !ok {
			return nil, fmt.Errorf("%w: member \"method\" has the wrong type", ErrInvalidRequest)
		}
		if method == "" {
			return nil, fmt.Errorf("%w: method must not be empty", ErrInvalidRequest)
		}
		if w.Result != nil || (w.Error != nil && !isNull(w.Error)) {
			return nil, fmt.Errorf("%w: a request cannot carry result or error", ErrInvalidRequest)
		}
		if m.Params != nil && m.Params[0] != '{' && m.Params[0] != '[' {
			return nil, fmt.Errorf("%w: params must be an object or an array", ErrInvalidRequest)
		}
		m.Method = method
		return m, nil
	}
	if isNull(w.Error) {
		w.Error = nil
	}
	// A response: exactly one of result and error. A response to a request
	// whose id could not be read carries a null id, which is allowed.
	switch {
	case w.Result != nil && w.Error != nil:
		return nil, fmt.Errorf("%w: a response cannot carry both result and error", ErrInvalidRequest)
	case w.Error != nil:
		we, err := decodeWireError(w.Error)
		if err != nil {
			return nil, err
		}
		m.Error = we
	case w.Result != nil:
		m.Result = w.Result
	default:
		return nil, fmt.Errorf("%w: a message needs a method, a result or an error", ErrInvalidRequest)
	}
	return m, nil
}

// decodeWireError reads an error member: code (integer), message (string),
// data (any JSON, kept raw).
func decodeWireError(raw []byte) (*WireError, error) {
	we := &WireError{}
	bad := fmt.Errorf("%w: malformed error member", ErrInvalidRequest)
	err := members(raw, func(key, val []byte) error {
		switch string(key) {
		case "code":
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil {
				// JSON allows 1e3 or 32000.0 for an integer; accept whole numbers.
				f, ferr := strconv.ParseFloat(string(val), 64)
				if ferr != nil || f != float64(int64(f)) {
					return bad
				}
				n = int64(f)
			}
			we.Code = n
		case "message":
			s, ok := unquote(val)
			if !ok {
				return bad
			}
			we.Message = s
		case "data":
			if !isNull(val) {
				we.Data = val
			}
		}
		return nil
	})
	if err != nil {
		return nil, bad
	}
	return we, nil
}

// DecodeBatch parses a body that holds one message or a JSON array of
// messages. isBatch reports whether the body was an array. An empty array is
// an invalid request. Each element that is not a valid message is reported
// in errs at its index (nil where the element decoded); msgs[i] is nil there.
func DecodeBatch(b []byte) (msgs []*Message, errs []error, isBatch bool, err error) {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 {
		return nil, nil, false, fmt.Errorf("%w: empty body", ErrParse)
	}
	if t[0] != '[' {
		m, err := Decode(b)
		if err != nil {
			return nil, nil, false, err
		}
		return []*Message{m}, []error{nil}, false, nil
	}
	raws, err := splitArray(t)
	if err != nil {
		return nil, nil, true, err
	}
	if len(raws) == 0 {
		return nil, nil, true, fmt.Errorf("%w: empty batch", ErrInvalidRequest)
	}
	msgs = make([]*Message, len(raws))
	errs = make([]error, len(raws))
	for i, r := range raws {
		msgs[i], errs[i] = Decode(r)
	}
	return msgs, errs, true, nil
}

func isNull(b []byte) bool { return len(b) == 4 && string(b) == "null" }

func nullToNil(b json.RawMessage) json.RawMessage {
	if len(b) == 0 || isNull(b) {
		return nil
	}
	return b
}

// validID accepts a JSON string or a JSON number (integers or decimals; the
// spec discourages fractions but does not forbid them).
func validID(b []byte) bool {
	switch c := b[0]; {
	case c == '"':
		return true
	case c == '-' || (c >= '0' && c <= '9'):
		return true
	}
	return false
}

// AppendRequest appends the encoding of a request (or, with a nil id, a
// notification) to dst. params must be valid JSON or nil.
func AppendRequest(dst []byte, id ID, method string, params json.RawMessage) []byte {
	dst = append(dst, `{"jsonrpc":"2.0"`...)
	if id.IsValid() {
		dst = append(dst, `,"id":`...)
		dst = append(dst, id...)
	}
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, method)
	if params != nil {
		dst = append(dst, `,"params":`...)
		dst = append(dst, params...)
	}
	return append(dst, '}')
}

// AppendResult appends a success response.
func AppendResult(dst []byte, id ID, result json.RawMessage) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":`...)
	if result == nil {
		result = json.RawMessage(`{}`)
	}
	dst = append(dst, result...)
	return append(dst, '}')
}

// AppendError appends an error response. A nil id is written as null, as the
// spec requires when the request id could not be determined.
func AppendError(dst []byte, id ID, e *WireError) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"error":{"code":`...)
	dst = strconv.AppendInt(dst, e.Code, 10)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, e.Message)
	if len(e.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, e.Data...)
	}
	return append(dst, `}}`...)
}

// AppendMessage appends the encoding of m.
func AppendMessage(dst []byte, m *Message) []byte {
	switch {
	case m.Method != "":
		return AppendRequest(dst, m.ID, m.Method, m.Params)
	case m.Error != nil:
		return AppendError(dst, m.ID, m.Error)
	default:
		return AppendResult(dst, m.ID, m.Result)
	}
}

// Encode returns the encoding of m.
func Encode(m *Message) []byte {
	return AppendMessage(make([]byte, 0, 64+len(m.Params)+len(m.Result)), m)
}

func appendID(dst []byte, id ID) []byte {
	if !id.IsValid() {
		return append(dst, "null"...)
	}
	return append(dst, id...)
}

func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// NewError builds a WireError whose data is the JSON encoding of data (nil: no data).
func NewError(code int64, msg string, data any) *WireError {
	e := &WireError{Code: code, Message: msg}
	if data != nil {
		if b, err := json.Marshal(data); err == nil {
			e.Data = b
		}
	}
	return e
}
