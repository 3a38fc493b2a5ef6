package e2e

// Helpers for the audit, event stream, backup/restore, admin role and init
// tests (audit_*_test.go, backup_*_test.go, init_*_test.go): the echo
// backend, typed views of the audit API, an event stream reader, and a
// runner for the CLI commands of the real binary.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/testenv"
)

// auditEcho returns the --server value running the benchmark echo server
// over stdio: one tool, echo, that answers at once.
func auditEcho(t *testing.T) string {
	return testenv.BuildGo(t, "github.com/paygate/paygate/bench/echo") + " --stdio"
}

// auditCall calls the echo tool with key (and a request id) and returns the
// response.
func (g *gateway) auditCall(key, requestID string) rpcResponse {
	g.t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": "echo", "arguments": map[string]any{"n": 1}}})
	req, _ := http.NewRequest("POST", g.URL+"/mcp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("X-API-Key", key)
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		raw = lastSSEData(raw)
	}
	var r rpcResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		g.t.Fatalf("decode %q: %v", raw, err)
	}
	return r
}

// auditEvent is one event as GET /audit returns it.
type auditEvent struct {
	ID        int64          `json:"id"`
	Timestamp string         `json:"timestamp"`
	Type      string         `json:"type"`
	Actor     string         `json:"actor"`
	RequestID string         `json:"requestId"`
	KeyMasked string         `json:"keyMasked"`
	Message   string         `json:"message"`
	Metadata  map[string]any `json:"metadata"`
}

type auditPage struct {
	Total  int64        `json:"total"`
	Offset int          `json:"offset"`
	Limit  int          `json:"limit"`
	Events []auditEvent `json:"events"`
}

// audit queries GET /audit with the test admin key.
func (g *gateway) audit(query string) auditPage {
	g.t.Helper()
	var p auditPage
	if code := g.admin("GET", "/audit"+query, nil, &p); code != http.StatusOK {
		g.t.Fatalf("GET /audit%s: %d", query, code)
	}
	return p
}

// adminAs sends an admin request with another admin key.
func (g *gateway) adminAs(key, method, path string, body any, out any) int {
	g.t.Helper()
	return g.do(method, path, map[string]string{"X-Admin-Key": key}, body, out)
}

// newAdminKey creates an admin key with role (as the test admin key
// unless by is set) and returns its secret and id.
func (g *gateway) newAdminKey(by, role string) (secret, id string) {
	g.t.Helper()
	if by == "" {
		by = testAdminKey
	}
	var out struct {
		Key string `json:"key"`
		ID  string `json:"id"`
	}
	if code := g.adminAs(by, "POST", "/admin/keys", map[string]any{"name": role, "role": role}, &out); code != http.StatusCreated {
		g.t.Fatalf("POST /admin/keys %s: %d", role, code)
	}
	return out.Key, out.ID
}

// sseEvent is one Server-Sent Event; comment lines have event "".
type sseEvent struct{ Event, Data, Comment string }

// eventStream reads GET /admin/events.
type eventStream struct {
	t      *testing.T
	Status int
	Header http.Header
	ch     chan sseEvent
	cancel context.CancelFunc
}

func (g *gateway) openEvents(key, query string) *eventStream {
	g.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", g.URL+"/admin/events"+query, nil)
	req.Header.Set("X-Admin-Key", key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	s := &eventStream{t: g.t, Status: resp.StatusCode, Header: resp.Header, ch: make(chan sseEvent, 256), cancel: cancel}
	go func() {
		defer close(s.ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "":
				if ev != (sseEvent{}) {
					s.ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.Comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	return s
}

// next returns the next event (comments skipped), failing after timeout.
func (s *eventStream) next(timeout time.Duration) sseEvent {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.ch:
			if !ok {
				s.t.Fatal("the event stream ended")
			}
			if ev.Event != "" {
				return ev
			}
		case <-deadline:
			s.t.Fatalf("no event within %s", timeout)
		}
	}
}

// nextAudit returns the next audit event.
func (s *eventStream) nextAudit(timeout time.Duration) auditEvent {
	s.t.Helper()
	ev := s.next(timeout)
	if ev.Event != "audit" {
		s.t.Fatalf("got %q event %s, want an audit event", ev.Event, ev.Data)
	}
	var e auditEvent
	if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
		s.t.Fatal(err)
	}
	return e
}

// ended waits until the server ends the stream.
func (s *eventStream) ended(timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-s.ch:
			if !ok {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// cliResult is one run of a paygate command.
type cliResult struct {
	Code           int
	Stdout, Stderr string
}

// paygateCLI runs the real binary with args, HOME set to home.
func paygateCLI(t *testing.T, home string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(testenv.Paygate(t), args...)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliResult{Stdout: out.String(), Stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// keyState is what a backup must carry across: a key's balance and
// ledger, as the admin API reports them.
type keyState struct {
	Balance int64
	Entries []string // "type amount balanceAfter", oldest first
}

// keyState reads a key's balance and ledger and checks that the ledger
// reconciles: balance == the sum of its amounts, each balanceAfter the
// running sum.
func (g *gateway) keyState(key string) keyState {
	g.t.Helper()
	var h struct {
		CurrentBalance int64 `json:"currentBalance"`
		TotalEntries   int   `json:"totalEntries"`
		Entries        []struct {
			Type         string `json:"type"`
			Amount       int64  `json:"amount"`
			BalanceAfter int64  `json:"balanceAfter"`
		} `json:"entries"`
	}
	if code := g.admin("GET", "/keys/credit-history?limit=1000&key="+key, nil, &h); code != http.StatusOK {
		g.t.Fatalf("credit-history: %d", code)
	}
	st := keyState{Balance: h.CurrentBalance}
	var sum int64
	for i := len(h.Entries) - 1; i >= 0; i-- { // newest first
		e := h.Entries[i]
		sum += e.Amount
		if e.BalanceAfter != sum {
			g.t.Fatalf("key %s: entry %+v balanceAfter, running sum %d", key, e, sum)
		}
		st.Entries = append(st.Entries, fmt.Sprintf("%s %d %d", e.Type, e.Amount, e.BalanceAfter))
	}
	if sum != h.CurrentBalance || len(h.Entries) != h.TotalEntries {
		g.t.Fatalf("key %s: balance %d, ledger sums to %d (%d of %d entries)", key, h.CurrentBalance, sum, len(h.Entries), h.TotalEntries)
	}
	return st
}

// fetch sends a request with an admin key and raw body bytes and returns
// the status and the raw answer.
func (g *gateway) fetch(method, path, adminKey string, body []byte) (int, []byte, http.Header) {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, g.URL+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if adminKey != "" {
		req.Header.Set("X-Admin-Key", adminKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// keyList returns GET /keys (id, balance) as one comparable string.
func (g *gateway) keyList() string {
	g.t.Helper()
	var out struct {
		Keys []struct {
			ID      string `json:"id"`
			Credits int64  `json:"credits"`
			Name    string `json:"name"`
		} `json:"keys"`
	}
	if code := g.admin("GET", "/keys?limit=500", nil, &out); code != http.StatusOK {
		g.t.Fatalf("GET /keys: %d", code)
	}
	return fmt.Sprint(out.Keys)
}

// writeConfigJSON writes v as a JSON config file.
func writeConfigJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
