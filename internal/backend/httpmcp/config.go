package httpmcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/backend/httpmcp/h1"
)

// Config describes an HTTP MCP server.
type Config struct {
	Name string // display name; the backend=<name> log attribute
	URL  string // the MCP endpoint (Streamable HTTP) or the SSE URL (legacy)
	// Headers go on every request to the server: the operator's own
	// credentials for it, for example. They are the only headers paygate
	// adds besides the protocol's; a client's credentials never reach this
	// package.
	Headers http.Header
	// Client sends the requests. nil: a client of its own with a pooled
	// transport (never http.DefaultClient), and, for a plain http:// URL
	// reached without a proxy, the lean HTTP/1.1 client (package h1) for
	// the Streamable HTTP POSTs. Either way redirects to another origin are
	// refused.
	Client *http.Client
	Logger *slog.Logger

	ClientName, ClientVersion string // clientInfo sent in initialize

	InitTimeout     time.Duration // initialize round trip; 30 s
	BackoffMin      time.Duration // first reconnect delay; 100 ms
	BackoffMax      time.Duration // reconnect delay cap; 30 s
	MaxMessageBytes int           // largest message or SSE event accepted; 64 MiB
	// CancelDrain is how long the response stream of a cancelled call is
	// still read, so the server's last messages about it (withdrawing its
	// own requests) arrive; 2 s.
	CancelDrain time.Duration
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = 30 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 20
	}
	if c.CancelDrain <= 0 {
		c.CancelDrain = 2 * time.Second
	}
	c.Client = guardRedirects(c.Client, c.Logger)
}

// newClient returns a client tuned for many concurrent calls to one host.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   512, // every concurrent call is a request of its own
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// No ResponseHeaderTimeout: a server may hold a POST's headers until
		// a slow tool answers. Calls are bounded by their context.
	}}
}

// leanClient returns the lean HTTP/1.1 client for the per-call POSTs, or
// nil when net/http must send them: an https URL (TLS, HTTP/2), a proxy
// from the environment, credentials in the URL, or header fields net/http
// would refuse (it then fails each request with a clear error, as before).
// proxy is http.ProxyFromEnvironment outside tests.
func leanClient(cfg Config, log *slog.Logger, proxy func(*http.Request) (*url.URL, error)) *h1.Client {
	u, err := url.Parse(cfg.URL)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return nil
	}
	if p, err := proxy(&http.Request{URL: u}); err != nil || p != nil {
		return nil
	}
	c, err := h1.New(h1.Config{URL: cfg.URL, Header: cfg.Headers})
	if err != nil {
		log.Debug("POSTs go through net/http", "reason", err)
		return nil
	}
	return c
}

// guardRedirects returns a copy of c (or a new client) that does not
// follow redirects to another origin: the operator's headers are meant for
// the configured server only, and a backend must not be able to point
// paygate at an arbitrary host.
func guardRedirects(c *http.Client, log *slog.Logger) *http.Client {
	if c == nil {
		c = newClient()
	} else {
		cp := *c
		c = &cp
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(req.URL, via[0].URL) {
			log.Warn("refusing redirect to another origin", "from", via[0].URL.Host, "to", req.URL.Host)
			return http.ErrUseLastResponse // the 3xx becomes the answer
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return c
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// StatusError is an HTTP status a server answered instead of MCP.
type StatusError struct {
	Method string // HTTP method
	Code   int
	Body   string // the start of the body
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("%s: HTTP %d", e.Method, e.Code)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Method, e.Code, e.Body)
}

// statusError reads the start of resp's body into a StatusError.
func statusError(resp *http.Response) *StatusError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return &StatusError{Method: resp.Request.Method, Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
}

// Header names of the Streamable HTTP transport.
const (
	hdrSession     = "Mcp-Session-Id"
	hdrVersion     = "Mcp-Protocol-Version"
	hdrLastEventID = "Last-Event-ID"
)

// newRequest builds a request carrying the configured headers.
func (b *Backend) newRequest(ctx context.Context, method, u string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body) // also lets a same-origin 307/308 resend it
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	for k, v := range b.cfg.Headers {
		req.Header[k] = append([]string(nil), v...)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// drain discards the rest of a body so the connection can be reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func mediaType(resp *http.Response) string {
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return strings.ToLower(strings.TrimSpace(ct))
}
