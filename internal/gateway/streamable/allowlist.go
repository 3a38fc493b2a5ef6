package streamable

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Allowlist says which Host and Origin header values the endpoint accepts.
// It is the DNS-rebinding protection the MCP spec requires: a web page on
// evil.example that rebinds its name to 127.0.0.1 still sends
// "Host: evil.example" and "Origin: http://evil.example", and is refused.
//
// Entries are matched case-insensitively. "*" matches anything. A Hosts
// entry is a host name or IP ("localhost", "127.0.0.1", "[::1]") and
// matches it on any port, or host:port, which matches only that port. An
// Origins entry is scheme://host, matching any port, or scheme://host:port.
// A request without an Origin header (any non-browser client) passes the
// Origin check.
type Allowlist struct {
	Hosts   []string
	Origins []string
}

// DefaultAllowlist returns the allowlist for a server bound to bindHost (a
// host or host:port; "" means all interfaces). Bound to a loopback address,
// only loopback names are accepted for Host and Origin: localhost,
// 127.0.0.1 and [::1], on any port, with http or https. Bound elsewhere,
// Host is not restricted and no Origin is accepted: browsers are refused
// until AllowedOrigins names them.
func DefaultAllowlist(bindHost string) Allowlist {
	if !isLoopbackHost(bindHost) {
		return Allowlist{Hosts: []string{"*"}, Origins: []string{}}
	}
	loop := []string{"localhost", "127.0.0.1", "[::1]"}
	a := Allowlist{Hosts: loop}
	for _, h := range loop {
		a.Origins = append(a.Origins, "http://"+h, "https://"+h)
	}
	return a
}

// check returns a reason when r's Host or Origin is not allowed.
func (a *Allowlist) check(r *http.Request) (reason string, ok bool) {
	if !a.allowHost(r.Host) {
		return "Host " + quote(r.Host) + " is not allowed", false
	}
	if o := r.Header.Get("Origin"); o != "" && !a.allowOrigin(o) {
		return "Origin " + quote(o) + " is not allowed", false
	}
	return "", true
}

func (a *Allowlist) allowHost(hostport string) bool {
	host, port := splitHostPort(hostport)
	for _, e := range a.Hosts {
		if e == "*" {
			return true
		}
		eh, ep := splitHostPort(e)
		if host != "" && eh == host && (ep == "" || ep == port) {
			return true
		}
	}
	return false
}

func (a *Allowlist) allowOrigin(origin string) bool {
	scheme, host, port, ok := splitOrigin(origin)
	for _, e := range a.Origins {
		switch {
		case e == "*":
			return true
		case strings.EqualFold(e, origin):
			return true // also covers the literal "null" origin when listed
		case !ok:
			continue
		}
		es, eh, ep, eok := splitOrigin(e)
		if eok && es == scheme && eh == host && (ep == "" || ep == port) {
			return true
		}
	}
	return false
}

// splitOrigin parses scheme://host[:port] into lower-case parts.
func splitOrigin(origin string) (scheme, host, port string, ok bool) {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil {
		return "", "", "", false
	}
	host, port = splitHostPort(u.Host)
	return strings.ToLower(u.Scheme), host, port, true
}

// splitHostPort splits a Host header value (or an allowlist entry) into a
// lower-case host, IPv6 literals keeping their brackets, and a port ("" when
// absent). Unlike net.SplitHostPort it accepts a missing port.
func splitHostPort(s string) (host, port string) {
	s = strings.ToLower(strings.TrimSpace(s))
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, ""
		}
		host, rest := s[:end+1], s[end+1:]
		return host, strings.TrimPrefix(rest, ":")
	}
	if strings.Count(s, ":") > 1 { // a bare IPv6 literal
		return "[" + s + "]", ""
	}
	host, port, found := strings.Cut(s, ":")
	if !found {
		return s, ""
	}
	return host, port
}

// isLoopbackHost reports whether hostport names a loopback interface.
func isLoopbackHost(hostport string) bool {
	host, _ := splitHostPort(hostport)
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// isLoopbackAddr reports whether a listener's local address is loopback.
func isLoopbackAddr(a net.Addr) bool {
	if a == nil {
		return false
	}
	return isLoopbackHost(a.String())
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == 0x7f {
			return '?'
		}
		return r
	}, s) + `"`
}
