package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
)

// decoder maps a parsed config file onto a Config, guided by the struct's
// JSON tags. It never stops at the first problem: every wrong type, bad
// value and unknown key becomes a Diagnostic with its path and line, and
// the rest of the file is still applied.
type decoder struct {
	diags []Diagnostic
}

func (d *decoder) add(level Level, path string, line int, format string, args ...any) {
	d.diags = append(d.diags, Diagnostic{Level: level, Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	amountType   = reflect.TypeFor[credits.Amount]()
)

// decodeInto applies the object root onto cfg.
func decodeInto(root *node, cfg *Config) []Diagnostic {
	d := &decoder{}
	d.value(root, reflect.ValueOf(cfg).Elem(), "", "")
	return d.diags
}

// value decodes n into v. path is the JSON path shown to users; pattern is
// the same path with "*" for map keys and "[]" for indexes, for the tables
// in compat.go. A null leaves v unchanged (paygate-mcp writes null for
// "not set").
func (d *decoder) value(n *node, v reflect.Value, path, pattern string) {
	if n.kind == nodeNull {
		return
	}
	switch v.Type() {
	case durationType:
		d.duration(n, v, path, 0)
		return
	case byteSizeType:
		d.byteSize(n, v, path)
		return
	case amountType:
		d.amount(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path, pattern)
	case reflect.Struct:
		d.object(n, v, path, pattern)
	case reflect.Map:
		d.mapping(n, v, path, pattern)
	case reflect.Slice:
		d.list(n, v, path, pattern)
	case reflect.String:
		if n.kind != nodeString {
			d.add(LevelError, path, n.line, "must be a string, got %s%s", describe(n), quoteHint(n))
			return
		}
		v.SetString(n.text)
	case reflect.Bool:
		if n.kind != nodeBool {
			d.add(LevelError, path, n.line, "must be true or false, got %s", describe(n))
			return
		}
		v.SetBool(n.text == "true")
	case reflect.Int, reflect.Int64:
		i, ok := d.whole(n, path)
		if !ok {
			return
		}
		if v.OverflowInt(i) {
			d.add(LevelError, path, n.line, "%d is out of range", i)
			return
		}
		v.SetInt(i)
	default:
		panic("config: no decoder for " + v.Type().String()) // programmer error: a new field type
	}
}

// quoteHint suggests quoting a YAML scalar that was meant as a string.
func quoteHint(n *node) string {
	if n.kind == nodeNumber || n.kind == nodeBool {
		return "; put the value in quotes"
	}
	return ""
}

// whole reads an integer; "1e3" and "5.0" count as whole numbers.
func (d *decoder) whole(n *node, path string) (int64, bool) {
	if n.kind != nodeNumber {
		d.add(LevelError, path, n.line, "must be a whole number, got %s", describe(n))
		return 0, false
	}
	if i, err := strconv.ParseInt(n.text, 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(n.text, 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		d.add(LevelError, path, n.line, "must be a whole number, got %s", n.text)
	case err != nil || f > math.MaxInt64 || f < math.MinInt64:
		d.add(LevelError, path, n.line, "%s is out of range", n.text)
	case f != math.Trunc(f):
		d.add(LevelError, path, n.line, "must be a whole number, got %s", n.text)
	default:
		return int64(f), true
	}
	return 0, false
}

func (d *decoder) amount(n *node, v reflect.Value, path string) {
	if n.kind != nodeNumber {
		d.add(LevelError, path, n.line, "credits must be a number, got %s", describe(n))
		return
	}
	c, err := credits.Parse([]byte(n.text))
	if err != nil {
		d.add(LevelError, path, n.line, "credits %v, got %s; use a whole number from 0 to %d", err, n.text, credits.Max)
		return
	}
	v.SetInt(c)
}

func (d *decoder) duration(n *node, v reflect.Value, path string, bareUnit time.Duration) {
	var s string
	switch {
	case n.kind == nodeString:
		s = n.text
	case n.kind == nodeNumber && (bareUnit != 0 || n.text == "0"):
		s = n.text
	default:
		d.add(LevelError, path, n.line, "must be a duration string like \"30s\" or \"5m\", got %s", describe(n))
		return
	}
	dur, err := ParseDuration(s, bareUnit)
	if err != nil {
		d.add(LevelError, path, n.line, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) byteSize(n *node, v reflect.Value, path string) {
	switch n.kind {
	case nodeNumber:
		i, ok := d.whole(n, path)
		if ok {
			v.SetInt(i)
		}
	case nodeString:
		b, err := ParseByteSize(n.text)
		if err != nil {
			d.add(LevelError, path, n.line, "%v", err)
			return
		}
		v.SetInt(int64(b))
	default:
		d.add(LevelError, path, n.line, "must be a number of bytes or a size like \"1MiB\", got %s", describe(n))
	}
}

func (d *decoder) list(n *node, v reflect.Value, path, pattern string) {
	items := n.items
	switch {
	case n.kind == nodeArray:
	case n.kind == nodeString && v.Type().Elem().Kind() == reflect.String:
		items = []*node{n} // a single string is a list of one
	default:
		d.add(LevelError, path, n.line, "must be a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(items))
	for i, it := range items {
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(it, e, path+"["+strconv.Itoa(i)+"]", pattern+"[]")
		s = reflect.Append(s, e)
	}
	v.Set(s)
}

func (d *decoder) mapping(n *node, v reflect.Value, path, pattern string) {
	if n.kind != nodeObject {
		d.add(LevelError, path, n.line, "must be an object, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	d.warnDuplicates(n, path, pattern)
	for _, m := range n.members {
		// An entry that exists already (from a lower layer or an earlier
		// duplicate) is updated, not replaced.
		e := reflect.New(v.Type().Elem()).Elem()
		if old := v.MapIndex(reflect.ValueOf(m.key)); old.IsValid() {
			e.Set(old)
		}
		d.value(m.val, e, joinPath(path, displayKey(pattern, m.key)), pattern+".*")
		v.SetMapIndex(reflect.ValueOf(m.key), e)
	}
}

func (d *decoder) object(n *node, v reflect.Value, path, pattern string) {
	if n.kind != nodeObject {
		d.add(LevelError, path, n.line, "must be an object, got %s", describe(n))
		return
	}
	fields := jsonFields(v.Type())
	d.warnDuplicates(n, path, pattern)
	for _, m := range n.members {
		p, pat := joinPath(path, m.key), joinPattern(pattern, m.key)
		if i, ok := fields[m.key]; ok {
			d.value(m.val, v.Field(i), p, pat)
			continue
		}
		if r, ok := renamed[pat]; ok {
			f := v.Field(fields[r.to])
			if f.Type() == durationType && r.unit != 0 {
				d.duration(m.val, f, p, r.unit)
			} else {
				d.value(m.val, f, p, joinPattern(pattern, r.to))
			}
			continue
		}
		if strings.HasPrefix(m.key, "x-") {
			continue // extension field, for YAML anchors and notes (as in Compose files)
		}
		if what, ok := notSupported[pat]; ok {
			d.add(LevelWarning, p, m.line, "not supported yet (%s), ignored", what)
			continue
		}
		msg := "unknown key, ignored"
		if s := suggestKey(m.key, pattern, fields); s != "" {
			msg = fmt.Sprintf("unknown key, ignored; did you mean %q?", s)
		}
		d.add(LevelWarning, p, m.line, "%s", msg)
	}
}

// warnDuplicates reports keys given twice in one object.
func (d *decoder) warnDuplicates(n *node, path, pattern string) {
	seen := make(map[string]bool, len(n.members))
	for _, m := range n.members {
		if m.merged {
			continue
		}
		if seen[m.key] {
			d.add(LevelWarning, joinPath(path, displayKey(pattern, m.key)), m.line, "key given more than once; the last value is used")
		}
		seen[m.key] = true
	}
}

// suggestKey finds the key probably meant by an unknown key.
func suggestKey(key, pattern string, fields map[string]int) string {
	if pattern == "" {
		if h, ok := hints[key]; ok {
			return h
		}
	}
	cands := make([]string, 0, len(fields)+len(notSupported))
	for name := range fields {
		cands = append(cands, name)
	}
	prefix := ""
	if pattern != "" {
		prefix = pattern + "."
	}
	for pat := range notSupported {
		if rest, ok := strings.CutPrefix(pat, prefix); ok && !strings.ContainsAny(rest, ".[") {
			cands = append(cands, rest)
		}
	}
	sort.Strings(cands) // deterministic among equally close candidates
	return suggest(key, cands)
}

// jsonFields maps the JSON key of each field of struct type t to its index.
func jsonFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		m[name] = i
	}
	return m
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_:\-]*$`)

// joinPath appends a key to a JSON path: a.b, or a["b.c"] when the key is
// not a plain word.
func joinPath(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func joinPattern(pattern, key string) string {
	if pattern == "" {
		return key
	}
	return pattern + "." + key
}

// displayKey hides the secret map keys of importKeys in paths.
func displayKey(pattern, key string) string {
	if pattern == "importKeys" {
		return MaskSecret(key)
	}
	return key
}

// MaskSecret shows enough of a secret to tell it apart: the first 7 and
// last 4 characters of a long one (as key listings do), at most half of a
// short one.
func MaskSecret(s string) string {
	if len(s) >= 16 {
		return s[:7] + "..." + s[len(s)-4:]
	}
	return s[:min(7, len(s)/2)] + "..."
}
