package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/store"
)

// Dynamic discovery (--discovery dynamic): tools/list shows three
// meta-tools instead of the backend's tools, so an agent's context holds
// three tool definitions however many the backend has.
//
//   - paygate_list_tools {cursor?, limit?} pages through the tools the key
//     may call, with descriptions, input schemas and prices;
//   - paygate_search_tools {query, limit?} finds tools by keywords in
//     their names and descriptions;
//   - paygate_call_tool {name, arguments} calls one.
//
// paygate_call_tool is rewritten into a call of the named tool before the
// gate runs, so that tool's price, ACL, rate limits, concurrency caps and
// cache apply, and its ledger entry names it. The two listing tools are
// free: they need a valid key, list only what the key's ACL allows, and
// never reach the ledger. Tools stay callable by their own names too.

// Meta-tool names.
const (
	metaListTools   = "paygate_list_tools"
	metaSearchTools = "paygate_search_tools"
	metaCallTool    = "paygate_call_tool"
)

func isMetaTool(name string) bool {
	return name == metaListTools || name == metaSearchTools || name == metaCallTool
}

// Listing bounds.
const (
	defaultListLimit   = 20
	defaultSearchLimit = 10
	maxListLimit       = 100
	// maxToolPages bounds how many pages of the backend's tools/list one
	// listing reads.
	maxToolPages = 100
)

// metaToolList is the tools/list result in dynamic mode.
var metaToolList = json.RawMessage(`{"tools":[` +
	`{"name":"` + metaListTools + `","description":"Lists the tools this server offers, a page at a time, with their descriptions, input schemas and prices in credits. Free. Call a tool with ` + metaCallTool + `.",` +
	`"inputSchema":{"type":"object","properties":{"cursor":{"type":"string","description":"nextCursor of the previous page; omit for the first page"},"limit":{"type":"integer","minimum":1,"maximum":100,"description":"tools per page (default 20)"}}}},` +
	`{"name":"` + metaSearchTools + `","description":"Finds tools by keywords in their names and descriptions, best matches first, with their input schemas and prices in credits. Free. Call a tool with ` + metaCallTool + `.",` +
	`"inputSchema":{"type":"object","properties":{"query":{"type":"string","description":"keywords, e.g. \"read file\""},"limit":{"type":"integer","minimum":1,"maximum":100,"description":"most results (default 10)"}},"required":["query"]}},` +
	`{"name":"` + metaCallTool + `","description":"Calls a tool found with ` + metaListTools + ` or ` + metaSearchTools + `. It is billed, limited and access-checked as that tool.",` +
	`"inputSchema":{"type":"object","properties":{"name":{"type":"string","description":"the tool's name"},"arguments":{"type":"object","description":"the tool's arguments, as its inputSchema describes"}},"required":["name"]}}` +
	`]}`)

// metaTool handles a call of a meta-tool: paygate_call_tool becomes the
// call it wraps; the listing tools are answered here (done).
func (g *Gateway) metaTool(ctx context.Context, ex *streamable.Exchange, rules *Rules, p *mcp.CallToolParams) (_ *mcp.CallToolParams, done bool) {
	if p.Name != metaCallTool {
		g.metaListing(ctx, ex, rules, p)
		return nil, true
	}
	var a struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	err := json.Unmarshal(orEmpty(p.Arguments), &a)
	args := bytes.TrimSpace(a.Arguments)
	switch {
	case err != nil:
		err = fmt.Errorf("%s arguments: %v", metaCallTool, err)
	case a.Name == "":
		err = fmt.Errorf("%s needs the name of the tool to call", metaCallTool)
	case isMetaTool(a.Name):
		err = fmt.Errorf("%s calls the server's tools, not %s", metaCallTool, a.Name)
	case len(args) > 0 && string(args) != "null" && args[0] != '{':
		err = fmt.Errorf("%s: arguments must be an object", metaCallTool)
	}
	if err != nil {
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: err.Error()})
		return nil, true
	}
	if string(args) == "null" {
		args = nil
	}
	return &mcp.CallToolParams{Name: a.Name, Arguments: args, Meta: p.Meta}, false
}

func orEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage(`{}`)
	}
	return b
}

// toolEntry is one tool as the listing meta-tools show it.
type toolEntry struct {
	Name        string          `json:"name"`
	Title       string          `json:"title,omitempty"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"inputSchema,omitempty"`
	Pricing     any             `json:"_pricing"`
}

