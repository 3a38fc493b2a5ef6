package e2e

// Helpers for the billing tests (billing_*_test.go): a second, error-
// returning JSON-RPC client for concurrent and crash tests, typed views of
// the admin API's ledger and usage answers, and the invariants every
// billing test ends with.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/testenv"
)

// billEcho returns the --server value running the benchmark echo server
// over stdio: a fast backend whose echo tool returns its arguments.
func billEcho(t *testing.T) string {
	return testenv.BuildGo(t, "github.com/paygate/paygate/bench/echo") + " --stdio"
}

// billConfig writes cfg as a JSON config file in a temp dir and returns
// its path.
func billConfig(t *testing.T, cfg any) string {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "paygate.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// billedKey is a key created through POST /keys.
type billedKey struct {
	Secret    string
	ID        string
	ExpiresAt string
}

// newBilledKey creates a key with credits and extra fields and returns its
// secret and id.
func (g *gateway) newBilledKey(credits int64, extra map[string]any) billedKey {
	g.t.Helper()
	body := map[string]any{"name": "billing", "credits": credits}
	for k, v := range extra {
		body[k] = v
	}
	var out struct {
		Key       string  `json:"key"`
		ID        string  `json:"id"`
		ExpiresAt *string `json:"expiresAt"`
	}
	if code := g.admin("POST", "/keys", body, &out); code != http.StatusCreated {
		g.t.Fatalf("POST /keys %v: %d", body, code)
	}
	k := billedKey{Secret: out.Key, ID: out.ID}
	if out.ExpiresAt != nil {
		k.ExpiresAt = *out.ExpiresAt
	}
	return k
}

// billAdmin is admin that fails the test unless the answer is 2xx.
func (g *gateway) billAdmin(method, path string, body, out any) {
	g.t.Helper()
	var raw json.RawMessage
	code := g.admin(method, path, body, &raw)
	if code < 200 || code > 299 {
		g.t.Fatalf("%s %s %v: %d %s", method, path, body, code, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			g.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// ledgerLine is one line of GET /keys/credit-history.
type ledgerLine struct {
	Seq           int64  `json:"seq"`
	Type          string `json:"type"`
	Amount        int64  `json:"amount"`
	BalanceBefore int64  `json:"balanceBefore"`
	BalanceAfter  int64  `json:"balanceAfter"`
	Tool          string `json:"tool"`
	CallID        string `json:"callId"`
	RequestID     string `json:"requestId"`
}

type ledgerView struct {
	ID             string       `json:"id"`
	CurrentBalance int64        `json:"currentBalance"`
	TotalEntries   int          `json:"totalEntries"`
	Entries        []ledgerLine `json:"entries"` // newest first
}

// maxLedgerPage is the most entries GET /keys/credit-history returns; tests
// keep every key below it so one page is the whole ledger.
const maxLedgerPage = 1000

// history returns a key's whole ledger (newest first).
func (g *gateway) billLedger(key string) ledgerView {
	g.t.Helper()
	var h ledgerView
	g.billAdmin("GET", fmt.Sprintf("/keys/credit-history?key=%s&limit=%d", url.QueryEscape(key), maxLedgerPage), nil, &h)
	if len(h.Entries) >= maxLedgerPage {
		g.t.Fatalf("key %s has %d+ ledger entries; the test must keep it below one page", key, maxLedgerPage)
	}
	return h
}

// count returns how many entries have type typ.
func (h ledgerView) count(typ string) int {
	n := 0
	for _, e := range h.Entries {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// sum returns the sum of the amounts of entries of the given types (all
// when none are given).
func (h ledgerView) sum(types ...string) int64 {
	var s int64
	for _, e := range h.Entries {
		if len(types) == 0 || slices.Contains(types, e.Type) {
			s += e.Amount
		}
	}
	return s
}

// billCheckLedger asserts a key's money invariants: the balance is the sum of
// its ledger deltas, grants + top-ups + transfers in − transfers out −
// charges + refunds, never negative, and every entry's balanceAfter chains
// from the one before it. It returns the history.
func (g *gateway) billCheckLedger(key string) ledgerView {
	g.t.Helper()
	h := g.billLedger(key)
	if h.CurrentBalance < 0 {
		g.t.Errorf("key %s: negative balance %d", h.ID, h.CurrentBalance)
	}
	if s := h.sum(); s != h.CurrentBalance {
		g.t.Errorf("key %s: balance %d, ledger deltas sum to %d", h.ID, h.CurrentBalance, s)
	}
	byKind := h.sum("initial") + h.sum("topup") + h.sum("transfer_in") + h.sum("transfer_out") +
		h.sum("deduction") + h.sum("refund") + h.sum("adjustment")
	if byKind != h.CurrentBalance {
		g.t.Errorf("key %s: balance %d, grants+topups±transfers−charges+refunds = %d", h.ID, h.CurrentBalance, byKind)
	}
	for i := len(h.Entries) - 1; i >= 0; i-- {
		e := h.Entries[i]
		if e.BalanceAfter < 0 {
			g.t.Errorf("key %s: entry %d leaves balance %d", h.ID, e.Seq, e.BalanceAfter)
		}
		if i < len(h.Entries)-1 && h.Entries[i+1].BalanceAfter != e.BalanceBefore {
			g.t.Errorf("key %s: entry %d starts at %d, previous ended at %d", h.ID, e.Seq, e.BalanceBefore, h.Entries[i+1].BalanceAfter)
		}
	}
	if len(h.Entries) > 0 && h.Entries[0].BalanceAfter != h.CurrentBalance {
		g.t.Errorf("key %s: last entry ends at %d, balance is %d", h.ID, h.Entries[0].BalanceAfter, h.CurrentBalance)
	}
	return h
}

// usageRec is one record of GET /usage.
type usageRec struct {
	KeyID      string `json:"keyId"`
	Tool       string `json:"tool"`
	Allowed    bool   `json:"allowed"`
	Credits    int64  `json:"creditsCharged"`
	Refunded   bool   `json:"refunded"`
	DenyReason string `json:"denyReason"`
	Outcome    string `json:"outcome"`
	RequestID  string `json:"requestId"`
}

// billUsageOf polls the usage log until it holds the record of the
// request with X-Request-Id id, and returns it: records are appended
// after the reply is written.
func (g *gateway) billUsageOf(id string) usageRec {
	g.t.Helper()
	var rec usageRec
	waitFor(g.t, func() bool {
		var out struct {
			Events []usageRec `json:"events"`
		}
		g.billAdmin("GET", "/usage?limit=100000", nil, &out)
		for _, e := range out.Events {
			if e.RequestID == id {
				rec = e
				return true
			}
		}
		return false
	}, "the usage record of request "+id)
	return rec
}

// billClient is an HTTP client for many concurrent JSON-RPC calls: a pool big
// enough that calls do not queue for connections.
func billClient() *http.Client {
	return &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second},
	}
}

// post sends one JSON-RPC request to /mcp with the given headers and
// returns the decoded response and headers. Unlike gateway.rpc it reports
// failures instead of failing the test, so goroutines and crash tests can
// use it.
func billRPC(hc *http.Client, base string, hdr map[string]string, id any, method string, params any) (rpcResponse, http.Header, error) {
	body := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		body["params"] = params
	}
	b, err := json.Marshal(body)
	if err != nil {
		return rpcResponse{}, nil, err
	}
	req, err := http.NewRequest("POST", base+"/mcp", bytes.NewReader(b))
	if err != nil {
		return rpcResponse{}, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return rpcResponse{}, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return rpcResponse{}, nil, err
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		raw = lastSSEData(raw)
	}
	var r rpcResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return rpcResponse{}, nil, fmt.Errorf("decode %d %q: %w", resp.StatusCode, raw, err)
	}
	r.HTTPStatus = resp.StatusCode
	return r, resp.Header, nil
}

// billCall sends tools/call of tool with args by key and fails the test on
// a transport error.
func (g *gateway) billCall(key, tool string, args any) (rpcResponse, http.Header) {
	g.t.Helper()
	return g.billCallH(key, tool, args, nil)
}

// billCallH is billCall with extra request headers.
func (g *gateway) billCallH(key, tool string, args any, hdr map[string]string) (rpcResponse, http.Header) {
	g.t.Helper()
	h := map[string]string{}
	if key != "" {
		h["X-API-Key"] = key
	}
	for k, v := range hdr {
		h[k] = v
	}
	params := map[string]any{"name": tool}
	if args != nil {
		params["arguments"] = args
	}
	r, hd, err := billRPC(http.DefaultClient, g.URL, h, 1, "tools/call", params)
	if err != nil {
		g.t.Fatalf("tools/call %s: %v", tool, err)
	}
	return r, hd
}

// denialInfo is the data member of a -32402 denial.
type denialInfo struct {
	Reason           string  `json:"reason"`
	CreditsRequired  *int64  `json:"creditsRequired"`
	RemainingCredits *int64  `json:"remainingCredits"`
	PricingURL       *string `json:"pricingUrl"`
	RetryAfter       *int64  `json:"retryAfter"`
	FailedIndex      *int    `json:"failedIndex"`
}

// denial decodes r's error data; it fails the test unless r is a -32402
// denial with every always-present member of paygate-mcp's shape.
func billDenial(t *testing.T, r rpcResponse) denialInfo {
	t.Helper()
	if r.Error == nil {
		t.Fatalf("want a denial, got result %s", r.Result)
	}
	if r.Error.Code != -32402 {
		t.Fatalf("denial code %d (%s), want -32402", r.Error.Code, r.Error.Message)
	}
	var d denialInfo
	if err := json.Unmarshal(r.Error.Data, &d); err != nil {
		t.Fatalf("denial data %s: %v", r.Error.Data, err)
	}
	if d.Reason == "" || d.CreditsRequired == nil || d.RemainingCredits == nil || d.PricingURL == nil {
		t.Fatalf("denial data %s lacks reason, creditsRequired, remainingCredits or pricingUrl", r.Error.Data)
	}
	if want := "Payment required: " + d.Reason; !strings.HasPrefix(r.Error.Message, want) {
		t.Fatalf("denial message %q, want it to start with %q", r.Error.Message, want)
	}
	return d
}

// billResult fails the test unless r is a tool result that is not an
// error.
func billResult(t *testing.T, what string, r rpcResponse) {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("%s: error %d %s %s", what, r.Error.Code, r.Error.Message, r.Error.Data)
	}
	var res struct {
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil || res.IsError {
		t.Fatalf("%s: result %s", what, r.Result)
	}
}

// startBillGatewayUnready is startGateway for a gateway whose backend is not
// reachable: it waits for /health (the process serves) instead of /ready
// (which needs the backend).
func startBillGatewayUnready(t *testing.T, args ...string) *gateway {
	t.Helper()
	g := &gateway{t: t, bin: testenv.Paygate(t)}
	g.Port = testenv.FreePort(t)
	g.URL = "http://127.0.0.1:" + strconv.Itoa(g.Port)
	g.StateFile = filepath.Join(t.TempDir(), "state.db")
	g.args = append([]string{"wrap", "--port", strconv.Itoa(g.Port), "--admin-key", testAdminKey, "--state-file", g.StateFile}, args...)
	g.spawn()
	t.Cleanup(g.stop)
	waitFor(t, func() bool {
		resp, err := http.Get(g.URL + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "paygate /health")
	return g
}

// startBillEchoHTTP runs the echo server over Streamable HTTP and returns its
// /mcp URL and a function that kills it.
func startBillEchoHTTP(t *testing.T) (string, func()) {
	t.Helper()
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(testenv.BuildGo(t, "github.com/paygate/paygate/bench/echo"), "--http", addr)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(kill)
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "echo server on "+addr)
	return "http://" + addr + "/mcp", kill
}
