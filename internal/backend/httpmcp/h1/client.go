// Package h1 is a small HTTP/1.1 client for the hot path of a Streamable
// HTTP backend: every call is a POST of one JSON-RPC message to the same
// plain-http URL. It keeps a pool of persistent connections, writes each
// request in one write from a header block rendered once, and parses only
// the response headers MCP needs (Content-Type, Content-Length,
// Transfer-Encoding, Connection, Mcp-Session-Id), with no header maps.
//
// It does not do TLS, proxies, redirects, compression, Expect: 100-continue
// or HTTP/2: httpmcp keeps net/http for those and for everything that is not
// the per-call POST. The model is what fasthttp-style clients do, kept small.
//
// Errors say how far a request got: ErrNotSent means the server cannot have
// seen all of it, so sending it again cannot run it twice.
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	DefaultDialTimeout    = 10 * time.Second
	DefaultKeepAlive      = 30 * time.Second
	DefaultMaxIdle        = 512
	DefaultIdleTimeout    = 90 * time.Second
	DefaultMaxHeaderBytes = 64 << 10
)

// Config describes the endpoint and the pool.
type Config struct {
	// URL is the endpoint every request is POSTed to: http://host[:port]/path?query.
	URL string
	// Header is sent with every request after the fixed headers (Host,
	// User-Agent, Content-Type: application/json and Accept: application/json,
	// text/event-stream). Fields the client writes itself (Host,
	// Content-Length, Transfer-Encoding, Trailer, Content-Type, Accept,
	// Mcp-Session-Id, Mcp-Protocol-Version) are skipped; a User-Agent here
	// replaces the default one. Names and values are checked once, in New.
	Header map[string][]string

	DialTimeout time.Duration // connecting; 10 s
	KeepAlive   time.Duration // TCP keep-alive period; 30 s
	MaxIdle     int           // idle connections kept; 512
	IdleTimeout time.Duration // an idle connection older than this is closed; 90 s
	// ProbeAfter: a pooled connection idle for longer is checked for a
	// close from the server before it is reused (see Client.Post); 0 checks
	// every time, a negative value never.
	ProbeAfter     time.Duration
	MaxHeaderBytes int // status line and header fields of one response; 64 KiB
}

// Errors.
var (
	// ErrNotSent: the request did not reach the server in full (the
	// connection could not be opened, or the write failed), so the server
	// cannot have acted on it.
	ErrNotSent = errors.New("request not sent")
	// ErrBodyTooLarge: the body is larger than the limit given to ReadBody.
	ErrBodyTooLarge = errors.New("response exceeds the size limit")
	// ErrMalformed: the server's response is not valid HTTP/1.1.
	ErrMalformed = errors.New("malformed HTTP response")
	// ErrHeaderTooLarge: the response's header exceeds Config.MaxHeaderBytes.
	ErrHeaderTooLarge = errors.New("HTTP response header too large")
)

// Request is one POST.
type Request struct {
	SessionID       string // Mcp-Session-Id; omitted when ""
	ProtocolVersion string // Mcp-Protocol-Version; omitted when ""
	Body            []byte
}

// Client POSTs to one endpoint over a pool of persistent connections.
// It is safe for concurrent use.
type Client struct {
	cfg    Config
	addr   string // host:port to dial
	head   []byte // request line and fixed header fields
	dialer net.Dialer

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool

	dials, reuses, stale, retries atomic.Int64
}

// New checks cfg and renders the request header block.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(u.Scheme, "http") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, fmt.Errorf("h1: %q is not a plain http://host/path URL", cfg.URL)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = DefaultMaxIdle
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	host := strings.TrimSuffix(u.Host, ":") // "host:" means the default port
	port := u.Port()
	if port == "" {
		port = "80"
	}
	c := &Client{
		cfg:    cfg,
		addr:   net.JoinHostPort(u.Hostname(), port),
		dialer: net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: cfg.KeepAlive},
	}
	if c.head, err = renderHead(u.RequestURI(), host, cfg.Header); err != nil {
		return nil, err
	}
	return c, nil
}

// skipped are the fields the client writes itself (lower case).
var skipped = []string{"host", "content-length", "transfer-encoding", "trailer", "content-type", "accept",
	"mcp-session-id", "mcp-protocol-version", "user-agent"}

