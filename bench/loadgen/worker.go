package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const latestVersion = "2025-11-25"

// worker sends one request at a time and keeps its own counters, so the
// hot path shares nothing with other workers.
type worker struct {
	id     int
	cfg    *Config
	client *http.Client
	header http.Header // sent with every request; only this worker uses it

	toolJSON    []byte // the tool name as a JSON string
	noncePrefix string // run id and worker id: unique per run and worker
	pad         string
	seq         int64
	body        []byte
	resp        bytes.Buffer

	hist     Histogram
	counts   Errors
	ok       int64
	sse      int64
	total    int64
	firstErr string
	lastDone time.Time
}

func newWorker(id int, cfg *Config, client *http.Client, key, runID string) *worker {
	tool, _ := json.Marshal(cfg.Tool) // a string always marshals
	w := &worker{
		id:          id,
		cfg:         cfg,
		client:      client,
		toolJSON:    tool,
		noncePrefix: runID + "-" + strconv.Itoa(id) + "-",
		body:        make([]byte, 0, 256+cfg.ArgsSize),
		header: http.Header{
			"Content-Type":         {"application/json"},
			"Accept":               {cfg.Accept.header()},
			"Mcp-Protocol-Version": {latestVersion},
		},
	}
	if key != "" {
		w.header["X-Api-Key"] = []string{key}
	}
	// The arguments without padding are {"nonce":"<prefix><seq>"}; the pad
	// member adds 9 bytes of framing.
	if base := len(`{"nonce":""}`) + len(w.noncePrefix) + 6; cfg.ArgsSize > base+9 {
		w.pad = strings.Repeat("x", cfg.ArgsSize-base-9)
	}
	return w
}

// appendCall appends a tools/call request with the given id and nonce.
func (w *worker) appendCall(dst []byte, id int64, nonce string) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"method":"tools/call","params":{"name":`...)
	dst = append(dst, w.toolJSON...)
	dst = append(dst, `,"arguments":{"nonce":"`...)
	dst = append(dst, nonce...)
	dst = append(dst, '"')
	if w.pad != "" {
		dst = append(dst, `,"pad":"`...)
		dst = append(dst, w.pad...)
		dst = append(dst, '"')
	}
	return append(dst, `}}}`...)
}

// callOutcome is what one request came to, before it is counted.
type callOutcome struct {
	verdict  Verdict
	status   int  // HTTP status when not 200
	timeout  bool // the request timed out
	failed   bool // transport failure (connection refused, reset, …)
	canceled bool // the run was canceled: not counted
	sse      bool
}

func (w *worker) call(ctx context.Context) callOutcome {
	w.seq++
	id := w.seq
	nonce := w.noncePrefix + strconv.FormatInt(id, 10)
	w.body = w.appendCall(w.body[:0], id, nonce)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(w.body))
	if err != nil {
		return callOutcome{failed: true, verdict: Verdict{Detail: err.Error()}}
	}
	req.Header = w.header
	resp, err := w.client.Do(req)
	if err != nil {
		return w.transportOutcome(ctx, err)
	}
	defer resp.Body.Close()
	w.resp.Reset()
	if _, err := w.resp.ReadFrom(resp.Body); err != nil {
		return w.transportOutcome(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		return callOutcome{status: resp.StatusCode, verdict: Verdict{
			Detail: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, excerpt(w.resp.Bytes())),
		}}
	}
	ct := resp.Header.Get("Content-Type")
	if w.cfg.NoNonceCheck {
		nonce = ""
	}
	return callOutcome{verdict: Verify(ct, w.resp.Bytes(), id, nonce), sse: isEventStream(ct)}
}

func (w *worker) transportOutcome(ctx context.Context, err error) callOutcome {
	if ctx.Err() != nil {
		return callOutcome{canceled: true}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return callOutcome{timeout: true, verdict: Verdict{Detail: err.Error()}}
	}
	return callOutcome{failed: true, verdict: Verdict{Detail: err.Error()}}
}

