// Package nullproxy is a reverse proxy that does nothing but forward: the
// standard library's httputil.ReverseProxy in front of one backend. The
// benchmark suite runs it as the "proxy" scenario to measure what one more
// HTTP hop costs on the machine, so that paygate's own cost can be told
// apart from the cost of being a proxy at all.
package nullproxy

import (
	"net/http"
	"net/http/httputil"
	"net/url"
)

// New returns a handler forwarding every request to target.
func New(target *url.URL) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		// Idle connections for every worker of the load, as paygate keeps.
		Transport:     &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true},
		FlushInterval: -1, // SSE replies are passed on as they come
	}
}
