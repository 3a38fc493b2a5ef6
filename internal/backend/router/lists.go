package router

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// kind is one of the merged listings.
type kind struct {
	method     string // tools/list
	field      string // the result's array member
	capability string // backends without it are skipped
	named      bool   // items' names get the prefix
}

var (
	toolsKind     = kind{mcp.MethodToolsList, "tools", "tools", true}
	promptsKind   = kind{mcp.MethodPromptsList, "prompts", "prompts", true}
	resourcesKind = kind{mcp.MethodResourcesList, "resources", "resources", true}
	templatesKind = kind{mcp.MethodResourcesTemplates, "resourceTemplates", "resources", true}
)

// maxPages bounds how many pages of one backend's listing are followed.
const maxPages = 100

// rescanInterval bounds how often a read of an unknown URI refreshes the
// resource listings.
const rescanInterval = time.Second

// listing is one backend's part of a merged listing.
type listing struct {
	items []json.RawMessage
	live  bool // answered now (else items are the last known listing)
	err   error
	rpc   *mcp.WireError
}

// list answers a listing request with every backend's items in one page.
func (r *Router) list(ctx context.Context, req *backend.Request, k kind) (*mcp.Message, error) {
	if cur, _, _, ok := stringMember(req.Params, "cursor"); ok && cur != "" {
		return rpcError(req.ID, mcp.CodeInvalidParams, "invalid cursor: in multi-server mode every listing is a single page"), nil
	}
	parts := r.fetchAll(ctx, k, req.Peer)
	items := []json.RawMessage{}
	answered := false
	var firstErr error
	var firstRPC *mcp.WireError
	for _, p := range parts {
		items = append(items, p.items...)
		answered = answered || p.live || len(p.items) > 0
		firstErr = cmpErr(firstErr, p.err)
		if firstRPC == nil {
			firstRPC = p.rpc
		}
	}
	if !answered {
		if firstErr != nil {
			return nil, firstErr
		}
		if firstRPC != nil {
			return &mcp.Message{ID: req.ID, Error: firstRPC}, nil
		}
	}
	arr, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	field, _ := json.Marshal(k.field)
	res := make([]byte, 0, len(arr)+len(field)+3)
	res = append(append(append(append(res, '{'), field...), ':'), arr...)
	return &mcp.Message{ID: req.ID, Result: append(res, '}')}, nil
}

// fetchAll fetches one listing from every backend in parallel.
func (r *Router) fetchAll(ctx context.Context, k kind, p backend.Peer) []listing {
	parts := make([]listing, len(r.routes))
	var wg sync.WaitGroup
	for i, rt := range r.routes {
		wg.Go(func() { parts[i] = r.fetch(ctx, rt, k, p) })
	}
	wg.Wait()
	return parts
}

// fetch reads all pages of one backend's listing, prefixes the names and
// remembers the result; on failure it returns the last known listing.
func (r *Router) fetch(ctx context.Context, rt *route, k kind, p backend.Peer) listing {
	if init := rt.b.Initialize(); init != nil && !hasCapability(init, k.capability) {
		return listing{live: true}
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ListTimeout)
	defer cancel()
	var items []json.RawMessage
	var uris []string
	var templates []*uriTemplate
	cursor := ""
	for range maxPages {
		params := json.RawMessage(`{}`)
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		resp, err := rt.b.Call(ctx, &backend.Request{ID: mcp.StringID("paygate-list"), Method: k.method, Params: params, Peer: wrapPeer(p, rt.idx)})
		if err != nil {
			r.log.Debug("listing from backend failed; using its last known listing", "backend", rt.b.Name(), "method", k.method, "err", err)
			return rt.cached(k, &backend.CallError{Status: rt.b.Status(), Err: err}, nil)
		}
		if resp.Error != nil {
			if resp.Error.Code == mcp.CodeMethodNotFound {
				return listing{live: true}
			}
			return rt.cached(k, nil, resp.Error)
		}
		var page map[string]json.RawMessage
		var arr []json.RawMessage
		if json.Unmarshal(resp.Result, &page) != nil || json.Unmarshal(page[k.field], &arr) != nil {
			return rt.cached(k, nil, &mcp.WireError{Code: mcp.CodeInternalError, Message: "backend " + rt.b.Name() + " sent a malformed " + k.method + " result"})
		}
		for _, it := range arr {
			switch k {
			case resourcesKind:
				if uri, _, _, ok := stringMember(it, "uri"); ok {
					uris = append(uris, uri)
				}
			case templatesKind:
				if t, _, _, ok := stringMember(it, "uriTemplate"); ok {
					if ct := compileTemplate(t); ct != nil {
						templates = append(templates, ct)
					}
				}
			}
			if k.named {
				if named, err := withPrefix(it, rt.prefix); err == nil {
					it = named
				}
			}
			items = append(items, it)
		}
		cursor = ""
		if c, ok := page["nextCursor"]; ok {
			_ = json.Unmarshal(c, &cursor)
		}
		if cursor == "" {
			break
		}
	}
	rt.mu.Lock()
	rt.lists[k.method] = items
	if k == templatesKind {
		rt.templates = templates
	}
	rt.mu.Unlock()
	if len(uris) > 0 {
		r.mu.Lock()
		for _, u := range uris {
			r.uris[u] = rt
		}
		r.mu.Unlock()
	}
	return listing{items: items, live: true}
}

// cached is the listing a backend that cannot answer contributes: the last
// one it gave.
func (rt *route) cached(k kind, err error, rpc *mcp.WireError) listing {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return listing{items: rt.lists[k.method], err: err, rpc: rpc}
}

// owner finds the backend serving a resource URI: the one that listed it,
// else the first whose template matches. A URI nobody is known to serve
// makes the router refresh the resource listings (at most once per
// rescanInterval, or after a list change) and look again. With a single
// backend offering resources, that one is the answer.
func (r *Router) owner(ctx context.Context, p backend.Peer, uri string) *route {
	if rt := r.lookup(uri); rt != nil {
		return rt
	}
	if r.shouldRescan() {
		var wg sync.WaitGroup
		wg.Go(func() { r.fetchAll(ctx, resourcesKind, p) })
		wg.Go(func() { r.fetchAll(ctx, templatesKind, p) })
		wg.Wait()
		if rt := r.lookup(uri); rt != nil {
			return rt
		}
	}
	var only *route
	for _, rt := range r.routes {
		if hasCapability(rt.b.Initialize(), "resources") {
			if only != nil {
				return nil
			}
			only = rt
		}
	}
	return only
}

func (r *Router) lookup(uri string) *route {
	r.mu.Lock()
	rt := r.uris[uri]
	r.mu.Unlock()
	if rt != nil {
		return rt
	}
	for _, rt := range r.routes {
		rt.mu.Lock()
		for _, t := range rt.templates {
			if t.match(uri) {
				rt.mu.Unlock()
				return rt
			}
		}
		rt.mu.Unlock()
	}
	return nil
}

func (r *Router) shouldRescan() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	if !r.stale && now.Sub(r.lastScan) < rescanInterval {
		return false
	}
	r.stale, r.lastScan = false, now
	return true
}

// markStale makes the next unknown URI refresh the listings at once.
func (r *Router) markStale() {
	r.mu.Lock()
	r.stale = true
	r.mu.Unlock()
}
