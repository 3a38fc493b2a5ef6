package gateway

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/store"
)

// toolsList forwards tools/list and decorates the answer: each tool gets a
// _pricing object, and when the request carries a valid key, tools that
// key's ACL denies are left out.
func (g *Gateway) toolsList(ctx context.Context, ex *streamable.Exchange) {
	rules := g.rules.Load()
	if !rules.Policy.IsFree(ex.Msg.Method) {
		if d := g.authenticateOnly(ctx, ex, rules); d != nil {
			ex.ReplyError(gate.ErrorFor(d, g.pricing))
			return
		}
	}
	if g.discovery {
		ex.ReplyResult(metaToolList) // discovery.go
		return
	}
	resp, err := g.backend.Call(ctx, &backend.Request{ID: ex.Msg.ID, Method: ex.Msg.Method, Params: ex.Msg.Params, Peer: ex})
	if err != nil {
		ex.ReplyError(g.forwardError(err))
		return
	}
	if resp.Error != nil {
		ex.Reply(mcp.Encode(resp))
		return
	}
	var key *store.Key
	if cred := Credential(ex.Request); cred != "" {
		c := &gate.Call{Method: ex.Msg.Method, Credential: cred, ClientIP: g.clientIP.ClientIP(ex.Request), Now: g.now()}
		if rules.Chain.Authenticate(ctx, c) == nil {
			key = c.Key
			g.setHeaders(ex, c, accountBalance(c))
		}
	}
	result, err := decorateTools(resp.Result, rules, key)
	if err != nil {
		// Not the shape we expect: pass the backend's answer through.
		ex.Reply(mcp.Encode(resp))
		return
	}
	if rules.ListAliases {
		result = g.withAliases(result, key) // aliases.go
	}
	ex.Reply(mcp.AppendResult(nil, ex.Msg.ID, result))
}

// decorateTools rewrites a tools/list result. Only the tools array is
// re-encoded; every other member and every tool's own fields pass through.
func decorateTools(result json.RawMessage, rules *Rules, key *store.Key) (json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(result, &top); err != nil {
		return nil, err
	}
	var tools []json.RawMessage
	if err := json.Unmarshal(top["tools"], &tools); err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, 0, len(tools))
	for _, t := range tools {
		var head struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(t, &head); err != nil || head.Name == "" {
			out = append(out, t)
			continue
		}
		if key != nil && !gate.ToolAllowed(key, head.Name) {
			continue
		}
		pricing, err := json.Marshal(rules.Policy.ToolInfo(head.Name))
		if err != nil {
			return nil, err
		}
		out = append(out, withMember(t, "_pricing", pricing))
	}
	arr, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	top["tools"] = arr
	return json.Marshal(top)
}

// withMember adds "name": value to a JSON object, replacing nothing else.
func withMember(obj json.RawMessage, name string, value json.RawMessage) json.RawMessage {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' {
		return obj
	}
	body := bytes.TrimSpace(obj[1 : len(obj)-1])
	b := make([]byte, 0, len(obj)+len(name)+len(value)+8)
	b = append(b, '{')
	b = append(b, body...)
	if len(body) > 0 {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":`...)
	b = append(b, value...)
	return append(b, '}')
}
