package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Key identifies one cached result: the SHA-256 of the caller's scope, the
// tool name and the canonical form of the arguments.
type Key [sha256.Size]byte

// NewKey returns the key of a call of tool with the raw JSON arguments by
// a caller in scope (a key id, a namespace, or "" for everyone). Calls
// whose arguments mean the same JSON value get the same key; see
// Canonical.
func NewKey(scope, tool string, args json.RawMessage) (Key, error) {
	canon, err := Canonical(nil, args)
	if err != nil {
		return Key{}, err
	}
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, part := range [][]byte{[]byte(scope), []byte(tool), canon} {
		// Length-prefixed, so no choice of scope and tool can collide
		// with another split of the same bytes.
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(part)))])
		h.Write(part)
	}
	var k Key
	h.Sum(k[:0])
	return k, nil
}

// ErrNotJSON reports arguments that are not one JSON value.
var ErrNotJSON = errors.New("cache: arguments are not one JSON value")

// Canonical appends to dst the canonical encoding of the JSON value raw:
// no whitespace, object members sorted by key (the last of duplicate keys
// wins, as in encoding/json), strings re-escaped one way, and numbers
// written one way. Absent arguments (empty or null) are the empty object,
// as MCP servers read them.
//
// Numbers: an integer literal is kept digit for digit ("-0" becomes "0"),
// so large ids never collide. Any other number (1.0, 1e2, 0.5) is read as
// a float64, as JavaScript and most JSON parsers read it, and written as
// the integer it is ("100") when it is one below 2^53, else in Go's
// shortest 'g' form. Two literals that only differ beyond float64
// precision therefore share a key.
func Canonical(dst []byte, raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return append(dst, "{}"...), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrNotJSON
	}
	return appendValue(dst, v), nil
}

func appendValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, v)
	case json.Number:
		return appendNumber(dst, string(v))
	case string:
		return appendString(dst, v)
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendValue(dst, v[k])
		}
		return append(dst, '}')
	}
	panic(fmt.Sprintf("cache: unexpected JSON value %T", v)) // encoding/json yields only the types above
}

// maxExact is 2^53: every integer below it is exact in a float64.
const maxExact = 1 << 53

func appendNumber(dst []byte, s string) []byte {
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			s = "0"
		}
		return append(dst, s...)
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil:
		// Out of float64 range: keep the literal; it only matches itself.
		return append(dst, strings.ToLower(s)...)
	case f == 0:
		return append(dst, '0')
	case f == math.Trunc(f) && math.Abs(f) < maxExact:
		return strconv.AppendInt(dst, int64(f), 10)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// appendString writes s as a JSON string, escaping only what JSON requires
// (quote, backslash, control characters), so each string has one encoding.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
			continue
		}
		i++
	}
	return append(dst, '"')
}