// renderHead writes the request line and the fields every request carries.
func renderHead(target, host string, header map[string][]string) ([]byte, error) {
	if !validValue(target) || strings.ContainsAny(target, " \t") || !validValue(host) {
		return nil, fmt.Errorf("h1: invalid request target or host")
	}
	ua := "Go-http-client/1.1" // what net/http sends, so servers see no change
	for k, v := range header {
		if strings.EqualFold(k, "User-Agent") && len(v) > 0 {
			ua = strings.Trim(v[0], " \t")
		}
	}
	if !validValue(ua) {
		return nil, fmt.Errorf("h1: invalid User-Agent value")
	}
	b := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n", target, host, ua)
	b = append(b, "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"...)
	names := make([]string, 0, len(header))
	for k := range header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !validName(k) {
			return nil, fmt.Errorf("h1: invalid header field name %q", k)
		}
		if slices.Contains(skipped, strings.ToLower(k)) {
			continue
		}
		for _, v := range header[k] {
			v = strings.Trim(v, " \t")
			if !validValue(v) {
				return nil, fmt.Errorf("h1: invalid value for header field %q", k)
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return b, nil
}

// Post sends req and returns the response once its header has arrived.
// The caller must Close the response; the body is read through it.
//
// ctx bounds the whole exchange, body included, until Close: when it ends,
// a blocked read or write fails at once and the connection is discarded.
//
// A pooled connection the server has closed is found before it is used
// (see alive) and replaced. If the server closed it in the instant after
// that check, so that writing the request on it fails, the request is sent
// once more on a new connection. A request written in full is never sent
// again: a server that closes the connection without answering may have
// acted on it (net/http does not resend such a POST either).
func (c *Client) Post(ctx context.Context, req *Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validValue(req.SessionID) || !validValue(req.ProtocolVersion) {
		return nil, fmt.Errorf("%w: invalid session id or protocol version", ErrNotSent)
	}
	cn, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	resp, st, err := cn.roundTrip(ctx, req)
	if err == nil || !cn.reused || st != stageWrite || ctx.Err() != nil {
		return resp, err
	}
	c.retries.Add(1)
	if cn, err = c.dial(ctx); err != nil {
		return nil, err
	}
	resp, _, err = cn.roundTrip(ctx, req)
	return resp, err
}

// Stats are a Client's counters.
type Stats struct {
	Dials   int64 // connections opened
	Reuses  int64 // requests sent on a pooled connection
	Stale   int64 // pooled connections found closed (or expired) and dropped
	Retries int64 // requests sent again because writing them on a pooled connection failed
	Idle    int   // connections in the pool now
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	idle := len(c.idle)
	c.mu.Unlock()
	return Stats{Dials: c.dials.Load(), Reuses: c.reuses.Load(), Stale: c.stale.Load(), Retries: c.retries.Load(), Idle: idle}
}

// CloseIdle closes the pooled connections; later requests open new ones.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, cn := range idle {
		cn.nc.Close()
	}
}

// Close closes the pooled connections and keeps none from now on.
// Requests in flight finish.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.CloseIdle()
}

// get returns a pooled connection, or a new one.
func (c *Client) get(ctx context.Context) (*conn, error) {
	now := time.Now()
	c.mu.Lock()
	for n := len(c.idle); n > 0; n = len(c.idle) {
		cn := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		idle := now.Sub(cn.idleSince)
		if idle < c.cfg.IdleTimeout && (c.cfg.ProbeAfter < 0 || idle < c.cfg.ProbeAfter || cn.alive()) {
			cn.reused = true
			c.reuses.Add(1)
			return cn, nil
		}
		c.stale.Add(1)
		cn.nc.Close()
		c.mu.Lock()
	}
	c.mu.Unlock()
	return c.dial(ctx)
}

// dial opens a new connection.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	nc, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c.dials.Add(1)
	cn := &conn{client: c, nc: nc, br: bufio.NewReaderSize(nc, 8<<10)}
	cn.abortFn = cn.abort
	cn.initProbe()
	return cn, nil
}

// put returns a connection whose last response was read in full.
func (c *Client) put(cn *conn) {
	if cn.br.Buffered() > 0 { // bytes nobody asked for: out of step with the server
		cn.nc.Close()
		return
	}
	if cap(cn.wbuf) > 256<<10 {
		cn.wbuf = nil
	}
	if cap(cn.scratch) > 1<<20 {
		cn.scratch = nil
	}
	cn.ctx = nil
	cn.idleSince = time.Now()
	var stale *conn
	c.mu.Lock()
	if c.closed || len(c.idle) >= c.cfg.MaxIdle {
		c.mu.Unlock()
		cn.nc.Close()
		return
	}
	c.idle = append(c.idle, cn)
	if oldest := c.idle[0]; cn.idleSince.Sub(oldest.idleSince) > c.cfg.IdleTimeout {
		// The pool is a stack: what sank to the bottom goes stale there.
		stale = oldest
		c.idle = slices.Delete(c.idle, 0, 1)
	}
	c.mu.Unlock()
	if stale != nil {
		stale.nc.Close()
	}
}

// Header syntax (RFC 9110): names are tokens; values may hold visible
// characters, space, tab and obs-text, never CR, LF, NUL or other controls.

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}
