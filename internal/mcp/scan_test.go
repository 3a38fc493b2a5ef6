package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// reference decodes a message the slow way (encoding/json into a map, so
// member names are case-sensitive and the last duplicate wins) and returns
// the members the fast decoder looks at.
func reference(b []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// FuzzScanMatchesEncodingJSON holds the hand-written scanner to
// encoding/json: the same inputs are valid, and Decode extracts the same
// raw members.
func FuzzScanMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,2,{"b":null}]}}}`,
		`{"jsonrpc":"2.0","id":"a","result":{"content":[{"type":"text","text":"h\u00e9\"llo"}],"isError":true}}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad","data":[true,false,null,-1.5e-3]}}`,
		`{"jsonrpc":"2.0","method":"m","method":"n"}`,
		`{"jsonrpc":"2.0","\u006dethod":"m"}`,
		`{"jsonrpc":"2.0","Method":"m","id":1}`,
		` [1, 2.0, "x", {}] `, `{}`, `[]`, `"s"`, `01`, `1.`, `-`, `1e`, `{"a":}`, `{"a" 1}`, "{\"a\":\"\x01\"}",
		`{"a":"\ud800"}`, `[[[[[[[[[[]]]]]]]]]]`, `{"a":1,}`, `[1,]`, `tru`, `nul`, `{"a":1}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := valid(b), json.Valid(b); got != want {
			t.Fatalf("valid(%q) = %v, encoding/json says %v", b, got, want)
		}
		m, err := Decode(b)
		ref, isObject := reference(b)
		if !json.Valid(b) {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("Decode(%q) = %v, want ErrParse", b, err)
			}
			return
		}
		if !isObject {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("Decode(%q) = %v, want ErrInvalidRequest", b, err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("Decode(%q): unexpected error class %v", b, err)
			}
			return
		}
		// The members the fast path kept are the reference's.
		if id := ref["id"]; !bytes.Equal(nullToNil(id), m.ID) && !(isNull(id) && m.ID == nil) {
			t.Fatalf("id: %q vs %q", m.ID, id)
		}
		if m.Method != "" {
			var method string
			if json.Unmarshal(ref["method"], &method) != nil || method != m.Method {
				t.Fatalf("method: %q vs %q", m.Method, ref["method"])
			}
			if !bytes.Equal(m.Params, nullToNil(ref["params"])) {
				t.Fatalf("params: %q vs %q", m.Params, ref["params"])
			}
		} else if m.Error == nil && !bytes.Equal(m.Result, ref["result"]) {
			t.Fatalf("result: %q vs %q", m.Result, ref["result"])
		}
	})
}

func TestToolResultIsErrorLarge(t *testing.T) {
	big := bytes.Repeat([]byte(`{"type":"text","text":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},`), 2000)
	res := append(append([]byte(`{"content":[`), big...), []byte(`{"type":"text","text":"end"}],"isError":true}`)...)
	if !ToolResultIsError(res) {
		t.Fatal("isError after a large content array not found")
	}
}

func BenchmarkToolResultIsError(b *testing.B) {
	big := bytes.Repeat([]byte(`{"type":"text","text":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},`), 200)
	res := append(append([]byte(`{"content":[`), big...), []byte(`{"type":"text","text":"end"}]}`)...)
	b.SetBytes(int64(len(res)))
	b.ReportAllocs()
	for b.Loop() {
		ToolResultIsError(res)
	}
}

func TestMemberSpan(t *testing.T) {
	tests := []struct {
		obj, key, want string
		ok             bool
	}{
		{`{"a":1,"b":{"c":[1,2]},"d":"x"}`, "b", `{"c":[1,2]}`, true},
		{` { "a" : "v" } `, "a", `"v"`, true},
		{`{"a":1,"a":2}`, "a", `2`, true},
		{`{"\u0061":true}`, "a", `true`, true},
		{`{"a":1}`, "b", ``, false},
		{`{"a":1`, "a", ``, false},
		{`[1]`, "a", ``, false},
	}
	for _, tc := range tests {
		s, e, ok := MemberSpan([]byte(tc.obj), tc.key)
		if ok != tc.ok || (ok && tc.obj[s:e] != tc.want) {
			t.Errorf("MemberSpan(%s, %q) = %d,%d,%v", tc.obj, tc.key, s, e, ok)
		}
	}
	b := []byte(`{"id":1,"x":2}`)
	s, e, _ := MemberSpan(b, "id")
	if got := string(Splice(b, s, e, []byte(`"z"`))); got != `{"id":"z","x":2}` {
		t.Fatalf("Splice = %s", got)
	}
}
