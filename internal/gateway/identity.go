package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Credential returns the API key (or bearer token) a request presents:
// X-API-Key first, then "Authorization: Bearer". The value is a secret: it
// is hashed for lookup and never logged.
func Credential(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// ClientIPResolver finds the client address of a request, trusting
// X-Forwarded-For only when the connection comes from a trusted proxy.
type ClientIPResolver struct {
	Trusted []netip.Prefix
}

// ClientIP returns the client's address. With trusted proxies configured,
// X-Forwarded-For is walked right to left, skipping trusted hops, and the
// first untrusted address is the client; without them the header is
// ignored, because anyone can send it.
func (c *ClientIPResolver) ClientIP(r *http.Request) netip.Addr {
	peer := remoteAddr(r)
	if len(c.Trusted) == 0 || !c.trusted(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // a malformed hop: stop trusting the header
			}
			a = a.Unmap()
			if !c.trusted(a) {
				return a
			}
		}
	}
	return peer
}

func (c *ClientIPResolver) trusted(a netip.Addr) bool {
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

type requestIDKey struct{}

// WithRequestID stores the request id in ctx.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id stored by WithRequestID ("" if none).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns "req_" + 16 hex characters.
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// callPrefix makes call ids unique across restarts (the ledger refuses a
// reused one); a counter makes them unique within this process, without a
// crypto/rand read per call.
var (
	callPrefix = func() string {
		var b [8]byte
		_, _ = rand.Read(b[:])
		return "call_" + hex.EncodeToString(b[:]) + "_"
	}()
	callSeq atomic.Uint64
)

// newCallID returns a unique id for one gated call. The counter is
// fixed-width hex, so ids of one process sort in issue order and the
// ledger's call-id index grows at its end instead of at random pages.
func newCallID() string {
	var b [48]byte
	out := append(b[:0], callPrefix...)
	n := callSeq.Add(1)
	for shift := 60; shift >= 0; shift -= 4 {
		out = append(out, "0123456789abcdef"[(n>>uint(shift))&0xf])
	}
	return string(out)
}
