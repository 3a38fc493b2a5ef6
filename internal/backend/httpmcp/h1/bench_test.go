package h1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

const benchReply = `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"{\"x\":1}"}]}}`

// benchServer answers every POST with a small JSON-RPC result, as an MCP
// server answers tools/call: with net/http's server ("httptest"), or with
// a canned reply from a loop that allocates nothing per request ("raw"),
// so that allocs/op are the client's own.
func benchServer(b *testing.B, kind string) string {
	if kind == "httptest" {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Mcp-Session-Id", r.Header.Get("Mcp-Session-Id"))
			w.Write([]byte(benchReply))
		}))
		b.Cleanup(srv.Close)
		return srv.URL
	}
	reply := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: session-0123456789\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: " + strconv.Itoa(len(benchReply)) + "\r\n\r\n" + benchReply)
	return rawServer(b, func(c net.Conn, br *bufio.Reader) bool {
		n, ok := skipRequest(br)
		if !ok {
			return false
		}
		br.Discard(n)
		_, err := c.Write(reply)
		return err == nil
	})
}

// skipRequest reads a request's header and returns its Content-Length.
func skipRequest(br *bufio.Reader) (int, bool) {
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false
		}
		if len(line) <= 2 {
			return n, true
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
}

var benchBody = []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}`)

// BenchmarkPost compares one POST round trip (request out, JSON reply read
// in full) through net/http, built the way httpmcp built it before the
// lean client, with the lean client.
func BenchmarkPost(b *testing.B) {
	for _, server := range []string{"raw", "httptest"} {
		b.Run(server, func(b *testing.B) { benchmarkPost(b, benchServer(b, server)) })
	}
}

func benchmarkPost(b *testing.B, url string) {
	operator := http.Header{"Authorization": {"Bearer backend-token"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	b.Run("net-http", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
		}}
		b.ReportAllocs()
		for b.Loop() {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(benchBody))
			if err != nil {
				b.Fatal(err)
			}
			for k, v := range operator {
				req.Header[k] = append([]string(nil), v...)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", "session-0123456789")
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20+1))
			if err != nil || len(body) == 0 || resp.Header.Get("Mcp-Session-Id") == "" {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	})
	for _, probe := range []struct {
		name  string
		after time.Duration
	}{{"h1", 0}, {"h1-no-probe", -1}} {
		b.Run(probe.name, func(b *testing.B) {
			c, err := New(Config{URL: url, Header: operator, ProbeAfter: probe.after})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := &Request{SessionID: "session-0123456789", ProtocolVersion: "2025-11-25", Body: benchBody}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Post(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				body, err := resp.ReadBody(64 << 20)
				if err != nil || len(body) == 0 || resp.SessionID == "" {
					b.Fatal(err)
				}
				resp.Close()
			}
		})
	}
}
