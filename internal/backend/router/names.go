package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/paygate/paygate/internal/mcp"
	"strings"
)

// The router rewrites a few members of messages it otherwise forwards
// byte for byte: the name in tools/call, prompts/get and completion
// references, the names in listings, the ids of server requests. These
// helpers replace one member's value without re-encoding the rest.

// stringMember reads the string member key of obj.
func stringMember(obj []byte, key string) (value string, start, end int, ok bool) {
	s, e, ok := mcp.MemberSpan(obj, key)
	if !ok {
		return "", 0, 0, false
	}
	if err := json.Unmarshal(obj[s:e], &value); err != nil {
		return "", 0, 0, false
	}
	return value, s, e, true
}

// setString returns obj with the member spanning [start, end) replaced by
// the JSON string v.
func setString(obj []byte, start, end int, v string) []byte {
	q, _ := json.Marshal(v)
	return mcp.Splice(obj, start, end, q)
}

// errNoName: the object has no string "name" member.
var errNoName = errors.New("no name")

// withPrefix returns item with its "name" member prefixed.
func withPrefix(item []byte, prefix string) ([]byte, error) {
	name, s, e, ok := stringMember(item, "name")
	if !ok {
		return nil, errNoName
	}
	return setString(item, s, e, prefix+name), nil
}

// split separates "prefix<sep>name". The prefix cannot contain the
// separator (the config refuses it), so the first separator ends it.
func split(full, sep string) (prefix, name string, ok bool) {
	prefix, name, ok = strings.Cut(full, sep)
	return prefix, name, ok && prefix != "" && name != ""
}

// wrapID turns the id of a request a backend sends to a client into one
// naming the backend, so two backends' ids (both Muxes count "pg-s-1",
// "pg-s-2", …) never collide at the client: "r<index>:<original id JSON>".
func wrapID(idx int, id []byte) []byte {
	b, _ := json.Marshal(fmt.Sprintf("r%d:%s", idx, id))
	return b
}

// unwrapID reverses wrapID.
func unwrapID(id []byte) (idx int, orig []byte, ok bool) {
	var s string
	if err := json.Unmarshal(id, &s); err != nil || !strings.HasPrefix(s, "r") {
		return 0, nil, false
	}
	head, rest, found := strings.Cut(s[1:], ":")
	if !found || rest == "" {
		return 0, nil, false
	}
	if _, err := fmt.Sscanf(head, "%d", &idx); err != nil || fmt.Sprint(idx) != head {
		return 0, nil, false
	}
	return idx, []byte(rest), true
}
