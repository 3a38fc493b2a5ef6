package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
)

// A small validating JSON scanner for the hot path. encoding/json decodes by
// reflection and allocates per member; paygate only needs the extent of a
// few top-level members of each message, so it walks the bytes once,
// validating as it goes, and hands out sub-slices. The fuzz tests hold it
// to encoding/json's idea of valid JSON.

var errSyntax = errors.New("invalid JSON")

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 512

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue validates the JSON value starting at b[i] (no leading space)
// and returns the index just past it.
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := skipString(b, i)
		return end, err
	case c == '{':
		return skipObject(b, i, depth+1)
	case c == '[':
		return skipArray(b, i, depth+1)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	}
	return 0, errSyntax
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// skipString returns the index past the closing quote and whether the
// string holds escapes.
func skipString(b []byte, i int) (int, bool, error) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, escaped, nil
		case c == '\\':
			escaped = true
			j++
			if j >= len(b) {
				return 0, false, errSyntax
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return 0, false, errSyntax
				}
				for k := 1; k <= 4; k++ {
					if !isHex(b[j+k]) {
						return 0, false, errSyntax
					}
				}
				j += 4
			default:
				return 0, false, errSyntax
			}
		case c < 0x20:
			return 0, false, errSyntax
		}
	}
	return 0, false, errSyntax
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, errSyntax
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		start := i + 1
		if i = skipDigits(b, start); i == start {
			return 0, errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		if i = skipDigits(b, start); i == start {
			return 0, errSyntax
		}
	}
	return i, nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func skipArray(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, errSyntax
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = skipValue(b, i, depth); err != nil {
			return 0, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

func skipObject(b []byte, i, depth int) (int, error) {
	end, err := eachMember(b, i, depth, nil)
	return end, err
}

// eachMember validates the object at b[i] and calls fn (when non-nil) for
// each member with the raw key (without quotes; escaped reports whether it
// holds escape sequences) and the raw value. It returns the index past the
// object.
func eachMember(b []byte, i, depth int, fn func(key []byte, escaped bool, val []byte) error) (int, error) {
	if depth > maxDepth || i >= len(b) || b[i] != '{' {
		return 0, errSyntax
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errSyntax
		}
		kend, escaped, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i+1 : kend-1]
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return 0, errSyntax
		}
		i = skipSpace(b, i+1)
		vstart := i
		if i, err = skipValue(b, i, depth); err != nil {
			return 0, err
		}
		if fn != nil {
			if err := fn(key, escaped, b[vstart:i]); err != nil {
				return 0, err
			}
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

// unescape returns the Go string of the contents of a JSON string (between
// the quotes) that holds escapes.
func unescape(raw []byte) (string, bool) {
	var s string
	err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s)
	return s, err == nil
}

// members walks the top-level object b (surrounding space allowed) and
// calls fn per member. Keys with escapes are unescaped first, so "\u006d"
// matches "m". The key is only valid during the call (switch on
// string(key) compares without allocating). It reports errSyntax for
// anything that is not exactly one JSON object.
func members(b []byte, fn func(key, val []byte) error) error {
	i := skipSpace(b, 0)
	end, err := eachMember(b, i, 0, func(key []byte, escaped bool, val []byte) error {
		if escaped {
			s, ok := unescape(key)
			if !ok {
				return errSyntax
			}
			key = []byte(s)
		}
		return fn(key, val)
	})
	if err != nil {
		return err
	}
	if skipSpace(b, end) != len(b) {
		return errSyntax
	}
	return nil
}

// valid reports whether b is exactly one JSON value (surrounding space allowed).
func valid(b []byte) bool {
	i := skipSpace(b, 0)
	end, err := skipValue(b, i, 0)
	return err == nil && skipSpace(b, end) == len(b)
}

// unquote returns the Go string of a raw JSON string value (with quotes).
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		// Escapes and bytes beyond ASCII (which may be invalid UTF-8, and
		// then become U+FFFD as encoding/json does) take the slow path.
		if c == '\\' || c >= 0x80 {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return "", false
			}
			return s, true
		}
	}
	return string(inner), true
}

// splitArray returns the raw elements of the JSON array b (already trimmed
// on the left), or an ErrParse error.
func splitArray(b []byte) ([][]byte, error) {
	var out [][]byte
	i := skipSpace(b, 1)
	if i < len(b) && b[i] == ']' {
		if skipSpace(b, i+1) != len(b) {
			return nil, fmt.Errorf("%w: trailing data after the batch", ErrParse)
		}
		return out, nil
	}
	for {
		start := i
		end, err := skipValue(b, i, 1)
		if err != nil {
			return nil, fmt.Errorf("%w: malformed batch", ErrParse)
		}
		out = append(out, b[start:end])
		i = skipSpace(b, end)
		if i >= len(b) {
			return nil, fmt.Errorf("%w: unterminated batch", ErrParse)
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			if skipSpace(b, i+1) != len(b) {
				return nil, fmt.Errorf("%w: trailing data after the batch", ErrParse)
			}
			return out, nil
		default:
			return nil, fmt.Errorf("%w: malformed batch", ErrParse)
		}
	}
}

// MemberSpan returns where the value of the top-level member key of the
// JSON object obj starts and ends, so it can be replaced without
// re-encoding the rest of the object. With duplicate keys the last one
// counts, as encoding/json decodes them. ok is false when obj is not a valid
// JSON object or has no such member.
func MemberSpan(obj []byte, key string) (start, end int, ok bool) {
	base := skipSpace(obj, 0)
	_, err := eachMember(obj, base, 0, func(k []byte, escaped bool, val []byte) error {
		match := !escaped && string(k) == key
		if escaped {
			s, ok := unescape(k)
			match = ok && s == key
		}
		if match {
			// val aliases obj: its offset is the distance between the two.
			start = cap(obj) - cap(val)
			end, ok = start+len(val), true
		}
		return nil
	})
	if err != nil {
		return 0, 0, false
	}
	return start, end, ok
}

// Splice returns a copy of b with b[start:end] replaced by v.
func Splice(b []byte, start, end int, v []byte) []byte {
	out := make([]byte, 0, len(b)-(end-start)+len(v))
	out = append(out, b[:start]...)
	out = append(out, v...)
	return append(out, b[end:]...)
}