// loop sends requests until the plan's window or budget ends.
func (w *worker) loop(ctx context.Context, p *plan) {
	for ctx.Err() == nil {
		start := time.Now()
		measuring := !start.Before(p.measureStart)
		if measuring {
			if !p.measureEnd.IsZero() && !start.Before(p.measureEnd) {
				return
			}
			if p.limited && p.budget.Add(-1) < 0 {
				return
			}
		}
		out := w.call(ctx)
		done := time.Now()
		if !measuring || out.canceled {
			continue
		}
		w.record(&out, done.Sub(start))
		w.lastDone = done
	}
}

func (w *worker) record(out *callOutcome, latency time.Duration) {
	w.total++
	if out.sse {
		w.sse++
	}
	e := &w.counts
	switch {
	case out.timeout:
		e.Timeouts++
	case out.failed:
		e.Transport++
	case out.status != 0:
		if e.HTTP == nil {
			e.HTTP = map[int]int64{}
		}
		e.HTTP[out.status]++
	default:
		switch out.verdict.Outcome {
		case OK:
			w.ok++
			w.hist.Record(latency)
			return
		case Mismatch:
			e.Mismatches++
		case RPCError:
			if e.JSONRPC == nil {
				e.JSONRPC = map[int64]int64{}
			}
			e.JSONRPC[out.verdict.Code]++
		case ToolError:
			e.ToolErrors++
		default:
			e.BadReplies++
		}
	}
	if w.firstErr == "" {
		w.firstErr = out.verdict.Detail
	}
}

// initialize opens the worker's MCP session: initialize, then
// notifications/initialized. A server that hands out no session id is
// fine; the worker then sends none.
func (w *worker) initialize(ctx context.Context) error {
	const initBody = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + latestVersion +
		`","capabilities":{},"clientInfo":{"name":"paygate-loadgen","version":"1.0.0"}}}`
	resp, body, err := w.post(ctx, initBody)
	if err != nil {
		return fmt.Errorf("worker %d: initialize: %w", w.id, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("worker %d: initialize: HTTP %d: %s", w.id, resp.StatusCode, excerpt(body))
	}
	msg := body
	if isEventStream(resp.Header.Get("Content-Type")) {
		if msg, err = responseEvent(body); err != nil {
			return fmt.Errorf("worker %d: initialize: %w", w.id, err)
		}
	}
	var r struct {
		Result *struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
		Error *struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg, &r); err != nil {
		return fmt.Errorf("worker %d: initialize: decode reply: %w: %s", w.id, err, excerpt(msg))
	}
	if r.Error != nil {
		return fmt.Errorf("worker %d: initialize: jsonrpc error %d: %s", w.id, r.Error.Code, r.Error.Message)
	}
	if r.Result == nil || r.Result.ProtocolVersion == "" {
		return fmt.Errorf("worker %d: initialize: reply has no protocolVersion: %s", w.id, excerpt(msg))
	}
	w.header["Mcp-Protocol-Version"] = []string{r.Result.ProtocolVersion}
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		w.header["Mcp-Session-Id"] = []string{sid}
	}
	resp, body, err = w.post(ctx, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if err != nil {
		return fmt.Errorf("worker %d: notifications/initialized: %w", w.id, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("worker %d: notifications/initialized: HTTP %d: %s", w.id, resp.StatusCode, excerpt(body))
	}
	return nil
}

// post sends one message outside the measured loop and reads the reply.
func (w *worker) post(ctx context.Context, msg string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, strings.NewReader(msg))
	if err != nil {
		return nil, nil, err
	}
	req.Header = w.header.Clone()
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// closeSession ends the worker's session with DELETE, best effort.
func (w *worker) closeSession(ctx context.Context) {
	if w.header.Get("Mcp-Session-Id") == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, w.cfg.URL, nil)
	if err != nil {
		return
	}
	req.Header = w.header.Clone()
	if resp, err := w.client.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
