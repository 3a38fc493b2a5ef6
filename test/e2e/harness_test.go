// Package e2e drives the real paygate binary against real MCP servers and
// real MCP clients: the go-sdk client, the npm reference servers, the go-sdk
// conformance server and the official conformance suite.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/paygate/paygate/internal/testenv"
)

const testAdminKey = "ak_e2e_0123456789abcdef0123456789abcdef0123456789ab"

// gateway is one running paygate process.
type gateway struct {
	t         *testing.T
	bin       string
	args      []string
	URL       string // http://127.0.0.1:PORT
	Port      int
	StateFile string
	cmd       *exec.Cmd
	out       *syncBuffer
	done      chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startGateway runs `paygate wrap` with args plus a free port, the test
// admin key and a state file in a temp dir (unless args set them), and
// waits until /ready answers 200.
func startGateway(t *testing.T, args ...string) *gateway {
	t.Helper()
	g := &gateway{t: t, bin: testenv.Paygate(t)}
	g.Port = testenv.FreePort(t)
	g.URL = "http://127.0.0.1:" + strconv.Itoa(g.Port)
	full := append([]string{"wrap", "--port", strconv.Itoa(g.Port)}, args...)
	if !hasFlag(args, "--admin-key") {
		full = append(full, "--admin-key", testAdminKey)
	}
	if !hasFlag(args, "--state-file") && !hasFlag(args, "--in-memory") {
		g.StateFile = filepath.Join(t.TempDir(), "state.db")
		full = append(full, "--state-file", g.StateFile)
	} else if i := flagIndex(args, "--state-file"); i >= 0 {
		g.StateFile = args[i+1]
	}
	g.args = full
	g.start()
	t.Cleanup(g.stop)
	return g
}

func hasFlag(args []string, f string) bool { return flagIndex(args, f) >= 0 }

func flagIndex(args []string, f string) int {
	for i, a := range args {
		if a == f || strings.HasPrefix(a, f+"=") {
			return i
		}
	}
	return -1
}

func (g *gateway) start() {
	t := g.t
	t.Helper()
	g.spawn()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-g.done:
			t.Fatalf("paygate exited during startup:\n%s", g.out.String())
		default:
		}
		resp, err := http.Get(g.URL + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("paygate not ready after 60s:\n%s", g.out.String())
}

// spawn starts the command line in its own process group, its output
// going to g.out.
func (g *gateway) spawn() {
	g.t.Helper()
	g.out = &syncBuffer{}
	g.cmd = exec.Command(g.bin, g.args...)
	g.cmd.Env = append(testenv.NodeEnv(g.t), "PAYGATE_LOG_LEVEL=debug")
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.done = make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(g.done) }()
}

// stop sends SIGTERM and waits for a clean exit.
func (g *gateway) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-g.done
		g.t.Errorf("paygate did not stop within 20s of SIGTERM:\n%s", g.out.String())
	}
	if g.t.Failed() {
		g.t.Logf("paygate output:\n%s", g.out.String())
	}
}

// kill9 kills the gateway (and its process group: the stdio backend too)
// without any chance to clean up.
func (g *gateway) kill9() {
	_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	<-g.done
}

// restart starts the same command line again (same port and state file).
func (g *gateway) restart() {
	g.start()
}

// admin sends an admin API request and decodes the JSON answer into out
// (when non-nil). It returns the status code.
func (g *gateway) admin(method, path string, body any, out any) int {
	g.t.Helper()
	return g.do(method, path, map[string]string{"X-Admin-Key": testAdminKey}, body, out)
}

func (g *gateway) do(method, path string, headers map[string]string, body any, out any) int {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			g.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, g.URL+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			g.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// createKey creates an API key with the given credits (and extra fields)
// and returns its secret.
func (g *gateway) createKey(credits int64, extra map[string]any) string {
	g.t.Helper()
	body := map[string]any{"name": "e2e", "credits": credits}
	for k, v := range extra {
		body[k] = v
	}
	var out struct {
		Key string `json:"key"`
	}
	if code := g.admin("POST", "/keys", body, &out); code != 201 && code != 200 {
		g.t.Fatalf("POST /keys: %d", code)
	}
	if !strings.HasPrefix(out.Key, "pg_") {
		g.t.Fatalf("POST /keys returned no key: %+v", out)
	}
	return out.Key
}

// balance returns a key's credits through GET /balance.
func (g *gateway) balance(key string) int64 {
	g.t.Helper()
	var out struct {
		Credits int64 `json:"credits"`
	}
	if code := g.do("GET", "/balance", map[string]string{"X-API-Key": key}, nil, &out); code != 200 {
		g.t.Fatalf("GET /balance: %d", code)
	}
	return out.Credits
}

// rpc posts one JSON-RPC request to /mcp (stateless, JSON answer) and
// returns the decoded response and the HTTP response headers.
func (g *gateway) rpc(key string, id any, method string, params any) (rpcResponse, http.Header) {
	g.t.Helper()
	body := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		body["params"] = params
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", g.URL+"/mcp", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r rpcResponse
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		raw = lastSSEData(raw)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		g.t.Fatalf("decode %d %q: %v", resp.StatusCode, raw, err)
	}
	r.HTTPStatus = resp.StatusCode
	return r, resp.Header
}

type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
	HTTPStatus int `json:"-"`
}

// reason returns error.data.reason of a denial ("" when not a denial).
func (r rpcResponse) reason() string {
	if r.Error == nil {
		return ""
	}
	var d struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(r.Error.Data, &d)
	return d.Reason
}

func lastSSEData(b []byte) []byte {
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if l := sc.Bytes(); bytes.HasPrefix(l, []byte("data:")) {
			last = append([]byte(nil), bytes.TrimSpace(l[5:])...)
		}
	}
	return last
}

// headerTransport adds fixed headers (the API key) to every request of a
// go-sdk client.
type headerTransport struct {
	base http.RoundTripper
	hdr  map[string]string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.hdr {
		r.Header.Set(k, v)
	}
	return h.base.RoundTrip(r)
}

// connect opens a go-sdk client session to the gateway with apiKey.
func (g *gateway) connect(ctx context.Context, apiKey string, opts *mcp.ClientOptions) *mcp.ClientSession {
	g.t.Helper()
	hc := &http.Client{Transport: headerTransport{base: http.DefaultTransport, hdr: map[string]string{"X-API-Key": apiKey}}}
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1.0.0"}, opts)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: g.URL + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		g.t.Fatalf("connect: %v\n%s", err, g.out.String())
	}
	g.t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// everythingStdio returns the --server value running the go-sdk conformance
// server over stdio.
func everythingStdio(t *testing.T) string { return testenv.EverythingServer(t) }

// startEverythingHTTP starts the go-sdk conformance server over Streamable
// HTTP and returns its /mcp URL.
func startEverythingHTTP(t *testing.T) string {
	t.Helper()
	port := testenv.FreePort(t)
	cmd := exec.Command(testenv.EverythingServer(t), fmt.Sprintf("-http=127.0.0.1:%d", port), "-stateless=false")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
	for i := 0; i < 200; i++ {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return url
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("everything server did not start:\n%s", out.String())
	return ""
}

func textOf(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	return sb.String()
}
