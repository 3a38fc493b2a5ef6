// Package router puts several MCP servers behind one backend.Backend
// (paygate-mcp's multi-server mode). Each server has a prefix; its tools and
// prompts are exposed as prefix + separator + name ("fs:read_file"), so the
// gateway prices, filters and rate-limits the prefixed names without
// knowing there is more than one server.
//
// Listings (tools, prompts, resources, resource templates) are merged into
// one page: the router follows every backend's own cursors and answers
// without a nextCursor. A backend that cannot answer keeps its last known
// listing, so clients do not see tools come and go while a server
// restarts; calls to it fail fast instead (backend unavailable, not
// billed). See README.md.
package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// Route is one backend and the prefix of its names.
type Route struct {
	Prefix  string
	Backend backend.Backend // named Prefix, so statuses and errors name it
}

// Config configures a Router.
type Config struct {
	// Name and Version are the router's serverInfo.
	Name, Version string
	// Separator joins a prefix and a name; ":" when empty.
	Separator string
	Routes    []Route
	// ListTimeout bounds one backend's part of a merged listing; a backend
	// slower than that is answered from its last known listing. 10 s when 0.
	ListTimeout time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
}

// Router is a backend.Backend over several named backends.
type Router struct {
	cfg      Config
	log      *slog.Logger
	routes   []*route
	byPrefix map[string]*route

	mu       sync.Mutex
	listener backend.Listener
	uris     map[string]*route // resource URI → the backend that listed it
	stale    bool              // a resources list changed: refresh on the next miss
	lastScan time.Time         // last refresh of the resource listings on a miss
}

// route is one backend of the router.
type route struct {
	idx    int
	prefix string // with the separator: "fs:"
	b      backend.Backend

	mu        sync.Mutex
	lists     map[string][]json.RawMessage // method → last good listing, names prefixed
	templates []*uriTemplate
}

var (
	_ backend.Backend       = (*Router)(nil)
	_ backend.PeerForgetter = (*Router)(nil)
	_ backend.Admitter      = (*Router)(nil)
	_ backend.StatusLister  = (*Router)(nil)
)

// New returns a Router over cfg.Routes. It becomes each backend's listener.
func New(cfg Config) (*Router, error) {
	if cfg.Separator == "" {
		cfg.Separator = ":"
	}
	if cfg.ListTimeout <= 0 {
		cfg.ListTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Routes) == 0 {
		return nil, errors.New("router: no backends")
	}
	r := &Router{cfg: cfg, log: cfg.Logger, byPrefix: map[string]*route{}, uris: map[string]*route{}}
	for i, rc := range cfg.Routes {
		switch {
		case rc.Prefix == "" || strings.Contains(rc.Prefix, cfg.Separator):
			return nil, fmt.Errorf("router: prefix %q is empty or contains the separator %q", rc.Prefix, cfg.Separator)
		case r.byPrefix[rc.Prefix] != nil:
			return nil, fmt.Errorf("router: prefix %q is used twice", rc.Prefix)
		}
		rt := &route{idx: i, prefix: rc.Prefix + cfg.Separator, b: rc.Backend, lists: map[string][]json.RawMessage{}}
		r.routes = append(r.routes, rt)
		r.byPrefix[rc.Prefix] = rt
		rc.Backend.SetListener(listener{r: r, rt: rt})
	}
	return r, nil
}

// Name implements backend.Backend.
func (r *Router) Name() string { return r.cfg.Name }

// SetListener implements backend.Backend.
func (r *Router) SetListener(l backend.Listener) {
	r.mu.Lock()
	r.listener = l
	r.mu.Unlock()
}

func (r *Router) upstream() backend.Listener {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listener
}

