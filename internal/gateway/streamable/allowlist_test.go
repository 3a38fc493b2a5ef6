package streamable

import (
	"net/http"
	"slices"
	"testing"

	"github.com/paygate/paygate/internal/mcp"
)

func TestDefaultAllowlist(t *testing.T) {
	for _, tc := range []struct {
		bind     string
		loopback bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.1", true},
		{"localhost", true},
		{"LOCALHOST:9", true},
		{"[::1]:9000", true},
		{"::1", true},
		{"", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"10.0.0.1", false},
		{"gw.example.com:443", false},
	} {
		t.Run(tc.bind, func(t *testing.T) {
			a := DefaultAllowlist(tc.bind)
			if got := !slices.Contains(a.Hosts, "*"); got != tc.loopback {
				t.Fatalf("hosts %v", a.Hosts)
			}
			if tc.loopback != a.allowOrigin("http://localhost:3000") {
				t.Fatalf("origins %v", a.Origins)
			}
		})
	}
}

func TestAllowlistMatching(t *testing.T) {
	loop := DefaultAllowlist("127.0.0.1")
	custom := Allowlist{Hosts: []string{"gw.example:8443", "Other.Example"}, Origins: []string{"https://app.example", "http://dev.example:3000", "null"}}
	for _, tc := range []struct {
		name  string
		a     Allowlist
		host  string
		ok    bool
		isOri bool
	}{
		{"localhost any port", loop, "localhost:1234", true, false},
		{"localhost no port", loop, "localhost", true, false},
		{"127.0.0.1", loop, "127.0.0.1:80", true, false},
		{"ipv6 loopback", loop, "[::1]:8080", true, false},
		{"case", loop, "LocalHost:1", true, false},
		{"evil", loop, "evil.example", false, false},
		{"evil with port", loop, "evil.example:80", false, false},
		{"loopback suffix trick", loop, "localhost.evil.example", false, false},
		{"other loopback ip", loop, "127.0.0.2", false, false},
		{"empty host", loop, "", false, false},
		{"custom exact port", custom, "gw.example:8443", true, false},
		{"custom wrong port", custom, "gw.example:80", false, false},
		{"custom any port", custom, "other.example:1", true, false},
		{"origin localhost", loop, "http://localhost:5173", true, true},
		{"origin https 127", loop, "https://127.0.0.1", true, true},
		{"origin ipv6", loop, "http://[::1]:3000", true, true},
		{"origin evil", loop, "http://evil.example", false, true},
		{"origin evil rebinding port", loop, "http://evil.example:8080", false, true},
		{"origin null refused", loop, "null", false, true},
		{"origin garbage", loop, "::::", false, true},
		{"origin custom any port", custom, "https://app.example:8443", true, true},
		{"origin custom scheme", custom, "http://app.example", false, true},
		{"origin custom port", custom, "http://dev.example:3000", true, true},
		{"origin custom wrong port", custom, "http://dev.example:3001", false, true},
		{"origin null listed", custom, "null", true, true},
		{"origin star", Allowlist{Origins: []string{"*"}}, "http://anything.example", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got bool
			if tc.isOri {
				got = tc.a.allowOrigin(tc.host)
			} else {
				got = tc.a.allowHost(tc.host)
			}
			if got != tc.ok {
				t.Fatalf("allowed = %v, want %v", got, tc.ok)
			}
		})
	}
}

// The DNS-rebinding checks the MCP conformance suite runs: on a loopback
// listener a foreign Host or Origin gets 403 (with a JSON-RPC error body)
// on every method, before anything else is looked at.
func TestForbiddenHostAndOrigin(t *testing.T) {
	type req struct {
		name   string
		method string
		h      http.Header
		status int
	}
	cases := func(sid string) []req {
		return []req{
			{"evil Host POST", http.MethodPost, hdr("Host", "evil.example"), 403},
			{"evil Host GET", http.MethodGet, sessionHeader(sid, "Host", "evil.example:80", "Accept", acceptSSE), 403},
			{"evil Host DELETE", http.MethodDelete, sessionHeader(sid, "Host", "evil.example"), 403},
			{"evil Origin POST", http.MethodPost, hdr("Origin", "http://evil.example"), 403},
			{"evil Origin GET", http.MethodGet, sessionHeader(sid, "Origin", "http://evil.example", "Accept", acceptSSE), 403},
			{"evil Origin before 415", http.MethodPost, hdr("Origin", "http://evil.example", "Content-Type", "text/plain"), 403},
			{"localhost Host", http.MethodPost, hdr("Host", "localhost:9999"), 200},
			{"localhost Origin", http.MethodPost, hdr("Origin", "http://localhost:5173"), 200},
			{"no Origin", http.MethodPost, nil, 200},
		}
	}
	t.Run("loopback", func(t *testing.T) {
		e := newEnv(t, Options{})
		for _, tc := range cases(e.initialize(mcp.Version20251125)) {
			t.Run(tc.name, func(t *testing.T) {
				resp := e.do(nil, tc.method, tc.h, echo)
				defer resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if tc.status == 403 {
					var b [512]byte
					n, _ := resp.Body.Read(b[:])
					if _, we := wireError(t, string(b[:n])); we.Code != mcp.CodeInvalidRequest {
						t.Fatalf("error %+v", we)
					}
				}
			})
		}
	})
	t.Run("bound elsewhere", func(t *testing.T) {
		e := newEnv(t, Options{BindHost: "0.0.0.0:8080", AllowedOrigins: []string{"https://app.example"}})
		for _, tc := range []req{
			{"any Host", http.MethodPost, hdr("Host", "gw.example.com"), 200},
			{"evil Origin", http.MethodPost, hdr("Origin", "http://evil.example"), 403},
			{"localhost Origin not listed", http.MethodPost, hdr("Origin", "http://localhost"), 403},
			{"listed Origin", http.MethodPost, hdr("Origin", "https://app.example"), 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := e.do(nil, tc.method, tc.h, echo)
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
			})
		}
	})
	t.Run("allowed hosts override", func(t *testing.T) {
		e := newEnv(t, Options{AllowedHosts: []string{"gw.example"}})
		for host, want := range map[string]int{"gw.example:1": 200, "localhost": 403} {
			resp := e.do(nil, http.MethodPost, hdr("Host", host), echo)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("Host %s: status %d, want %d", host, resp.StatusCode, want)
			}
		}
	})
}
