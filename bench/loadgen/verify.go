package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"strconv"
	"strings"
)

// Outcome classifies one reply to a tools/call.
type Outcome uint8

const (
	// OK: the reply carries the request's id and echoes its nonce.
	OK Outcome = iota
	// Mismatch: a well-formed reply that belongs to another request (wrong
	// id, or the echoed text lacks this request's nonce). Any mismatch is
	// a wrong delivery and a bug in whatever sits between client and tool.
	Mismatch
	// RPCError: a JSON-RPC error reply (Verdict.Code holds the code).
	RPCError
	// ToolError: a result with isError set.
	ToolError
	// BadReply: a body that is not a JSON-RPC response at all.
	BadReply
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Mismatch:
		return "mismatch"
	case RPCError:
		return "jsonrpc_error"
	case ToolError:
		return "tool_error"
	case BadReply:
		return "bad_reply"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Verdict is the result of verifying one reply.
type Verdict struct {
	Outcome Outcome
	Code    int64  // the JSON-RPC error code, for RPCError
	Detail  string // why, for anything but OK
}

// reply is the decoding shape of a server message.
type reply struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result *struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	} `json:"result"`
	Error *struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Verify checks a reply body to the tools/call with id wantID whose
// arguments carried nonce. contentType picks the framing: an SSE stream
// (text/event-stream) is searched for the first event holding a response,
// skipping server requests and notifications; anything else is read as
// one JSON-RPC message. An empty nonce skips the echo check.
func Verify(contentType string, body []byte, wantID int64, nonce string) Verdict {
	msg := body
	if isEventStream(contentType) {
		var err error
		if msg, err = responseEvent(body); err != nil {
			return Verdict{Outcome: BadReply, Detail: err.Error()}
		}
	}
	var r reply
	if err := json.Unmarshal(msg, &r); err != nil {
		return Verdict{Outcome: BadReply, Detail: "decode reply: " + err.Error() + ": " + excerpt(msg)}
	}
	return verifyReply(&r, wantID, nonce, msg)
}

func verifyReply(r *reply, wantID int64, nonce string, msg []byte) Verdict {
	if r.Method != "" {
		return Verdict{Outcome: BadReply, Detail: "got a " + r.Method + " message instead of a response"}
	}
	idOK := idEquals(r.ID, wantID)
	switch {
	case r.Error != nil:
		// An error with a null id answers a request the server could not
		// read; it is still an error, not a crossed delivery.
		if !idOK && !isNullID(r.ID) {
			return Verdict{Outcome: Mismatch, Detail: fmt.Sprintf("error reply for id %s, want %d", r.ID, wantID)}
		}
		return Verdict{Outcome: RPCError, Code: r.Error.Code, Detail: fmt.Sprintf("jsonrpc error %d: %s", r.Error.Code, r.Error.Message)}
	case r.Result == nil:
		return Verdict{Outcome: BadReply, Detail: "reply has neither result nor error: " + excerpt(msg)}
	case !idOK:
		return Verdict{Outcome: Mismatch, Detail: fmt.Sprintf("reply id %s, want %d", r.ID, wantID)}
	case r.Result.IsError:
		return Verdict{Outcome: ToolError, Detail: "tool error: " + excerpt(msg)}
	}
	if nonce == "" {
		return Verdict{Outcome: OK}
	}
	for _, c := range r.Result.Content {
		if c.Type == "text" && strings.Contains(c.Text, nonce) {
			return Verdict{Outcome: OK}
		}
	}
	return Verdict{Outcome: Mismatch, Detail: fmt.Sprintf("reply to id %d lacks nonce %s: %s", wantID, nonce, excerpt(msg))}
}

// idEquals reports whether a raw JSON id is the number want. A string id
// ("5") does not equal 5: a gateway must give back the id byte for byte.
func idEquals(raw json.RawMessage, want int64) bool {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	return err == nil && n == want
}

func isNullID(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func isEventStream(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/event-stream"
}

// responseEvent returns the data of the first SSE event in body that holds
// a JSON-RPC response (a message with no method). Events with empty data,
// such as a 2025-11-25 priming event, are skipped.
func responseEvent(body []byte) ([]byte, error) {
	var data []byte
	lines := 0
	flush := func() ([]byte, bool) {
		defer func() { data, lines = data[:0], 0 }()
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, false
		}
		var probe struct {
			Method string `json:"method"`
		}
		if json.Unmarshal(data, &probe) == nil && probe.Method != "" {
			return nil, false
		}
		return bytes.Clone(data), true
	}
	for len(body) > 0 {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 { // a blank line ends the event
			if msg, ok := flush(); ok {
				return msg, nil
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		if string(field) != "data" {
			continue // event, id, retry or a comment
		}
		value = bytes.TrimPrefix(value, []byte(" "))
		if lines > 0 {
			data = append(data, '\n')
		}
		data = append(data, value...)
		lines++
	}
	if msg, ok := flush(); ok { // a stream cut off before its blank line
		return msg, nil
	}
	return nil, fmt.Errorf("no JSON-RPC response in the SSE stream")
}

// excerpt shortens a body for an error message.
func excerpt(b []byte) string {
	const n = 200
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
