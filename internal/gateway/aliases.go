package gateway

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/store"
)

// Tool aliases: a call of a deprecated name runs the tool it points to.
// The rewrite happens before the gate, so the call is priced, rate-limited
// and ACL-checked as the target tool: the old name is only a way to reach
// it, and a key allowed only the old name must be allowed the new one.
// The answer carries Deprecation: true, Sunset (when announced) and Link
// headers: rel="successor-version" to the new tool's entry in the pricing
// document, rel="deprecation" to the operator's page when configured.

// rewrite turns a call of a meta-tool (dynamic discovery) or of an alias
// into a call of the tool it stands for, and returns the params to forward.
// done reports that the call has been answered (a listing meta-tool, or
// invalid params).
func (g *Gateway) rewrite(ctx context.Context, ex *streamable.Exchange, rules *Rules, p *mcp.CallToolParams) (_ *mcp.CallToolParams, fwd json.RawMessage, done bool) {
	orig := p
	if g.discovery && isMetaTool(p.Name) {
		if p, done = g.metaTool(ctx, ex, rules, p); done {
			return nil, nil, true
		}
	}
	if to, ok := g.aliasTarget(ex, p.Name); ok {
		q := *p
		q.Name = to
		p = &q
	}
	if p == orig {
		return p, ex.Msg.Params, false
	}
	fwd, err := rewriteParams(ex.Msg.Params, p)
	if err != nil {
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: "invalid params: " + err.Error()})
		return nil, nil, true
	}
	return p, fwd, false
}

// aliasTarget returns the tool an alias stands for and sets the
// deprecation headers; ok is false when name is no alias.
func (g *Gateway) aliasTarget(ex *streamable.Exchange, name string) (string, bool) {
	e := g.aliases.Resolve(name)
	if e == nil {
		return name, false
	}
	e.Hit()
	h := ex.Header
	h.Set("Deprecation", "true")
	if e.SunsetHeader != "" {
		h.Set("Sunset", e.SunsetHeader)
	}
	h.Add("Link", "<"+g.pricing+"#"+url.PathEscape(e.To)+`>; rel="successor-version"`)
	if e.Link != "" {
		h.Add("Link", "<"+e.Link+`>; rel="deprecation"`)
	}
	return e.To, true
}

// rewriteParams replaces name and arguments in tools/call params, keeping
// every other member (_meta with its progress token, ...).
func rewriteParams(orig json.RawMessage, p *mcp.CallToolParams) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(orig, &m); err != nil {
		return nil, err
	}
	name, err := json.Marshal(p.Name)
	if err != nil {
		return nil, err
	}
	m["name"] = name
	if len(p.Arguments) > 0 {
		m["arguments"] = p.Arguments
	} else {
		delete(m, "arguments")
	}
	return json.Marshal(m)
}

// withAliases appends to a decorated tools/list result a deprecated copy
// of each listed tool that aliases point to (listToolAliases). The copy
// has the alias's name, a description starting "Deprecated: use <tool>",
// and a _deprecated member {to, sunset}.
func (g *Gateway) withAliases(result json.RawMessage, key *store.Key) json.RawMessage {
	aliases := g.aliases.List()
	if len(aliases) == 0 {
		return result
	}
	var top map[string]json.RawMessage
	var tools []json.RawMessage
	if json.Unmarshal(result, &top) != nil || json.Unmarshal(top["tools"], &tools) != nil {
		return result
	}
	byName := make(map[string]map[string]json.RawMessage, len(tools))
	for _, t := range tools {
		var m map[string]json.RawMessage
		var name string
		if json.Unmarshal(t, &m) == nil && json.Unmarshal(m["name"], &name) == nil {
			byName[name] = m
		}
	}
	for _, a := range aliases {
		target := byName[a.To]
		if target == nil || (key != nil && !gate.ToolAllowed(key, a.To)) {
			continue
		}
		var desc string
		_ = json.Unmarshal(target["description"], &desc)
		note := "Deprecated: use " + a.To + " instead."
		if !a.Sunset.IsZero() {
			note += " Stops working after " + a.Sunset.UTC().Format("2006-01-02") + "."
		}
		if desc != "" {
			note += " " + desc
		}
		dep := struct {
			To     string `json:"to"`
			Sunset string `json:"sunset,omitempty"`
		}{To: a.To}
		if !a.Sunset.IsZero() {
			dep.Sunset = a.Sunset.UTC().Format("2006-01-02T15:04:05Z")
		}
		m := make(map[string]json.RawMessage, len(target)+1)
		for k, v := range target {
			m[k] = v
		}
		m["name"], _ = json.Marshal(a.From)
		m["description"], _ = json.Marshal(note)
		m["_deprecated"], _ = json.Marshal(dep)
		b, err := json.Marshal(m)
		if err != nil {
			continue
		}
		tools = append(tools, b)
	}
	arr, err := json.Marshal(tools)
	if err != nil {
		return result
	}
	top["tools"] = arr
	out, err := json.Marshal(top)
	if err != nil {
		return result
	}
	return out
}
