package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A config file is first parsed into a tree of nodes that keeps key order
// and line numbers, whatever its format; decode.go then maps the tree onto
// Config. This is what lets every diagnostic carry a JSON path and a line.

type nodeKind uint8

const (
	nodeNull nodeKind = iota
	nodeBool
	nodeNumber
	nodeString
	nodeObject
	nodeArray
)

type node struct {
	kind    nodeKind
	text    string // number text ("3402", "1.5"), string value, or "true"/"false"
	line    int
	members []member // nodeObject, in file order
	items   []*node  // nodeArray
}

type member struct {
	key    string
	line   int
	val    *node
	merged bool // from a YAML merge key ("<<: *base"); the mapping's own keys override it
}

// Limits that keep a hostile config file from exhausting memory or stack.
const (
	maxFileBytes = 4 << 20
	maxDepth     = 64
	maxNodes     = 200_000
)

// format is a config file's syntax.
type format string

const (
	formatJSON format = "JSON"
	formatYAML format = "YAML"
)

// formatOf picks the syntax from the file name, else from the content: a
// document starting with '{' is JSON, anything else YAML.
func formatOf(name string, data []byte) format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return formatJSON
	case ".yaml", ".yml":
		return formatYAML
	}
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		return formatJSON
	}
	return formatYAML
}

// syntaxError is a parse failure with the line it happened on.
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string { return e.msg }

// parseFile parses data into a tree whose root is an object.
func parseFile(f format, data []byte) (*node, error) {
	if len(data) > maxFileBytes {
		return nil, &syntaxError{msg: fmt.Sprintf("file is %d bytes; config files are limited to %d", len(data), maxFileBytes)}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &syntaxError{msg: "file is empty; it must hold an object such as {\"serverCommand\": \"...\"}"}
	}
	var root *node
	var err error
	if f == formatJSON {
		root, err = parseJSON(data)
	} else {
		root, err = parseYAML(data)
	}
	if err != nil {
		return nil, err
	}
	if root.kind != nodeObject {
		return nil, &syntaxError{line: root.line, msg: fmt.Sprintf("the top level is %s; it must be an object of settings", describe(root))}
	}
	return root, nil
}

// ── JSON ─────────────────────────────────────────────────────────────────

type jsonParser struct {
	dec   *json.Decoder
	lines []int // offsets of '\n'
	nodes int
}

func parseJSON(data []byte) (*node, error) {
	p := &jsonParser{dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	for i, c := range data {
		if c == '\n' {
			p.lines = append(p.lines, i)
		}
	}
	root, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, &syntaxError{line: p.line(p.dec.InputOffset()), msg: "unexpected data after the top-level object"}
	}
	return root, nil
}

// line returns the 1-based line holding byte offset off.
func (p *jsonParser) line(off int64) int {
	return sort.Search(len(p.lines), func(i int) bool { return int64(p.lines[i]) >= off }) + 1
}

func (p *jsonParser) fail(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &syntaxError{line: p.line(se.Offset), msg: "invalid JSON: " + se.Error()}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &syntaxError{line: p.line(p.dec.InputOffset()), msg: "invalid JSON: unexpected end of file"}
	}
	return &syntaxError{line: p.line(p.dec.InputOffset()), msg: "invalid JSON: " + err.Error()}
}

func (p *jsonParser) value(depth int) (*node, error) {
	if depth > maxDepth {
		return nil, &syntaxError{line: p.line(p.dec.InputOffset()), msg: fmt.Sprintf("nesting deeper than %d levels", maxDepth)}
	}
	if p.nodes++; p.nodes > maxNodes {
		return nil, &syntaxError{msg: fmt.Sprintf("more than %d values", maxNodes)}
	}
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.fail(err)
	}
	n := &node{line: p.line(p.dec.InputOffset())}
	switch t := tok.(type) {
	case nil:
		n.kind = nodeNull
	case bool:
		n.kind, n.text = nodeBool, strconv.FormatBool(t)
	case json.Number:
		n.kind, n.text = nodeNumber, t.String()
	case string:
		n.kind, n.text = nodeString, t
	case json.Delim:
		switch t {
		case '{':
			n.kind = nodeObject
			for p.dec.More() {
				kt, err := p.dec.Token()
				if err != nil {
					return nil, p.fail(err)
				}
				key, _ := kt.(string)
				line := p.line(p.dec.InputOffset())
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.members = append(n.members, member{key: key, line: line, val: v})
			}
		case '[':
			n.kind = nodeArray
			for p.dec.More() {
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, v)
			}
		default:
			return nil, &syntaxError{line: n.line, msg: fmt.Sprintf("invalid JSON: unexpected %q", t)}
		}
		if _, err := p.dec.Token(); err != nil { // the closing delimiter
			return nil, p.fail(err)
		}
	}
	return n, nil
}

// ── YAML ─────────────────────────────────────────────────────────────────

type yamlConverter struct{ nodes int }

