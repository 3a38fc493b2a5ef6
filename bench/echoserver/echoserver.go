// Package echoserver is a minimal, fast MCP server with a single tool, echo,
// that answers every tools/call with its own arguments as text. The benchmark
// suite puts it behind paygate so that what it measures is the gateway, not
// the tool; because the reply carries the caller's arguments (and so their
// nonce), a load generator can prove each reply belongs to its request.
//
// It reads messages with a small scanner (scan.go) and builds replies by
// appending bytes, so a tools/call allocates nothing to decode; it does not
// use the MCP SDK, whose generality would make the baseline slower than
// what it is compared with.
package echoserver

import (
	"bytes"
	"encoding/json"
	"time"
)

// Protocol revisions the server negotiates, newest first.
var supportedVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

const latestVersion = "2025-11-25"

// JSON-RPC error codes the server answers with.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
)

// toolsListResult is the constant tools/list result: one tool, echo,
// taking any object.
const toolsListResult = `{"tools":[{"name":"echo","description":"Returns its arguments, as JSON text.",` +
	`"inputSchema":{"type":"object","additionalProperties":true}}]}`

// Server answers MCP messages. The zero value is ready to use.
type Server struct {
	// Delay is slept before answering each tools/call, to simulate a tool
	// that does work. Zero answers at once.
	Delay time.Duration
}

// kind says what a message was, so transports can react (an initialize
// reply gets a session id; a message with no reply gets HTTP 202).
type kind uint8

const (
	kindNoReply    kind = iota // notification, client response or batch of those
	kindReply                  // any request (or a malformed message) answered
	kindInitialize             // an initialize request answered
)

// AppendReply appends the reply to msg (one JSON-RPC message or a batch) to
// dst. It returns dst unchanged when msg needs no reply.
func (s *Server) AppendReply(dst, msg []byte) []byte {
	out, _ := s.appendReply(dst, msg)
	return out
}

func (s *Server) appendReply(dst, msg []byte) ([]byte, kind) {
	msg = bytes.TrimSpace(msg)
	if len(msg) > 0 && msg[0] == '[' {
		return s.appendBatch(dst, msg)
	}
	return s.appendOne(dst, msg)
}

// appendBatch answers a JSON array of messages (MCP 2025-03-26 batching)
// with an array holding the replies to its requests.
func (s *Server) appendBatch(dst, msg []byte) ([]byte, kind) {
	var items []json.RawMessage
	if err := json.Unmarshal(msg, &items); err != nil {
		return appendError(dst, nil, codeParseError, "parse error"), kindReply
	}
	if len(items) == 0 {
		return appendError(dst, nil, codeInvalidRequest, "empty batch"), kindReply
	}
	start := len(dst)
	dst = append(dst, '[')
	k := kindNoReply
	for _, item := range items {
		mark := len(dst)
		if k != kindNoReply {
			dst = append(dst, ',')
		}
		var ik kind
		dst, ik = s.appendOne(dst, item)
		if ik == kindNoReply {
			dst = dst[:mark]
			continue
		}
		if ik > k {
			k = ik
		}
	}
	if k == kindNoReply {
		return dst[:start], kindNoReply
	}
	return append(dst, ']'), k
}

func (s *Server) appendOne(dst, msg []byte) ([]byte, kind) {
	if !json.Valid(msg) {
		return appendError(dst, nil, codeParseError, "parse error"), kindReply
	}
	var version, id, method, params []byte
	err := eachMember(msg, func(key, val []byte) {
		switch string(key) {
		case "jsonrpc":
			version = val
		case "id":
			id = val
		case "method":
			method = val
		case "params":
			params = val
		}
	})
	if err != nil {
		return appendError(dst, nil, codeInvalidRequest, "invalid request"), kindReply
	}
	if string(id) == "null" {
		id = nil
	}
	name, isString := stringValue(method)
	if method != nil && (!isString || len(name) == 0) {
		return appendError(dst, nil, codeInvalidRequest, "invalid request"), kindReply
	}
	if method == nil {
		// A response to a server request (the echo server never sends
		// any) or something shaped like one: nothing to answer.
		if string(version) == `"2.0"` {
			return dst, kindNoReply
		}
		return appendError(dst, id, codeInvalidRequest, "invalid request"), kindReply
	}
	if string(version) != `"2.0"` {
		return appendError(dst, id, codeInvalidRequest, `jsonrpc must be "2.0"`), kindReply
	}
	if id == nil {
		return dst, kindNoReply // notification, notifications/initialized included
	}
	switch string(name) {
	case "tools/call":
		return s.appendCall(dst, id, params), kindReply
	case "ping":
		return appendResult(dst, id, "{}"), kindReply
	case "tools/list":
		return appendResult(dst, id, toolsListResult), kindReply
	case "initialize":
		var requested []byte
		_ = eachMember(params, func(key, val []byte) { // no params: the latest version
			if string(key) == "protocolVersion" {
				requested, _ = stringValue(val)
			}
		})
		dst = appendResultStart(dst, id)
		dst = append(dst, `{"protocolVersion":"`...)
		dst = append(dst, negotiate(string(requested))...)
		dst = append(dst, `","capabilities":{"tools":{}},"serverInfo":{"name":"paygate-bench-echo","version":"1.0.0"}}}`...)
		return dst, kindInitialize
	default:
		return appendError(dst, id, codeMethodNotFound, "method not found: "+string(name)), kindReply
	}
}

// appendCall answers tools/call: the arguments, as compact as they came,
// become the text of the single content item.
func (s *Server) appendCall(dst, id, params []byte) []byte {
	var tool, args []byte
	toolOK := false
	err := eachMember(params, func(key, val []byte) {
		switch string(key) {
		case "name":
			tool, toolOK = stringValue(val)
		case "arguments":
			args = val
		}
	})
	if err != nil || !toolOK {
		return appendError(dst, id, codeInvalidParams, "invalid tools/call params")
	}
	if string(tool) != "echo" {
		return appendError(dst, id, codeInvalidParams, "unknown tool: "+string(tool))
	}
	if len(args) == 0 || string(args) == "null" {
		args = []byte("{}")
	}
	if s.Delay > 0 {
		time.Sleep(s.Delay)
	}
	dst = appendResultStart(dst, id)
	dst = append(dst, `{"content":[{"type":"text","text":`...)
	dst = appendString(dst, args)
	return append(dst, `}]}}`...)
}

// negotiate answers the client's revision when the server speaks it, and
// the latest one otherwise.
func negotiate(v string) string {
	for _, s := range supportedVersions {
		if s == v {
			return v
		}
	}
	return latestVersion
}

func appendResultStart(dst, id []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, id...)
	return append(dst, `,"result":`...)
}

func appendResult(dst, id []byte, result string) []byte {
	dst = appendResultStart(dst, id)
	dst = append(dst, result...)
	return append(dst, '}')
}

func appendError(dst, id []byte, code int, message string) []byte {
	if id == nil {
		id = []byte("null")
	}
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"error":{"code":`...)
	dst = appendInt(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, []byte(message))
	return append(dst, `}}`...)
}

func appendInt(dst []byte, n int) []byte {
	if n < 0 {
		dst = append(dst, '-')
		n = -n
	}
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Bytes ≥ 0x80 pass through: the
// input came from a JSON document, so it is the caller's UTF-8.
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
