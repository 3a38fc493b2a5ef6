// Package admin is paygate's admin HTTP API: API key and credit management,
// usage and status reports, admin key management and the API-key holder's
// own /balance.
//
// routes.go holds the one route table. Each resource file (keys.go,
// lifecycle.go, keyconfig.go, credits.go, bulk.go, export.go, usage.go,
// limits.go, adminkeys.go) contributes a []Route; the table is the only
// source for the mux, for roles, for metrics labels and for the OpenAPI
// document. Given a Runtime (runtime.go), the table also holds the public
// probe and discovery routes (public.go), maintenance and config reload
// (ops.go), /openapi.json and its viewer (docs.go) and the MCP endpoint, so
// the app mounts nothing else. Handlers return errors; one adapter authenticates, limits the
// body, renders errors and observes every request.
//
// Secrets are shown exactly once: in the response that creates them (key
// creation, rotation, cloning, bulk create, admin key creation). Listings,
// exports, audit events and logs carry masks and hashes only.
package admin

import (
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/store"
)

// DefaultMaxBody is the largest request body accepted when Options.MaxBody
// is zero.
const DefaultMaxBody int64 = 1 << 20

// Options configure New. Store is required; everything else has a default.
type Options struct {
	Store   store.Store
	Policy  func() *policy.Snapshot // current policy; nil: paygate-mcp defaults
	Limiter ratelimit.Limiter       // for rate-limit-status; nil: that route answers 503
	Logger  *slog.Logger            // nil: discard
	Now     func() time.Time        // nil: time.Now
	Rand    io.Reader               // randomness for secrets and ids; nil: crypto/rand
	MaxBody int64                   // request body limit; 0: DefaultMaxBody

	// OnKeyChanged is called with a key id after the key's configuration
	// changed (created, revoked, rotated, ACL, ...), for cache invalidation.
	// May be nil.
	OnKeyChanged func(id string)
	// Observe is called once per request after the response is written,
	// for metrics. May be nil.
	Observe func(Observation)
	// Runtime connects the public, operations and MCP routes to the
	// running gateway (runtime.go). Nil: only the admin routes are served.
	Runtime *Runtime
	// Audit records the API's audit events and serves /admin/events
	// (audit.go). Nil: events go to Store only and the stream answers 503.
	Audit Auditor
	// Circuits are the backends' circuit breakers (circuit.go). Nil: none.
	Circuits Circuits
	// Calls are the concurrency caps, response cache and tool aliases
	// (calls.go).
	Calls CallControls
}

// Observation describes one finished admin request.
type Observation struct {
	Method   string
	Pattern  string // the route's pattern, "" when no route matched
	Status   int
	Duration time.Duration
	Actor    string // admin key mask or API key mask; "" when unauthenticated
}

// API serves the admin routes.
type API struct {
	st       store.Store
	policy   func() *policy.Snapshot
	limiter  ratelimit.Limiter
	log      *slog.Logger
	now      func() time.Time
	rand     io.Reader
	maxBody  int64
	changed  func(id string)
	observe  func(Observation)
	routes   []Route
	adminMu  sync.Mutex // serializes admin key revocations (last super_admin guard)
	fallback *policy.Snapshot
	rt       *Runtime     // nil: no runtime routes
	ops      runtimeState // maintenance bookkeeping and cached documents (runtime.go)
	trail    Auditor      // nil: audit events go to st only (audit.go)
	breakers Circuits     // nil: no circuit breakers (circuit.go)
	calls    CallControls // concurrency, cache, aliases (calls.go)
	// keepalive is the /admin/events comment period; 0: 15s (events.go).
	keepalive time.Duration
}

// New returns an API over opts.Store. It has no side effects.
func New(opts Options) *API {
	a := &API{
		st:      opts.Store,
		policy:  opts.Policy,
		limiter: opts.Limiter,
		log:     opts.Logger,
		now:     opts.Now,
		rand:    lockReader(opts.Rand),
		maxBody: opts.MaxBody,
		changed: opts.OnKeyChanged,
		observe: opts.Observe,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBody
	}
	a.fallback = policy.MustNew(policy.Settings{})
	a.rt = opts.Runtime.withDefaults()
	a.trail = opts.Audit
	a.breakers = opts.Circuits
	a.calls = opts.Calls
	a.routes = a.buildRoutes()
	return a
}

// snapshot returns the current policy.
func (a *API) snapshot() *policy.Snapshot {
	if a.policy != nil {
		if p := a.policy(); p != nil {
			return p
		}
	}
	return a.fallback
}

// keyChanged runs the OnKeyChanged hook.
func (a *API) keyChanged(ids ...string) {
	if a.changed == nil {
		return
	}
	for _, id := range ids {
		a.changed(id)
	}
}

// Handler returns an http.Handler serving every route of the table, with
// JSON 404s for unknown paths and JSON 405s (with Allow) for known paths
// asked with the wrong method.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Mount(mux)
	mux.Handle("/", a.adapt(nil, nil))
	return mux
}

// lockedReader makes a caller's randomness source safe for concurrent
// requests; nil stays nil (crypto/rand).
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func lockReader(r io.Reader) io.Reader {
	if r == nil {
		return nil
	}
	return &lockedReader{r: r}
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}
