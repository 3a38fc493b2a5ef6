package httpmcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

func TestLeanClientEligibility(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		viaProxy bool
		new      func(Config) *Backend
		want     bool
	}{
		{name: "plain http", cfg: Config{URL: "http://127.0.0.1:9/mcp"}, new: New, want: true},
		{name: "auto", cfg: Config{URL: "http://127.0.0.1:9/mcp"}, new: NewAuto, want: true},
		{name: "https", cfg: Config{URL: "https://127.0.0.1:9/mcp"}, new: New},
		{name: "legacy sse", cfg: Config{URL: "http://127.0.0.1:9/sse"}, new: NewSSE},
		{name: "custom client", cfg: Config{URL: "http://127.0.0.1:9/mcp", Client: &http.Client{}}, new: New},
		{name: "credentials in the URL", cfg: Config{URL: "http://u:p@127.0.0.1:9/mcp"}, new: New},
		{name: "header net/http refuses", cfg: Config{URL: "http://127.0.0.1:9/mcp", Headers: http.Header{"X-A": {"a\r\nb"}}}, new: New},
		{name: "proxy from the environment", cfg: Config{URL: "http://backend.example:9/mcp"}, viaProxy: true, new: New},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.new(tc.cfg)
			if tc.viaProxy {
				// http.ProxyFromEnvironment reads the environment once per
				// process, so the proxy is given directly.
				proxy := func(*http.Request) (*url.URL, error) { return url.Parse("http://127.0.0.1:3128") }
				b.fast = leanClient(b.cfg, b.log, proxy)
			}
			if got := b.fast != nil; got != tc.want {
				t.Errorf("lean client = %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeStreamable is a minimal Streamable HTTP server whose tools/call
// reply is written by reply; everything else answers like the spec says.
func fakeStreamable(t *testing.T, reply func(w http.ResponseWriter, id json.RawMessage)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "no", http.StatusMethodNotAllowed)
			return
		}
		m, err := mcp.Decode(mustRead(r.Body))
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		case m.Method == mcp.MethodInitialize:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set(hdrSession, "fake-session")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"fake","version":"1"}}}`, m.ID)
		case !m.ID.IsValid():
			w.WriteHeader(http.StatusAccepted)
		default:
			reply(w, json.RawMessage(m.ID))
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

func mustRead(r io.Reader) []byte {
	b, _ := io.ReadAll(r)
	return b
}

// TestLeanClientReplies: replies in every framing reach the caller through
// the lean client; an oversized one fails the call, as with net/http.
func TestLeanClientReplies(t *testing.T) {
	big := strings.Repeat("x", 4<<10)
	tests := []struct {
		name  string
		reply func(w http.ResponseWriter, id json.RawMessage)
		want  string // in the result; "" for an error
	}{
		{"json with length", func(w http.ResponseWriter, id json.RawMessage) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"v":"small"}}`, id)
		}, "small"},
		{"chunked json", func(w http.ResponseWriter, id json.RawMessage) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.(http.Flusher).Flush()
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,`, id)
			w.(http.Flusher).Flush()
			io.WriteString(w, `"result":{"v":"chunked"}}`)
		}, "chunked"},
		{"sse", func(w http.ResponseWriter, id json.RawMessage) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n")
			w.(http.Flusher).Flush()
			fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"v\":\"streamed\"}}\n\n", id)
		}, "streamed"},
		{"oversized json", func(w http.ResponseWriter, id json.RawMessage) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"v":"%s"}}`, id, big)
		}, ""},
		{"oversized chunked json", func(w http.ResponseWriter, id json.RawMessage) {
			w.Header().Set("Content-Type", "application/json")
			w.(http.Flusher).Flush()
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"v":"%s"}}`, id, big)
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeStreamable(t, tc.reply)
			b := New(Config{Name: "fake", URL: srv.URL, MaxMessageBytes: 1 << 10, BackoffMin: time.Millisecond})
			closeOnCleanup(t, b)
			if b.fast == nil {
				t.Fatal("no lean client")
			}
			if err := b.Start(startCtx(t)); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				m, err := call(context.Background(), b, mcp.MethodToolsCall, `{"name":"t","arguments":{}}`)
				if tc.want == "" {
					if err == nil || !errors.Is(err, backend.ErrConnectionLost) {
						t.Fatalf("err = %v, want the size limit as a lost call", err)
					}
					continue
				}
				if err != nil || m.Error != nil || !bytes.Contains(m.Result, []byte(tc.want)) {
					t.Fatalf("call: %v %+v", err, m)
				}
			}
			if st := b.fast.Stats(); st.Dials == 0 {
				t.Errorf("lean client unused: %+v", st)
			}
		})
	}
}

// TestSameOriginRedirectFallsBack: the lean client does not follow
// redirects; a server that redirects its POSTs is served through net/http
// from then on.
func TestSameOriginRedirectFallsBack(t *testing.T) {
	srv := fakeStreamable(t, func(w http.ResponseWriter, id json.RawMessage) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"v":"moved"}}`, id)
	})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/mcp", http.StatusPermanentRedirect)
			return
		}
		srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	b := New(Config{Name: "redirecting", URL: front.URL + "/old", BackoffMin: time.Millisecond})
	closeOnCleanup(t, b)
	if err := b.Start(startCtx(t)); err != nil {
		t.Fatal(err)
	}
	m, err := call(context.Background(), b, mcp.MethodToolsCall, `{"name":"t","arguments":{}}`)
	if err != nil || m.Error != nil || !bytes.Contains(m.Result, []byte("moved")) {
		t.Fatalf("call: %v %+v", err, m)
	}
	if !b.slow.Load() {
		t.Error("the lean client is still in use after a redirect")
	}
}