// Start implements backend.Backend: it starts every backend and returns
// once all are ready, or with the errors of those that were not when ctx
// ended. Those keep trying in the background; the others serve meanwhile.
func (r *Router) Start(ctx context.Context) error {
	errs := make([]error, len(r.routes))
	var wg sync.WaitGroup
	for i, rt := range r.routes {
		wg.Go(func() { errs[i] = rt.b.Start(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close implements backend.Backend: every backend is closed, in parallel.
func (r *Router) Close(ctx context.Context) error {
	errs := make([]error, len(r.routes))
	var wg sync.WaitGroup
	for i, rt := range r.routes {
		wg.Go(func() { errs[i] = rt.b.Close(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Statuses implements backend.StatusLister.
func (r *Router) Statuses() []backend.Status {
	out := make([]backend.Status, len(r.routes))
	for i, rt := range r.routes {
		out[i] = rt.b.Status()
	}
	return out
}

// Status implements backend.Backend with a summary: ready while any
// backend is ready (the others are listed by Statuses).
func (r *Router) Status() backend.Status {
	st := backend.Status{Name: r.cfg.Name, Transport: "multi", State: backend.StateDown}
	rank := map[backend.State]int{backend.StateClosed: 0, backend.StateDown: 1, backend.StateRestarting: 2, backend.StateStarting: 3, backend.StateReady: 4}
	var bad []string
	for _, s := range r.Statuses() {
		if rank[s.State] > rank[st.State] || st.Since.IsZero() {
			st.State = s.State
		}
		if s.Since.After(st.Since) {
			st.Since = s.Since
		}
		st.Restarts += s.Restarts
		st.InFlight += s.InFlight
		st.CrashLoop = st.CrashLoop || s.CrashLoop
		if s.State != backend.StateReady {
			bad = append(bad, fmt.Sprintf("%s %s", s.Name, s.State))
		}
	}
	st.LastError = strings.Join(bad, ", ")
	return st
}

// ForgetPeer implements backend.PeerForgetter.
func (r *Router) ForgetPeer(p backend.Peer) {
	for _, rt := range r.routes {
		if f, ok := rt.b.(backend.PeerForgetter); ok {
			f.ForgetPeer(p)
		}
	}
}

// Admit implements backend.Admitter: a tool with no known prefix is refused
// before it is charged, and so is a tool whose backend would refuse it.
func (r *Router) Admit(method, tool string) error {
	if method != mcp.MethodToolsCall {
		return nil
	}
	rt, _, err := r.routeName(tool)
	if err != nil {
		return err
	}
	if a, ok := rt.b.(backend.Admitter); ok {
		if err := a.Admit(method, tool[len(rt.prefix):]); err != nil {
			return &backend.CallError{Status: rt.b.Status(), Err: err}
		}
	}
	return nil
}

// routeName finds the backend of a prefixed name and returns the name
// without the prefix.
func (r *Router) routeName(full string) (*route, string, error) {
	prefix, name, ok := split(full, r.cfg.Separator)
	rt := r.byPrefix[prefix]
	if !ok || rt == nil {
		return nil, "", fmt.Errorf("%w: %q (tools are named prefix%sname; prefixes: %s)", backend.ErrUnknownTool, full, r.cfg.Separator, strings.Join(r.prefixes(), ", "))
	}
	return rt, name, nil
}

func (r *Router) prefixes() []string {
	out := make([]string, len(r.routes))
	for i, rt := range r.routes {
		out[i] = strings.TrimSuffix(rt.prefix, r.cfg.Separator)
	}
	return out
}

// Call implements backend.Backend.
func (r *Router) Call(ctx context.Context, req *backend.Request) (*mcp.Message, error) {
	switch req.Method {
	case mcp.MethodToolsList:
		return r.list(ctx, req, toolsKind)
	case mcp.MethodPromptsList:
		return r.list(ctx, req, promptsKind)
	case mcp.MethodResourcesList:
		return r.list(ctx, req, resourcesKind)
	case mcp.MethodResourcesTemplates:
		return r.list(ctx, req, templatesKind)
	case mcp.MethodToolsCall, mcp.MethodPromptsGet:
		return r.byName(ctx, req)
	case mcp.MethodResourcesRead, mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsubscribe:
		return r.byURI(ctx, req)
	case mcp.MethodCompletionComplete:
		return r.complete(ctx, req)
	case mcp.MethodLoggingSetLevel:
		return r.broadcast(ctx, req)
	case mcp.MethodPing:
		return &mcp.Message{ID: req.ID, Result: json.RawMessage(`{}`)}, nil
	}
	if len(r.routes) == 1 {
		return r.forward(ctx, r.routes[0], req, req.Params)
	}
	return rpcError(req.ID, mcp.CodeMethodNotFound, fmt.Sprintf("Method not found: %s is not available in multi-server mode", req.Method)), nil
}

// forward sends req to one backend with params, naming the backend in
// any failure.
func (r *Router) forward(ctx context.Context, rt *route, req *backend.Request, params json.RawMessage) (*mcp.Message, error) {
	out := &backend.Request{ID: req.ID, Method: req.Method, Params: params, Peer: wrapPeer(req.Peer, rt.idx)}
	resp, err := rt.b.Call(ctx, out)
	if err != nil {
		return nil, &backend.CallError{Status: rt.b.Status(), Err: err}
	}
	return resp, nil
}

// byName routes tools/call and prompts/get by their prefixed name.
func (r *Router) byName(ctx context.Context, req *backend.Request) (*mcp.Message, error) {
	full, s, e, ok := stringMember(req.Params, "name")
	if !ok {
		return rpcError(req.ID, mcp.CodeInvalidParams, "params.name is required"), nil
	}
	rt, name, err := r.routeName(full)
	if err != nil {
		what := "Unknown tool"
		if req.Method == mcp.MethodPromptsGet {
			what = "Unknown prompt"
		}
		return rpcError(req.ID, mcp.CodeInvalidParams, fmt.Sprintf("%s: %s", what, strings.TrimPrefix(err.Error(), backend.ErrUnknownTool.Error()+": "))), nil
	}
	return r.forward(ctx, rt, req, setString(req.Params, s, e, name))
}

// byURI routes resources/read, subscribe and unsubscribe.
func (r *Router) byURI(ctx context.Context, req *backend.Request) (*mcp.Message, error) {
	uri, _, _, ok := stringMember(req.Params, "uri")
	if !ok {
		return rpcError(req.ID, mcp.CodeInvalidParams, "params.uri is required"), nil
	}
	rt := r.owner(ctx, req.Peer, uri)
	if rt == nil {
		return rpcError(req.ID, mcp.CodeInvalidParams, "Unknown resource: "+uri), nil
	}
	return r.forward(ctx, rt, req, req.Params)
}

// complete routes completion/complete by its reference: a prefixed prompt
// name, or a resource (template) URI.
func (r *Router) complete(ctx context.Context, req *backend.Request) (*mcp.Message, error) {
	rs, re, ok := mcp.MemberSpan(req.Params, "ref")
	if !ok {
		return rpcError(req.ID, mcp.CodeInvalidParams, "params.ref is required"), nil
	}
	ref := req.Params[rs:re]
	typ, _, _, _ := stringMember(ref, "type")
	switch typ {
	case "ref/prompt":
		full, s, e, ok := stringMember(ref, "name")
		if !ok {
			break
		}
		rt, name, err := r.routeName(full)
		if err != nil {
			return rpcError(req.ID, mcp.CodeInvalidParams, "Unknown prompt: "+full), nil
		}
		return r.forward(ctx, rt, req, mcp.Splice(req.Params, rs, re, setString(ref, s, e, name)))
	case "ref/resource":
		uri, _, _, ok := stringMember(ref, "uri")
		if !ok {
			break
		}
		if rt := r.owner(ctx, req.Peer, uri); rt != nil {
			return r.forward(ctx, rt, req, req.Params)
		}
		return rpcError(req.ID, mcp.CodeInvalidParams, "Unknown resource: "+uri), nil
	}
	return rpcError(req.ID, mcp.CodeInvalidParams, "params.ref must name a prompt or a resource"), nil
}

// broadcast sends req (logging/setLevel) to every backend that declared
// the capability it needs, answering {} when at least one accepted it.
func (r *Router) broadcast(ctx context.Context, req *backend.Request) (*mcp.Message, error) {
	var firstErr error
	var firstRPC *mcp.Message
	sent := 0
	for _, rt := range r.routes {
		if !hasCapability(rt.b.Initialize(), "logging") {
			continue
		}
		sent++
		resp, err := r.forward(ctx, rt, req, req.Params)
		switch {
		case err != nil:
			firstErr = cmpErr(firstErr, err)
		case resp.Error != nil:
			if firstRPC == nil {
				firstRPC = resp
			}
		default:
			return &mcp.Message{ID: req.ID, Result: json.RawMessage(`{}`)}, nil
		}
	}
	switch {
	case sent == 0:
		return &mcp.Message{ID: req.ID, Result: json.RawMessage(`{}`)}, nil
	case firstRPC != nil:
		return firstRPC, nil
	}
	return nil, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// Notify implements backend.Backend: client notifications (roots changed,
// progress of a server request) go to every backend; each ignores what is
// not its own.
func (r *Router) Notify(ctx context.Context, n *mcp.Message, from backend.Peer) error {
	var errs []error
	for _, rt := range r.routes {
		if err := rt.b.Notify(ctx, n, from); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rt.b.Name(), err))
		}
	}
	if len(errs) == len(r.routes) {
		return errors.Join(errs...)
	}
	return nil
}

// Reply implements backend.Backend: the id the client answers names the
// backend that asked (see wrapID).
func (r *Router) Reply(ctx context.Context, resp *mcp.Message, from backend.Peer) error {
	idx, orig, ok := unwrapID(resp.ID)
	if !ok || idx >= len(r.routes) {
		r.log.Debug("dropping reply to an unknown server request", "id", resp.ID.String())
		return nil
	}
	cp := *resp
	cp.ID = orig
	return r.routes[idx].b.Reply(ctx, &cp, from)
}

// Initialize implements backend.Backend: the union of the backends'
// capabilities under the router's own serverInfo; nil until one backend
// has completed its handshake.
func (r *Router) Initialize() *backend.InitializeResult {
	merged := map[string]map[string]json.RawMessage{}
	var version string
	var notes []string
	for _, rt := range r.routes {
		init := rt.b.Initialize()
		if init == nil {
			continue
		}
		if version == "" {
			version = init.ProtocolVersion
		}
		if init.Instructions != "" {
			notes = append(notes, fmt.Sprintf("[%s] %s", strings.TrimSuffix(rt.prefix, r.cfg.Separator), init.Instructions))
		}
		var caps map[string]json.RawMessage
		if json.Unmarshal(init.Capabilities, &caps) != nil {
			continue
		}
		for name, v := range caps {
			if name == "tasks" {
				// Task-augmented requests name no tool or prompt the router
				// could route by; they are not offered in multi-server mode.
				continue
			}
			m, seen := merged[name]
			if !seen {
				m = map[string]json.RawMessage{}
				merged[name] = m
			}
			var sub map[string]json.RawMessage
			_ = json.Unmarshal(v, &sub)
			for k, sv := range sub {
				// Flags such as listChanged and subscribe: true wins.
				if old, ok := m[k]; !ok || string(old) == "false" {
					m[k] = sv
				}
			}
		}
	}
	if version == "" {
		return nil
	}
	caps, _ := json.Marshal(merged)
	info, _ := json.Marshal(map[string]string{"name": r.cfg.Name, "version": orDefault(r.cfg.Version, "dev")})
	return &backend.InitializeResult{ProtocolVersion: version, Capabilities: caps, ServerInfo: info, Instructions: strings.Join(notes, "\n")}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// hasCapability reports whether a handshake declared the capability.
func hasCapability(init *backend.InitializeResult, name string) bool {
	if init == nil {
		return false
	}
	_, _, ok := mcp.MemberSpan(init.Capabilities, name)
	return ok
}

func rpcError(id mcp.ID, code int64, msg string) *mcp.Message {
	return &mcp.Message{ID: id, Error: &mcp.WireError{Code: code, Message: msg}}
}