func parseYAML(data []byte) (*node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, &syntaxError{msg: "file holds no YAML document"}
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			return nil, yamlError(err)
		}
		return nil, &syntaxError{line: extra.Line, msg: "file holds more than one YAML document; put all settings in one"}
	}
	c := &yamlConverter{}
	return c.convert(&doc, 0)
}

// yamlError turns a yaml.v3 error ("yaml: line 3: ...") into a syntaxError.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &syntaxError{line: line, msg: "invalid YAML: " + msg}
}

func (c *yamlConverter) convert(y *yaml.Node, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, &syntaxError{line: y.Line, msg: fmt.Sprintf("nesting deeper than %d levels (or an alias that refers to itself)", maxDepth)}
	}
	if c.nodes++; c.nodes > maxNodes {
		return nil, &syntaxError{line: y.Line, msg: fmt.Sprintf("more than %d values after expanding aliases", maxNodes)}
	}
	n := &node{line: y.Line}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return &node{kind: nodeNull, line: y.Line}, nil
		}
		return c.convert(y.Content[0], depth)
	case yaml.AliasNode:
		if y.Alias == nil {
			return nil, &syntaxError{line: y.Line, msg: "invalid YAML: unknown alias"}
		}
		a, err := c.convert(y.Alias, depth+1)
		if err != nil {
			return nil, err
		}
		cp := *a
		cp.line = y.Line
		return &cp, nil
	case yaml.SequenceNode:
		n.kind = nodeArray
		for _, it := range y.Content {
			v, err := c.convert(it, depth+1)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, v)
		}
	case yaml.MappingNode:
		n.kind = nodeObject
		var merged []member
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				ms, err := c.merge(v, depth+1)
				if err != nil {
					return nil, err
				}
				merged = append(merged, ms...)
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return nil, &syntaxError{line: k.Line, msg: "keys must be plain strings"}
			}
			val, err := c.convert(v, depth+1)
			if err != nil {
				return nil, err
			}
			n.members = append(n.members, member{key: k.Value, line: k.Line, val: val})
		}
		// Merged keys ("<<: *base") apply first, so the mapping's own keys win.
		n.members = append(merged, n.members...)
	case yaml.ScalarNode:
		return c.scalar(y)
	default:
		return nil, &syntaxError{line: y.Line, msg: "invalid YAML node"}
	}
	return n, nil
}

// merge expands the value of a "<<" key: a mapping, or a list of them.
func (c *yamlConverter) merge(v *yaml.Node, depth int) ([]member, error) {
	n, err := c.convert(v, depth)
	if err != nil {
		return nil, err
	}
	switch n.kind {
	case nodeObject:
		return asMerged(n.members), nil
	case nodeArray:
		var out []member
		for _, it := range n.items {
			if it.kind != nodeObject {
				return nil, &syntaxError{line: it.line, msg: "a merge key (<<) needs mappings"}
			}
			out = append(out, asMerged(it.members)...)
		}
		return out, nil
	}
	return nil, &syntaxError{line: v.Line, msg: "a merge key (<<) needs a mapping"}
}

func asMerged(ms []member) []member {
	out := make([]member, len(ms))
	for i, m := range ms {
		m.merged = true
		out[i] = m
	}
	return out
}

func (c *yamlConverter) scalar(y *yaml.Node) (*node, error) {
	n := &node{line: y.Line}
	switch y.ShortTag() {
	case "!!null":
		n.kind = nodeNull
	case "!!bool":
		var b bool
		if err := y.Decode(&b); err != nil {
			return nil, &syntaxError{line: y.Line, msg: "invalid YAML boolean " + strconv.Quote(y.Value)}
		}
		n.kind, n.text = nodeBool, strconv.FormatBool(b)
	case "!!int":
		n.kind = nodeNumber
		var i int64
		if err := y.Decode(&i); err == nil {
			n.text = strconv.FormatInt(i, 10)
			break
		}
		var f float64
		if err := y.Decode(&f); err == nil {
			n.text = formatFloat(f)
			break
		}
		n.text = y.Value
	case "!!float":
		n.kind = nodeNumber
		var f float64
		if err := y.Decode(&f); err != nil {
			n.text = y.Value
			break
		}
		n.text = formatFloat(f)
	default: // !!str, !!timestamp, !!binary and custom tags keep their text
		n.kind, n.text = nodeString, y.Value
	}
	return n, nil
}

// formatFloat writes f as number text. NaN and infinities come out as
// words ("NaN", "+Inf") that no number parser here accepts, so they are
// reported as non-numbers.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// describe names a node's type for messages: "a string (\"x\")".
func describe(n *node) string {
	switch n.kind {
	case nodeNull:
		return "null"
	case nodeBool:
		return n.text
	case nodeNumber:
		return "the number " + n.text
	case nodeString:
		s := n.text
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return "the string " + strconv.Quote(s)
	case nodeObject:
		return "an object"
	case nodeArray:
		return "a list"
	}
	return "a value"
}
