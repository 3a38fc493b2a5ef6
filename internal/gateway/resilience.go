package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/mcp"
)

// The pipeline's side of backend resilience: refusing, before anything is
// charged, calls the backend would refuse at once; bounding each call by
// its timeout; and the errors clients see when a backend fails.

// admit asks the backend whether it would take a tools/call of tool now
// (backend.Admitter): an open circuit breaker or an unknown tool is
// refused before the charge, so it leaves no ledger entries.
func (g *Gateway) admit(tool string) error {
	if a, ok := backend.Find[backend.Admitter](g.backend); ok {
		return a.Admit(mcp.MethodToolsCall, tool)
	}
	return nil
}

// refuse answers a call admit refused. Nothing was charged.
func (g *Gateway) refuse(ex *streamable.Exchange, c *gate.Call, err error, start time.Time) {
	g.setHeaders(ex, c, accountBalance(c))
	ex.ReplyError(g.forwardError(err))
	out := "circuit_open"
	if errors.Is(err, backend.ErrUnknownTool) {
		out = "unknown_tool"
	}
	g.recordUsage(c, "", 0, true, "", g.now().Sub(start), false, out)
	if g.metrics != nil {
		for _, it := range c.Items {
			g.metrics.ToolCalls.WithLabelValues(it.Tool, "error").Inc()
		}
	}
}

// callContext bounds one tool call by its timeout (toolPricing.<tool>
// .timeoutMs, else toolTimeoutMs). When it expires the backend cancels the
// call upstream and returns context.DeadlineExceeded: -32004, refunded.
func callContext(ctx context.Context, rules *Rules, tool string) (context.Context, context.CancelFunc) {
	if d := rules.Policy.ToolTimeout(tool); d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// statusOf is the status of the backend err happened on: the one named by
// a backend.CallError (multi-server mode), else the gateway's backend.
func (g *Gateway) statusOf(err error) backend.Status {
	if ce, ok := errors.AsType[*backend.CallError](err); ok {
		return ce.Status
	}
	return g.backend.Status()
}

// unknownTool is the answer to a tool no backend serves.
func unknownTool(err error) *mcp.WireError {
	msg := err.Error()
	if _, detail, ok := strings.Cut(msg, backend.ErrUnknownTool.Error()+": "); ok {
		msg = detail
	}
	return &mcp.WireError{Code: mcp.CodeInvalidParams, Message: "Unknown tool: " + msg}
}

// circuitOpen is the answer to a call an open circuit breaker refused:
// paygate-mcp's -32003 circuit_breaker_open.
func (g *Gateway) circuitOpen(err error) *mcp.WireError {
	st := g.statusOf(err)
	name := st.Name
	var wait time.Duration
	if oe, ok := errors.AsType[*backend.OpenError](err); ok {
		name, wait = oe.Backend, oe.RetryAfter
	}
	secs := int64((wait + time.Second - 1) / time.Second)
	msg := fmt.Sprintf("backend %q is unavailable: its circuit breaker is open after repeated failures; the call was not billed", name)
	if secs > 0 {
		msg += fmt.Sprintf(", retry in %ds", secs)
	} else {
		msg += ", retry shortly"
	}
	data := map[string]any{"reason": "circuit_breaker_open", "backend": name, "state": st.State, "circuit": "open"}
	if secs > 0 {
		data["retryAfter"] = secs
	}
	return mcp.NewError(mcp.CodeBackendUnavailable, msg, data)
}
