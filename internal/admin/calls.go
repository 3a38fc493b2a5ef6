package admin

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/cache"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/toolalias"
)

// CallControls are the gateway's runtime-adjustable call controls: the
// concurrency caps, the response cache and the tool aliases. Changes made
// here last until the config keys that set them change on a reload, or
// until a restart. A nil member's routes answer 503.
type CallControls struct {
	Concurrency Concurrency
	Cache       ResponseCache
	Aliases     ToolAliases
}

// Concurrency is the in-flight limiter; *gate.Concurrency implements it.
type Concurrency interface {
	Status() gate.ConcurrencyStatus
	Update(fn func(*gate.ConcurrencyLimits)) error
}

// ResponseCache is the response cache; *cache.Cache implements it.
type ResponseCache interface {
	Stats() cache.Stats
	Clear(tool string) int
}

// ToolAliases is the alias table; *toolalias.Table implements it.
type ToolAliases interface {
	List() []toolalias.Status
	Set(a toolalias.Alias) error
	Delete(from string) bool
}

func (a *API) callRoutes() []Route {
	return []Route{
		{Method: "GET", Pattern: "/admin/concurrency", Role: store.RoleViewer, Handler: a.concurrencyStatus, Doc: Doc{
			Tag: "call controls", Summary: "Concurrency caps and calls in flight",
			Description: "maxConcurrentPerKey caps each key's tool calls in flight, tools caps each tool's across all keys " +
				"(0 or absent: no cap). A call over a cap is refused with JSON-RPC -32005 (reason concurrency_limited), " +
				"data.retryAfter and a Retry-After header, and is not charged. inFlight counts calls while some cap is set.",
			Response: gate.ConcurrencyStatus{},
		}},
		{Method: "POST", Pattern: "/admin/concurrency", Role: store.RoleAdmin, Handler: a.concurrencyUpdate, Doc: Doc{
			Tag: "call controls", Summary: "Change the concurrency caps",
			Description: "Sets maxConcurrentPerKey when given, and each listed tool's cap (0 removes it); tools not " +
				"listed keep theirs. Calls in flight keep their slots. The change lasts until a config reload changes " +
				"maxConcurrentPerKey or a toolPricing maxConcurrent, or a restart.",
			Request: concurrencyRequest{}, Response: gate.ConcurrencyStatus{},
		}},
		{Method: "GET", Pattern: "/admin/cache", Role: store.RoleViewer, Handler: a.cacheStats, Doc: Doc{
			Tag: "call controls", Summary: "Response cache statistics",
			Description: "entries, bytes (approximate memory), hits, misses and hitRate since the start, evictions " +
				"(least recently used, over maxCacheEntries or cacheMaxBytes), expired entries dropped, and entries per tool.",
			Response: cacheStats{Tools: map[string]int{}},
		}},
		{Method: "DELETE", Pattern: "/admin/cache", Role: store.RoleAdmin, Handler: a.cacheClear, Doc: Doc{
			Tag: "call controls", Summary: "Clear the response cache",
			Query:    []Param{{Name: "tool", Type: "string", Description: "clear only this tool's entries"}},
			Response: cacheClearResponse{Stats: cacheStats{Tools: map[string]int{}}},
		}},
		{Method: "GET", Pattern: "/admin/tool-aliases", Role: store.RoleViewer, Handler: a.toolAliasList, Doc: Doc{
			Tag: "call controls", Summary: "Tool aliases with their call counts",
			Description: "A call of an alias runs, and is priced, rate-limited and ACL-checked as, the tool it points " +
				"to; its answer carries Deprecation, Sunset and Link headers. calls counts calls through each alias since the start.",
			Response: toolAliasesResponse{Aliases: []toolAliasStatus{}},
		}},
		{Method: "POST", Pattern: "/admin/tool-aliases", Role: store.RoleAdmin, Handler: a.toolAliasSet, Doc: Doc{
			Tag: "call controls", Summary: "Add or change a tool alias",
			Description: "Aliases do not chain: to must not be an alias, and from must not be another alias's target.",
			Request:     toolAliasRequest{}, Response: toolAliasesResponse{Aliases: []toolAliasStatus{}},
		}},
		{Method: "DELETE", Pattern: "/admin/tool-aliases", Role: store.RoleAdmin, Handler: a.toolAliasDelete, Doc: Doc{
			Tag: "call controls", Summary: "Remove a tool alias",
			Query:    []Param{{Name: "from", Type: "string", Required: true, Description: "the alias to remove"}},
			Response: toolAliasesResponse{Aliases: []toolAliasStatus{}},
		}},
	}
}

func unconfigured(what string) error {
	return newError(CodeUnavailable, "", "%s is not available on this server", what)
}

type concurrencyRequest struct {
	MaxConcurrentPerKey *count           `json:"maxConcurrentPerKey,omitempty"`
	Tools               map[string]count `json:"tools,omitempty"`
}

