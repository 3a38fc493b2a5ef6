package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/testenv"
)

// Helpers of the backends_* tests (multi-server mode, timeouts, circuit
// breakers, retries). Names start with bk to stay clear of other files'.

// bkGateway starts paygate with cfg written to a config file.
func bkGateway(t *testing.T, cfg map[string]any, args ...string) *gateway {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "paygate.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return startGateway(t, append([]string{"--config", path}, args...)...)
}

// bkCall calls a tool and reports how long the answer took.
func (g *gateway) bkCall(key, tool string, args any) (rpcResponse, time.Duration) {
	g.t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	start := time.Now()
	r, _ := g.rpc(key, 1, "tools/call", map[string]any{"name": tool, "arguments": args})
	return r, time.Since(start)
}

// bkText is the text of a tools/call result.
func bkText(t *testing.T, r rpcResponse) string {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("tools/call error %d: %s %s", r.Error.Code, r.Error.Message, r.Error.Data)
	}
	var res struct {
		Content []struct{ Text string } `json:"content"`
		IsError bool                    `json:"isError"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("tool error: %s", r.Result)
	}
	var sb strings.Builder
	for _, c := range res.Content {
		sb.WriteString(c.Text)
	}
	return sb.String()
}

// bkErrorData decodes error.data of a failed call.
func bkErrorData(t *testing.T, r rpcResponse) map[string]any {
	t.Helper()
	if r.Error == nil {
		t.Fatalf("want an error, got result %s", r.Result)
	}
	m := map[string]any{}
	if len(r.Error.Data) > 0 {
		_ = json.Unmarshal(r.Error.Data, &m)
	}
	return m
}

// bkEntry is one line of GET /keys/credit-history.
type bkEntry struct {
	Type   string `json:"type"`
	Amount int64  `json:"amount"`
	Tool   string `json:"tool"`
}

// bkLedger returns a key's ledger, newest first.
func (g *gateway) bkLedger(key string) []bkEntry {
	g.t.Helper()
	var h struct {
		Entries []bkEntry `json:"entries"`
	}
	if code := g.admin("GET", "/keys/credit-history?limit=1000&key="+url.QueryEscape(key), nil, &h); code != http.StatusOK {
		g.t.Fatalf("credit-history: %d", code)
	}
	return h.Entries
}

// bkCount counts ledger entries of a type for a tool.
func bkCount(es []bkEntry, typ, tool string) int {
	n := 0
	for _, e := range es {
		if e.Type == typ && e.Tool == tool {
			n++
		}
	}
	return n
}

// bkBackend is one backend in /health.
type bkBackend struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Circuit string `json:"circuit"`
}

func (g *gateway) bkHealth() (status string, backends map[string]bkBackend) {
	g.t.Helper()
	var h struct {
		Status   string      `json:"status"`
		Backends []bkBackend `json:"backends"`
	}
	g.do("GET", "/health", nil, nil, &h)
	backends = map[string]bkBackend{}
	for _, b := range h.Backends {
		backends[b.Name] = b
	}
	return h.Status, backends
}

// bkCircuit is one breaker in GET /admin/circuit.
type bkCircuit struct {
	Backend    string `json:"backend"`
	State      string `json:"state"`
	Failures   int    `json:"failures"`
	Rejections int64  `json:"rejections"`
	OpenedAt   string `json:"openedAt"`
}

func (g *gateway) bkCircuits() map[string]bkCircuit {
	g.t.Helper()
	var out struct {
		Circuits []bkCircuit `json:"circuits"`
	}
	if code := g.admin("GET", "/admin/circuit", nil, &out); code != http.StatusOK {
		g.t.Fatalf("GET /admin/circuit: %d", code)
	}
	m := map[string]bkCircuit{}
	for _, c := range out.Circuits {
		m[c.Backend] = c
	}
	return m
}

// bkConformanceHTTP starts the go-sdk conformance server over Streamable
// HTTP and returns its /mcp URL and the process, for tests that kill it.
func bkConformanceHTTP(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	port := testenv.FreePort(t)
	cmd := exec.Command(testenv.EverythingServer(t), fmt.Sprintf("-http=127.0.0.1:%d", port), "-stateless=false")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	u := fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
	for range 400 {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return u, cmd
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("conformance server did not start:\n%s", out.String())
	return "", nil
}

// bkEventually polls cond for up to 30 s.
func bkEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