// metaListing answers paygate_list_tools and paygate_search_tools.
func (g *Gateway) metaListing(ctx context.Context, ex *streamable.Exchange, rules *Rules, p *mcp.CallToolParams) {
	key, d := g.listingKey(ctx, ex, rules)
	if d != nil {
		ex.ReplyError(gate.ErrorFor(d, g.pricing))
		return
	}
	var a struct {
		Cursor string `json:"cursor"`
		Limit  int    `json:"limit"`
		Query  string `json:"query"`
	}
	if err := json.Unmarshal(orEmpty(p.Arguments), &a); err != nil {
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: p.Name + " arguments: " + err.Error()})
		return
	}
	if a.Limit < 0 || a.Limit > maxListLimit {
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: fmt.Sprintf("%s: limit must be between 1 and %d", p.Name, maxListLimit)})
		return
	}
	tools, err := g.backendTools(ctx)
	if err != nil {
		var we *mcp.WireError
		if errors.As(err, &we) {
			ex.ReplyError(we)
		} else {
			ex.ReplyError(g.forwardError(err))
		}
		return
	}
	entries := make([]toolEntry, 0, len(tools))
	for _, t := range tools {
		var e toolEntry
		if json.Unmarshal(t, &e) != nil || e.Name == "" || (key != nil && !gate.ToolAllowed(key, e.Name)) {
			continue
		}
		e.Pricing = rules.Policy.ToolInfo(e.Name)
		entries = append(entries, e)
	}

	var out struct {
		Tools      []toolEntry `json:"tools"`
		NextCursor string      `json:"nextCursor,omitempty"`
		Total      int         `json:"total"` // tools the key may call (list) or that match (search)
	}
	if p.Name == metaSearchTools {
		if strings.TrimSpace(a.Query) == "" {
			ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: metaSearchTools + " needs a query"})
			return
		}
		out.Tools = searchTools(entries, a.Query)
		out.Total = len(out.Tools)
		out.Tools = out.Tools[:min(len(out.Tools), cmp.Or(a.Limit, defaultSearchLimit))]
	} else {
		from := 0
		if a.Cursor != "" {
			n, err := strconv.Atoi(a.Cursor)
			if err != nil || n < 0 {
				ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: metaListTools + ": invalid cursor"})
				return
			}
			from = min(n, len(entries))
		}
		to := min(from+cmp.Or(a.Limit, defaultListLimit), len(entries))
		out.Tools, out.Total = entries[from:to], len(entries)
		if to < len(entries) {
			out.NextCursor = strconv.Itoa(to)
		}
	}
	ex.ReplyResult(toolResult(out))
}

// listingKey authenticates a listing meta-tool call: it needs a valid key,
// like every tools/call, and the key's ACL filters what it sees. In shadow
// mode nothing is refused; a call without a valid key sees every tool.
func (g *Gateway) listingKey(ctx context.Context, ex *streamable.Exchange, rules *Rules) (*store.Key, *gate.Denial) {
	c := &gate.Call{Method: mcp.MethodToolsCall, Credential: Credential(ex.Request), ClientIP: g.clientIP.ClientIP(ex.Request),
		Now: g.now(), RequestID: RequestID(ex.Request.Context())}
	err := rules.Chain.Authenticate(ctx, c)
	if err == nil {
		g.setHeaders(ex, c, accountBalance(c))
		return c.Key, nil
	}
	if rules.Policy.Shadow() {
		return nil, nil
	}
	var d *gate.Denial
	if errors.As(err, &d) {
		return nil, d
	}
	return nil, &gate.Denial{Reason: gate.StoreUnavailable, Detail: "the key store is unavailable; retry later"}
}

// backendTools reads every page of the backend's tools/list.
func (g *Gateway) backendTools(ctx context.Context) ([]json.RawMessage, error) {
	var all []json.RawMessage
	params := json.RawMessage(`{}`)
	for range maxToolPages {
		resp, err := g.backend.Call(ctx, &backend.Request{ID: mcp.StringID("paygate-discovery"), Method: mcp.MethodToolsList, Params: params})
		if err != nil {
			return nil, err
		}
		if resp.Error != nil {
			return nil, resp.Error
		}
		var page struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(resp.Result, &page); err != nil {
			return nil, fmt.Errorf("backend tools/list: %w", err)
		}
		all = append(all, page.Tools...)
		if page.NextCursor == "" {
			break
		}
		params, _ = json.Marshal(map[string]string{"cursor": page.NextCursor})
	}
	return all, nil
}

// searchTools ranks the entries matching any word of query: a word in the
// name counts more than one in the description, the whole query as the
// name most. Ties keep the backend's order.
func searchTools(entries []toolEntry, query string) []toolEntry {
	q := strings.ToLower(strings.TrimSpace(query))
	words := strings.FieldsFunc(q, func(r rune) bool { return r == ' ' || r == ',' || r == '_' || r == '-' || r == '.' || r == ':' })
	type scored struct {
		e     toolEntry
		score int
	}
	var hits []scored
	for _, e := range entries {
		name, desc := strings.ToLower(e.Name), strings.ToLower(e.Title+" "+e.Description)
		score := 0
		if name == q {
			score += 10
		}
		for _, w := range words {
			if strings.Contains(name, w) {
				score += 3
			}
			if strings.Contains(desc, w) {
				score++
			}
		}
		if score > 0 {
			hits = append(hits, scored{e, score})
		}
	}
	slices.SortStableFunc(hits, func(a, b scored) int { return b.score - a.score })
	out := make([]toolEntry, len(hits))
	for i, h := range hits {
		out[i] = h.e
	}
	return out
}

// toolResult is a CallToolResult carrying v as structured content and as
// its JSON text, for clients that read only text.
func toolResult(v any) json.RawMessage {
	body, _ := json.Marshal(v)
	text, _ := json.Marshal(string(body))
	return json.RawMessage(`{"content":[{"type":"text","text":` + string(text) + `}],"structuredContent":` + string(body) + `}`)
}
