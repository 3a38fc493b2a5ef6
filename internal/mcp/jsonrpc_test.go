package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
		check   func(t *testing.T, m *Message)
	}{
		{name: "request", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`, check: func(t *testing.T, m *Message) {
			if !m.IsRequest() || m.Method != "tools/call" || m.ID.String() != "1" || string(m.Params) != `{"name":"x"}` {
				t.Fatalf("got %+v", m)
			}
		}},
		{name: "string id kept verbatim", in: `{"jsonrpc":"2.0","id":"a\"b","method":"ping"}`, check: func(t *testing.T, m *Message) {
			if m.ID.String() != `"a\"b"` {
				t.Fatalf("id %s", m.ID)
			}
		}},
		{name: "notification", in: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, check: func(t *testing.T, m *Message) {
			if !m.IsNotification() {
				t.Fatal("not a notification")
			}
		}},
		{name: "null id is a notification", in: `{"jsonrpc":"2.0","id":null,"method":"x"}`, check: func(t *testing.T, m *Message) {
			if !m.IsNotification() {
				t.Fatal("want notification")
			}
		}},
		{name: "result response", in: `{"jsonrpc":"2.0","id":7,"result":{"a":1}}`, check: func(t *testing.T, m *Message) {
			if !m.IsResponse() || string(m.Result) != `{"a":1}` {
				t.Fatalf("got %+v", m)
			}
		}},
		{name: "error response", in: `{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"nope","data":{"x":1}}}`, check: func(t *testing.T, m *Message) {
			if m.Error == nil || m.Error.Code != -32601 || string(m.Error.Data) != `{"x":1}` {
				t.Fatalf("got %+v", m.Error)
			}
		}},
		{name: "null result is a result", in: `{"jsonrpc":"2.0","id":7,"result":null}`},
		{name: "not json", in: `{"jsonrpc":`, wantErr: ErrParse},
		{name: "garbage", in: `hello`, wantErr: ErrParse},
		{name: "wrong version", in: `{"jsonrpc":"1.0","id":1,"method":"x"}`, wantErr: ErrInvalidRequest},
		{name: "missing version", in: `{"id":1,"method":"x"}`, wantErr: ErrInvalidRequest},
		{name: "object id", in: `{"jsonrpc":"2.0","id":{},"method":"x"}`, wantErr: ErrInvalidRequest},
		{name: "bool id", in: `{"jsonrpc":"2.0","id":true,"method":"x"}`, wantErr: ErrInvalidRequest},
		{name: "method not string", in: `{"jsonrpc":"2.0","id":1,"method":5}`, wantErr: ErrInvalidRequest},
		{name: "empty method", in: `{"jsonrpc":"2.0","id":1,"method":""}`, wantErr: ErrInvalidRequest},
		{name: "params scalar", in: `{"jsonrpc":"2.0","id":1,"method":"x","params":3}`, wantErr: ErrInvalidRequest},
		{name: "both result and error", in: `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}`, wantErr: ErrInvalidRequest},
		{name: "nothing", in: `{"jsonrpc":"2.0","id":1}`, wantErr: ErrInvalidRequest},
		{name: "array is not a message", in: `[]`, wantErr: ErrInvalidRequest},
		{name: "request with result", in: `{"jsonrpc":"2.0","id":1,"method":"x","result":{}}`, wantErr: ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode([]byte(tc.in))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	msgs, errs, batch, err := DecodeBatch([]byte(` [{"jsonrpc":"2.0","id":1,"method":"a"}, {"bad":1}, {"jsonrpc":"2.0","method":"n"}]`))
	if err != nil || !batch || len(msgs) != 3 {
		t.Fatalf("batch=%v err=%v n=%d", batch, err, len(msgs))
	}
	if errs[0] != nil || !errors.Is(errs[1], ErrInvalidRequest) || errs[2] != nil || msgs[1] != nil {
		t.Fatalf("errs %v", errs)
	}
	if _, _, _, err := DecodeBatch([]byte(`[]`)); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("empty batch: %v", err)
	}
	if _, _, _, err := DecodeBatch([]byte(`  `)); !errors.Is(err, ErrParse) {
		t.Fatalf("empty body: %v", err)
	}
	if _, _, batch, err := DecodeBatch([]byte(`[1,`)); !errors.Is(err, ErrParse) || !batch {
		t.Fatalf("broken array: %v", err)
	}
}

func TestAppendRoundTrip(t *testing.T) {
	msgs := []*Message{
		{ID: Int64ID(3), Method: "tools/call", Params: json.RawMessage(`{"name":"x"}`)},
		{Method: "notifications/progress", Params: json.RawMessage(`{"progress":1}`)},
		{ID: StringID("s-1"), Result: json.RawMessage(`{"ok":true}`)},
		{ID: Int64ID(9), Error: &WireError{Code: -32402, Message: "Payment required: \"x\"\n", Data: json.RawMessage(`{"a":1}`)}},
		{Error: &WireError{Code: CodeParseError, Message: "parse error"}},
	}
	for _, m := range msgs {
		b := Encode(m)
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !bytes.Equal(got.ID, m.ID) || got.Method != m.Method || !bytes.Equal(got.Params, m.Params) || !bytes.Equal(got.Result, m.Result) {
			t.Fatalf("round trip %s -> %+v", b, got)
		}
		if (m.Error == nil) != (got.Error == nil) || (m.Error != nil && (m.Error.Message != got.Error.Message || m.Error.Code != got.Error.Code)) {
			t.Fatalf("error round trip %s", b)
		}
	}
}

func TestParseCallTool(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		name string
		args string
	}{
		{`{"name":"echo","arguments":{"a":1}}`, true, "echo", `{"a":1}`},
		{`{"name":"echo"}`, true, "echo", ``},
		{`{"name":""}`, false, "", ""},
		{`{"arguments":{}}`, false, "", ""},
		{`{"name":"x","arguments":[1]}`, false, "", ""},
		{`{"name":3}`, false, "", ""},
		{``, false, "", ""},
	}
	for _, tc := range tests {
		p, err := ParseCallTool(json.RawMessage(tc.in))
		if (err == nil) != tc.ok {
			t.Fatalf("%s: err=%v", tc.in, err)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("%s: %v is not ErrInvalidParams", tc.in, err)
			}
			continue
		}
		if p.Name != tc.name || string(p.Arguments) != tc.args {
			t.Fatalf("%s: got %+v", tc.in, p)
		}
	}
}

func TestVersions(t *testing.T) {
	if NegotiateVersion("2025-06-18") != "2025-06-18" || NegotiateVersion("1999-01-01") != LatestVersion {
		t.Fatal("negotiation")
	}
	if !BatchesAllowed("2025-03-26") || BatchesAllowed("2025-06-18") || BatchesAllowed("2025-11-25") {
		t.Fatal("batches")
	}
}

func TestToolResultIsError(t *testing.T) {
	if !ToolResultIsError(json.RawMessage(`{"content":[],"isError":true}`)) || ToolResultIsError(json.RawMessage(`{"content":[]}`)) || ToolResultIsError(json.RawMessage(`[`)) {
		t.Fatal("isError detection")
	}
}

// FuzzDecodeBatch: any body either decodes into messages that re-encode to
// valid JSON-RPC, or fails with ErrParse/ErrInvalidRequest; never a panic.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]`,
		`{"jsonrpc":"2.0","id":"x","result":{}}`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"p"}}`,
		`[]`, `{}`, `[`, `"str"`, `{"jsonrpc":"2.0","id":1e400,"method":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, errs, _, err := DecodeBatch(b)
		if err != nil {
			if !errors.Is(err, ErrParse) && !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		for i, m := range msgs {
			if errs[i] != nil {
				if !errors.Is(errs[i], ErrParse) && !errors.Is(errs[i], ErrInvalidRequest) {
					t.Fatalf("unexpected element error: %v", errs[i])
				}
				continue
			}
			out := Encode(m)
			if !json.Valid(out) {
				t.Fatalf("re-encoding is not JSON: %q", out)
			}
			if _, err := Decode(out); err != nil {
				t.Fatalf("re-encoding does not decode: %q: %v", out, err)
			}
		}
	})
}

func BenchmarkDecodeToolsCall(b *testing.B) {
	msg := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello world","n":12345}}}`)
	b.ReportAllocs()
	for b.Loop() {
		m, err := Decode(msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParseCallTool(m.Params); err != nil {
			b.Fatal(err)
		}
	}
}
