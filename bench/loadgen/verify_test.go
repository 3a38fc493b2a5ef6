package loadgen

import (
	"strings"
	"testing"
)

func TestVerify(t *testing.T) {
	const (
		nonce = "ab12cd34-3-7"
		okRes = `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"{\"nonce\":\"ab12cd34-3-7\"}"}]}}`
	)
	sse := func(events ...string) string { return strings.Join(events, "\n\n") + "\n\n" }
	tests := []struct {
		name        string
		contentType string
		body        string
		want        Outcome
		code        int64
	}{
		{"ok", "application/json", okRes, OK, 0},
		{"ok with charset", "application/json; charset=utf-8", okRes, OK, 0},
		{"wrong id", "application/json",
			`{"jsonrpc":"2.0","id":8,"result":{"content":[{"type":"text","text":"{\"nonce\":\"ab12cd34-3-7\"}"}]}}`, Mismatch, 0},
		{"id as a string", "application/json",
			`{"jsonrpc":"2.0","id":"7","result":{"content":[{"type":"text","text":"{\"nonce\":\"ab12cd34-3-7\"}"}]}}`, Mismatch, 0},
		{"wrong nonce", "application/json",
			`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"{\"nonce\":\"ab12cd34-3-8\"}"}]}}`, Mismatch, 0},
		{"nonce of another worker", "application/json",
			`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"{\"nonce\":\"ab12cd34-4-7\"}"}]}}`, Mismatch, 0},
		{"no content", "application/json", `{"jsonrpc":"2.0","id":7,"result":{"content":[]}}`, Mismatch, 0},
		{"error reply", "application/json",
			`{"jsonrpc":"2.0","id":7,"error":{"code":-32402,"message":"insufficient_credits"}}`, RPCError, -32402},
		{"error with null id", "application/json",
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`, RPCError, -32700},
		{"error for another id", "application/json",
			`{"jsonrpc":"2.0","id":9,"error":{"code":-32603,"message":"internal"}}`, Mismatch, 0},
		{"tool error", "application/json",
			`{"jsonrpc":"2.0","id":7,"result":{"isError":true,"content":[{"type":"text","text":"boom"}]}}`, ToolError, 0},
		{"not JSON", "application/json", `<html>bad gateway</html>`, BadReply, 0},
		{"neither result nor error", "application/json", `{"jsonrpc":"2.0","id":7}`, BadReply, 0},
		{"a request instead of a response", "application/json",
			`{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{}}`, BadReply, 0},
		{"batch instead of a response", "application/json", `[` + okRes + `]`, BadReply, 0},

		{"SSE ok", "text/event-stream", sse("event: message\ndata: " + okRes), OK, 0},
		{"SSE ok, data without space, CRLF", "text/event-stream",
			strings.ReplaceAll(sse("event: message\ndata:"+okRes), "\n", "\r\n"), OK, 0},
		{"SSE after priming event and notification", "text/event-stream", sse(
			"id: 0\ndata:",
			": keep-alive comment",
			`event: message`+"\n"+`data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`,
			"id: 2\nevent: message\ndata: "+okRes,
		), OK, 0},
		{"SSE data split over lines", "text/event-stream",
			sse("data: {\"jsonrpc\":\"2.0\",\"id\":7,\ndata: \"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ab12cd34-3-7\"}]}}"), OK, 0},
		{"SSE without the final blank line", "text/event-stream", "data: " + okRes, OK, 0},
		{"SSE wrong nonce", "text/event-stream",
			sse(`data: {"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"other"}]}}`), Mismatch, 0},
		{"SSE wrong id", "text/event-stream",
			sse(`data: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ab12cd34-3-7"}]}}`), Mismatch, 0},
		{"SSE error", "text/event-stream",
			sse(`data: {"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"nope"}}`), RPCError, -32601},
		{"SSE with only a notification", "text/event-stream",
			sse(`data: {"jsonrpc":"2.0","method":"notifications/message","params":{}}`), BadReply, 0},
		{"SSE empty", "text/event-stream", "", BadReply, 0},
		{"SSE body read as JSON", "application/json", sse("data: " + okRes), BadReply, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Verify(tc.contentType, []byte(tc.body), 7, nonce)
			if v.Outcome != tc.want || v.Code != tc.code {
				t.Fatalf("Verify = %v (code %d, %q), want %v (code %d)", v.Outcome, v.Code, v.Detail, tc.want, tc.code)
			}
			if v.Outcome != OK && v.Detail == "" {
				t.Errorf("a %v verdict has no detail", v.Outcome)
			}
		})
	}
}

func TestVerifyWithoutNonceCheck(t *testing.T) {
	body := `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"anything"}]}}`
	if v := Verify("application/json", []byte(body), 3, ""); v.Outcome != OK {
		t.Fatalf("Verify with no nonce = %v (%s), want ok", v.Outcome, v.Detail)
	}
	if v := Verify("application/json", []byte(body), 4, ""); v.Outcome != Mismatch {
		t.Fatalf("Verify of a wrong id with no nonce = %v, want mismatch", v.Outcome)
	}
}
