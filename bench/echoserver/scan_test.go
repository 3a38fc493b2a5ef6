package echoserver

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

var scanSeeds = []string{
	`{}`,
	` { "a" : 1 , "b":[1,{"c":"}"}], "d":"x\"y\\", "e":null,"f":true,"g":-1.5e3 } `,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"nonce":"n"}}}`,
	`{"a":1,"a":2}`,
	`{"nested":{"deep":[[[{"x":"]]]}"}]]]}}`,
	`[1,2]`,
	`"str"`,
	`{"method":"\u0070ing","id":"\"q\"","jsonrpc":"2.0"}`,
}

// eachMember finds the same members as encoding/json, byte for byte.
func FuzzEachMember(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) || !utf8.Valid(data) {
			return
		}
		var want map[string]json.RawMessage
		isObject := json.Unmarshal(data, &want) == nil && bytes.TrimSpace(data)[0] == '{'
		got := map[string]json.RawMessage{}
		err := eachMember(data, func(key, val []byte) { got[string(key)] = val })
		if !isObject {
			if err == nil && bytes.TrimSpace(data)[0] != '{' {
				t.Fatalf("eachMember accepted a non-object: %s", data)
			}
			return
		}
		if err != nil {
			t.Fatalf("eachMember(%s): %v", data, err)
		}
		for k, v := range want {
			if bytes.ContainsRune(data, '\\') {
				continue // escaped keys are compared raw by the scanner
			}
			if !bytes.Equal(got[k], v) {
				t.Fatalf("member %q: got %s, want %s (in %s)", k, got[k], v, data)
			}
		}
		if !bytes.ContainsRune(data, '\\') && len(got) != len(want) {
			t.Fatalf("got %d members, want %d (in %s)", len(got), len(want), data)
		}
	})
}

// Whatever comes in, what goes out is valid JSON or nothing.
func FuzzAppendReply(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"x"}]`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":"\u0000\n"}}`))
	var s Server
	f.Fuzz(func(t *testing.T, data []byte) {
		out := s.AppendReply(nil, data)
		if len(out) > 0 && !json.Valid(out) {
			t.Fatalf("reply to %q is not JSON: %s", data, out)
		}
	})
}
