// Package loadgen drives tools/call load against an MCP Streamable HTTP
// endpoint and verifies every reply. Each worker sends one request at a
// time with its own id sequence starting at 1 (so ids collide across
// workers on purpose: a gateway that multiplexes them onto one backend must
// remap them) and a nonce unique to the request in the arguments; a reply
// counts as OK only when it carries the request's id and the echo tool's
// text contains the request's nonce. Latencies of OK calls go into a
// Histogram per worker, merged at the end.
package loadgen

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Accept selects the Accept header the workers send.
type Accept string

const (
	AcceptJSON Accept = "json" // application/json
	AcceptSSE  Accept = "sse"  // text/event-stream
	AcceptBoth Accept = "both" // application/json, text/event-stream (what the spec asks clients to send)
)

func (a Accept) header() string {
	switch a {
	case AcceptJSON:
		return "application/json"
	case AcceptSSE:
		return "text/event-stream"
	}
	return "application/json, text/event-stream"
}

// Config describes one load run.
type Config struct {
	URL         string        // the MCP endpoint, e.g. http://127.0.0.1:8080/mcp
	Concurrency int           // workers, each with one request in flight
	Duration    time.Duration // measured time; 0 means until Requests are done
	Requests    int64         // measured requests in total; 0 means until Duration ends
	Warmup      time.Duration // load before measuring, not recorded
	Stateless   bool          // skip initialize and send no Mcp-Session-Id
	Accept      Accept
	Keys        []string // API keys sent as X-API-Key, spread over workers; empty sends none
	Tool        string   // the tool to call; "" means echo
	ArgsSize    int      // pad the arguments to about this many bytes
	// NoNonceCheck skips checking that the reply echoes the nonce (for a
	// tool other than echo). Ids are still checked.
	NoNonceCheck bool
	Timeout      time.Duration // per request; 0 means 30s
	// Transport overrides the HTTP transport; nil builds NewTransport(Concurrency).
	Transport http.RoundTripper
	// OnMeasureStart, when set, is called on its own goroutine when the
	// measured window begins (after sessions are open and warmup is over),
	// so a caller can sample the server's resource use over the same window.
	// When it was called, Run returns only after it has returned.
	OnMeasureStart func()
}

// Validate checks c without side effects.
func (c *Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("no URL")
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency %d: want at least 1", c.Concurrency)
	case c.Duration <= 0 && c.Requests <= 0:
		return errors.New("give a duration or a number of requests")
	case c.Duration < 0 || c.Requests < 0 || c.Warmup < 0 || c.Timeout < 0 || c.ArgsSize < 0:
		return errors.New("durations and counts must not be negative")
	}
	switch c.Accept {
	case "", AcceptJSON, AcceptSSE, AcceptBoth:
	default:
		return fmt.Errorf("accept %q: want json, sse or both", c.Accept)
	}
	return nil
}

// NewTransport returns an HTTP/1.1 transport that keeps a connection per
// worker alive between requests.
func NewTransport(concurrency int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * concurrency,
		MaxIdleConnsPerHost: 2 * concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// Run runs the load described by cfg and returns what it measured. It
// fails only when the run cannot start (bad config, a session that cannot
// be initialized); errors during the run are counted in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadgen config: %w", err)
	}
	if cfg.Tool == "" {
		cfg.Tool = "echo"
	}
	if cfg.Accept == "" {
		cfg.Accept = AcceptBoth
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	rt := cfg.Transport
	if rt == nil {
		t := NewTransport(cfg.Concurrency)
		defer t.CloseIdleConnections()
		rt = t
	}
	client := &http.Client{Transport: rt, Timeout: cfg.Timeout}
	runID := newRunID()

	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		key := ""
		if len(cfg.Keys) > 0 {
			key = cfg.Keys[i%len(cfg.Keys)]
		}
		workers[i] = newWorker(i, &cfg, client, key, runID)
	}
	if !cfg.Stateless {
		if err := initAll(ctx, workers); err != nil {
			return nil, err
		}
		defer closeAll(workers)
	}

	var budget atomic.Int64
	budget.Store(cfg.Requests)
	start := time.Now()
	p := plan{
		measureStart: start.Add(cfg.Warmup),
		budget:       &budget,
		limited:      cfg.Requests > 0,
	}
	if cfg.Duration > 0 {
		p.measureEnd = p.measureStart.Add(cfg.Duration)
	}
	if cfg.OnMeasureStart != nil {
		fired := make(chan struct{})
		t := time.AfterFunc(cfg.Warmup, func() {
			defer close(fired)
			cfg.OnMeasureStart()
		})
		defer func() {
			if !t.Stop() {
				<-fired // it ran: let it finish before Run returns
			}
		}()
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.loop(ctx, &p) })
	}
	wg.Wait()
	return collect(&cfg, workers, p.measureStart), nil
}

// plan is the time window the workers share.
type plan struct {
	measureStart time.Time
	measureEnd   time.Time // zero: no time limit
	budget       *atomic.Int64
	limited      bool
}

func initAll(ctx context.Context, workers []*worker) error {
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { errs[i] = w.initialize(ctx) })
	}
	wg.Wait()
	var first error
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed > 0 {
		closeAll(workers) // end the sessions that did open
		return fmt.Errorf("initialize sessions: %d of %d failed, the first: %w", failed, len(workers), first)
	}
	return nil
}

func closeAll(workers []*worker) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.closeSession(ctx) })
	}
	wg.Wait()
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}
