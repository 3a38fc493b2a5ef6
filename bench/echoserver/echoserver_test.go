package echoserver

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAppendReply(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means no reply
	}{
		{"initialize, latest", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"paygate-bench-echo","version":"1.0.0"}}}`},
		{"initialize, older supported", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05"}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2024-11-05","capabilities":{"tools":{}},"serverInfo":{"name":"paygate-bench-echo","version":"1.0.0"}}}`},
		{"initialize, unknown version", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"1999-01-01"}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"paygate-bench-echo","version":"1.0.0"}}}`},
		{"initialize, no params", `{"jsonrpc":"2.0","id":1,"method":"initialize"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"paygate-bench-echo","version":"1.0.0"}}}`},
		{"initialized notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, ""},
		{"notification with null id", `{"jsonrpc":"2.0","id":null,"method":"notifications/cancelled"}`, ""},
		{"client response", `{"jsonrpc":"2.0","id":5,"result":{}}`, ""},
		{"ping", `{"jsonrpc":"2.0","id":"p-1","method":"ping"}`, `{"jsonrpc":"2.0","id":"p-1","result":{}}`},
		{"tools/list", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, `{"jsonrpc":"2.0","id":2,"result":` + toolsListResult + `}`},
		{"tools/call", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"nonce":"n-1"}}}`,
			`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"{\"nonce\":\"n-1\"}"}]}}`},
		{"tools/call, no arguments", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo"}}`,
			`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"{}"}]}}`},
		{"tools/call, unknown tool", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}`,
			`{"jsonrpc":"2.0","id":4,"error":{"code":-32602,"message":"unknown tool: nope"}}`},
		{"tools/call, bad params", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":[1]}`,
			`{"jsonrpc":"2.0","id":4,"error":{"code":-32602,"message":"invalid tools/call params"}}`},
		{"unknown method", `{"jsonrpc":"2.0","id":9,"method":"resources/list"}`,
			`{"jsonrpc":"2.0","id":9,"error":{"code":-32601,"message":"method not found: resources/list"}}`},
		{"not JSON", `{"jsonrpc":`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`},
		{"wrong jsonrpc", `{"jsonrpc":"1.0","id":1,"method":"ping"}`,
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"jsonrpc must be \"2.0\""}}`},
		{"wrong member type", `{"jsonrpc":"2.0","id":1,"method":7}`,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request"}}`},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"ping"}]`,
			`[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"result":{}}]`},
		{"batch of notifications", `[{"jsonrpc":"2.0","method":"notifications/initialized"}]`, ""},
		{"empty batch", `[]`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"empty batch"}}`},
	}
	var s Server
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(s.AppendReply(nil, []byte(tc.in)))
			if got != tc.want {
				t.Fatalf("reply\n got %s\nwant %s", got, tc.want)
			}
			if got != "" && !json.Valid([]byte(got)) {
				t.Fatalf("reply is not valid JSON: %s", got)
			}
		})
	}
}

// The echoed text is the arguments, byte for byte, whatever they hold.
func TestEchoRoundTripsArguments(t *testing.T) {
	args := []string{
		`{}`,
		`{"q":"quote \" backslash \\ newline \n tab \t ctrl \u0001"}`,
		`{"unicode":"héllo 世界 🎉","n":[1,2.5,-3e10,true,null]}`,
		`{"nested":{"a":{"b":{"c":"` + strings.Repeat("x", 10000) + `"}}}}`,
		"{\n  \"pretty\": true\n}",
	}
	var s Server
	for _, a := range args {
		req := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":` + a + `}}`
		var r struct {
			Result struct {
				Content []struct{ Type, Text string }
			}
		}
		out := s.AppendReply(nil, []byte(req))
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("reply to %.40s is not JSON: %v", a, err)
		}
		if len(r.Result.Content) != 1 || r.Result.Content[0].Type != "text" || r.Result.Content[0].Text != a {
			t.Errorf("echo of %.40s came back as %+v", a, r.Result.Content)
		}
	}
}

func BenchmarkAppendReplyToolsCall(b *testing.B) {
	var s Server
	msg := []byte(`{"jsonrpc":"2.0","id":12345,"method":"tools/call","params":{"name":"echo","arguments":{"nonce":"ab12cd34-3-12345"}}}`)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = s.AppendReply(buf[:0], msg)
	}
}