func (a *API) concurrencyStatus(w http.ResponseWriter, r *http.Request) error {
	if a.calls.Concurrency == nil {
		return unconfigured("the concurrency limiter")
	}
	return reply(w, r, http.StatusOK, a.calls.Concurrency.Status())
}

func (a *API) concurrencyUpdate(w http.ResponseWriter, r *http.Request) error {
	cc := a.calls.Concurrency
	if cc == nil {
		return unconfigured("the concurrency limiter")
	}
	var req concurrencyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.MaxConcurrentPerKey == nil && len(req.Tools) == 0 {
		return badRequest("give maxConcurrentPerKey, tools, or both")
	}
	for tool := range req.Tools {
		if strings.TrimSpace(tool) == "" {
			return badField("tools", "tool names must not be empty")
		}
	}
	err := cc.Update(func(l *gate.ConcurrencyLimits) {
		if req.MaxConcurrentPerKey != nil {
			l.PerKey = int64(*req.MaxConcurrentPerKey)
		}
		for tool, n := range req.Tools {
			l.Tools[tool] = int64(n)
		}
	})
	if err != nil {
		return badRequest("%v", err)
	}
	st := cc.Status()
	a.audit(r, "concurrency.updated", nil, "concurrency caps changed", map[string]any{
		"maxConcurrentPerKey": st.PerKey, "tools": st.Tools})
	return reply(w, r, http.StatusOK, st)
}

type cacheClearResponse struct {
	Cleared int        `json:"cleared"`
	Tool    string     `json:"tool,omitempty"`
	Stats   cacheStats `json:"stats"`
}

// cacheStats names cache.Stats in the OpenAPI document.
type cacheStats cache.Stats

func (a *API) cacheStats(w http.ResponseWriter, r *http.Request) error {
	if a.calls.Cache == nil {
		return unconfigured("the response cache")
	}
	return reply(w, r, http.StatusOK, cacheStats(a.calls.Cache.Stats()))
}

func (a *API) cacheClear(w http.ResponseWriter, r *http.Request) error {
	c := a.calls.Cache
	if c == nil {
		return unconfigured("the response cache")
	}
	tool := queryOf(r).str("tool")
	n := c.Clear(tool)
	msg := "response cache cleared"
	if tool != "" {
		msg = "response cache cleared for " + tool
	}
	a.audit(r, "cache.cleared", nil, msg, map[string]any{"tool": tool, "cleared": n})
	return reply(w, r, http.StatusOK, cacheClearResponse{Cleared: n, Tool: tool, Stats: cacheStats(c.Stats())})
}

type toolAliasRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Sunset is when the alias is expected to stop working (RFC 3339).
	Sunset time.Time `json:"sunset,omitzero"`
	// Link is a page about the deprecation.
	Link string `json:"link,omitempty"`
}

type toolAliasesResponse struct {
	Aliases []toolAliasStatus `json:"aliases"`
}

// toolAliasStatus names toolalias.Status in the OpenAPI document.
type toolAliasStatus toolalias.Status

func toolAliasesOf(t ToolAliases) toolAliasesResponse {
	list := t.List()
	out := toolAliasesResponse{Aliases: make([]toolAliasStatus, len(list))}
	for i, s := range list {
		out.Aliases[i] = toolAliasStatus(s)
	}
	return out
}

func (a *API) toolAliasList(w http.ResponseWriter, r *http.Request) error {
	if a.calls.Aliases == nil {
		return unconfigured("tool aliasing")
	}
	return reply(w, r, http.StatusOK, toolAliasesOf(a.calls.Aliases))
}

func (a *API) toolAliasSet(w http.ResponseWriter, r *http.Request) error {
	t := a.calls.Aliases
	if t == nil {
		return unconfigured("tool aliasing")
	}
	var req toolAliasRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(req.From) == "":
		return badField("from", "is required: the deprecated tool name")
	case strings.TrimSpace(req.To) == "":
		return badField("to", "is required: the tool the alias stands for")
	}
	al := toolalias.Alias{From: req.From, To: req.To, Sunset: req.Sunset, Link: req.Link}
	if err := t.Set(al); err != nil {
		field := "to"
		if errors.Is(err, toolalias.ErrLink) {
			field = "link"
		}
		return badField(field, "%v", err)
	}
	a.audit(r, "tool_alias.set", nil, "tool alias "+req.From+" → "+req.To, map[string]any{"from": req.From, "to": req.To})
	return reply(w, r, http.StatusOK, toolAliasesOf(t))
}

func (a *API) toolAliasDelete(w http.ResponseWriter, r *http.Request) error {
	t := a.calls.Aliases
	if t == nil {
		return unconfigured("tool aliasing")
	}
	from := queryOf(r).str("from")
	if from == "" {
		return badField("from", "is required: the alias to remove")
	}
	if !t.Delete(from) {
		return notFound("from", "tool alias "+from)
	}
	a.audit(r, "tool_alias.deleted", nil, "tool alias "+from+" removed", map[string]any{"from": from})
	return reply(w, r, http.StatusOK, toolAliasesOf(t))
}
