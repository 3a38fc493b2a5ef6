package echoserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func post(t *testing.T, url, accept, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHTTP(t *testing.T) {
	const (
		ping = `{"jsonrpc":"2.0","id":1,"method":"ping"}`
		pong = `{"jsonrpc":"2.0","id":1,"result":{}}`
		both = "application/json, text/event-stream"
	)
	plain := httptest.NewServer(&HTTPHandler{Server: &Server{}})
	defer plain.Close()
	sse := httptest.NewServer(&HTTPHandler{Server: &Server{}, SSE: true})
	defer sse.Close()

	t.Run("initialize hands out a session id", func(t *testing.T) {
		resp := post(t, plain.URL, both, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
			t.Fatalf("status %d, session id %q", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"))
		}
		if body := readBody(t, resp); !strings.Contains(body, `"protocolVersion":"2025-06-18"`) {
			t.Fatalf("body %s", body)
		}
	})
	t.Run("any session id is accepted", func(t *testing.T) {
		resp := post(t, plain.URL, both, ping, "Mcp-Session-Id", "made-up", "Mcp-Protocol-Version", "2025-11-25")
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != pong {
			t.Fatalf("status %d body %s", resp.StatusCode, body)
		}
	})
	for _, tc := range []struct {
		name   string
		url    string
		accept string
		sse    bool
	}{
		{"accept both: JSON", plain.URL, both, false},
		{"accept json: JSON", plain.URL, "application/json", false},
		{"no accept: JSON", plain.URL, "", false},
		{"accept only SSE: SSE", plain.URL, "text/event-stream", true},
		{"--sse, accept both: SSE", sse.URL, both, true},
		{"--sse, accept json: JSON", sse.URL, "application/json", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, tc.url, tc.accept, ping)
			body := readBody(t, resp)
			ct := resp.Header.Get("Content-Type")
			want := pong
			wantCT := "application/json"
			if tc.sse {
				want, wantCT = "event: message\ndata: "+pong+"\n\n", "text/event-stream"
			}
			if resp.StatusCode != http.StatusOK || ct != wantCT || body != want {
				t.Fatalf("status %d, content type %q, body %q; want %q, %q", resp.StatusCode, ct, body, wantCT, want)
			}
		})
	}
	t.Run("notification: 202", func(t *testing.T) {
		resp := post(t, plain.URL, both, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		if body := readBody(t, resp); resp.StatusCode != http.StatusAccepted || body != "" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	})
	t.Run("client response: 202", func(t *testing.T) {
		resp := post(t, sse.URL, both, `{"jsonrpc":"2.0","id":"s1","result":{}}`)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	for _, m := range []struct {
		method string
		status int
	}{{http.MethodGet, http.StatusMethodNotAllowed}, {http.MethodPut, http.StatusMethodNotAllowed}, {http.MethodDelete, http.StatusOK}} {
		t.Run(m.method, func(t *testing.T) {
			req, _ := http.NewRequest(m.method, plain.URL, nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != m.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, m.status)
			}
			if m.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

// callEcho runs a real MCP client session: initialize, tools/list and a
// tools/call whose text must be the arguments.
func callEcho(t *testing.T, ctx context.Context, cs *mcp.ClientSession) {
	t.Helper()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "echo" {
		t.Fatalf("tools: %+v", tools.Tools)
	}
	if err := cs.Ping(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		args := map[string]any{"nonce": fmt.Sprintf("n-%d", i), "text": "héllo \"world\"\n"}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: args})
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError || len(res.Content) != 1 {
			t.Fatalf("result: %+v", res)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &got); err != nil {
			t.Fatal(err)
		}
		if got["nonce"] != args["nonce"] || got["text"] != args["text"] {
			t.Fatalf("echo of %v came back as %v", args, got)
		}
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "nope"}); err == nil {
		t.Error("calling an unknown tool succeeded")
	}
}

func TestSDKClientOverHTTP(t *testing.T) {
	for _, sse := range []bool{false, true} {
		t.Run(fmt.Sprintf("sse=%v", sse), func(t *testing.T) {
			srv := httptest.NewServer(&HTTPHandler{Server: &Server{}, SSE: sse})
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if cs.ID() == "" {
				t.Error("no session id")
			}
			callEcho(t, ctx, cs)
		})
	}
}

func TestSDKClientOverStdio(t *testing.T) {
	clientToServerR, clientToServerW := io.Pipe()
	serverToClientR, serverToClientW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		err := (&Server{}).ServeStdio(clientToServerR, serverToClientW)
		serverToClientW.Close()
		served <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: serverToClientR, Writer: clientToServerW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	callEcho(t, ctx, cs)
	cs.Close()
	clientToServerW.Close()
	if err := <-served; err != nil {
		t.Fatalf("ServeStdio: %v", err)
	}
}

// With Delay, stdio requests are answered concurrently; every reply comes
// once, and long lines are read whole.
func TestStdioConcurrentAndLongLines(t *testing.T) {
	const n = 20
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"i":%d}}}`+"\n", i, i)
		in.WriteString(`{"jsonrpc":"2.0","method":"notifications/progress"}` + "\n\n")
	}
	long := strings.Repeat("y", 300_000)                                                                                          // longer than the 64 KiB read buffer
	fmt.Fprintf(&in, `{"jsonrpc":"2.0","id":"long","method":"tools/call","params":{"name":"echo","arguments":{"s":"%s"}}}`, long) // no final newline

	pr, pw := io.Pipe()
	s := &Server{Delay: 50 * time.Millisecond}
	start := time.Now()
	go func() { pw.CloseWithError(s.ServeStdio(strings.NewReader(in.String()), pw)) }()
	seen := map[string]int{}
	sc := bufio.NewScanner(pr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			ID     json.RawMessage
			Result struct{ Content []struct{ Text string } }
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("reply line is not JSON: %v", err)
		}
		seen[string(r.ID)]++
		if string(r.ID) == `"long"` && !strings.Contains(r.Result.Content[0].Text, long) {
			t.Error("long arguments not echoed whole")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n+1 {
		t.Fatalf("replies for %d ids, want %d: %v", len(seen), n+1, seen)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("id %s answered %d times", id, c)
		}
	}
	if d := time.Since(start); d > n*50*time.Millisecond/2 {
		t.Errorf("%d delayed calls took %v: not concurrent", n, d)
	}
}
