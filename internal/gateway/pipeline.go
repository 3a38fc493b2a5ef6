package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/store"
)

// durableWait bounds how long a reply waits for its ledger entry. The
// store's group commit normally takes well under a millisecond; this only
// matters when the disk stalls.
const durableWait = 30 * time.Second

// toolsCall is the whole request path of one tools/call, top to bottom.
func (g *Gateway) toolsCall(ctx context.Context, ex *streamable.Exchange) {
	start := g.now()
	rules := g.rules.Load()

	// Decode: only the tool name and the size of the raw arguments.
	params, err := mcp.ParseCallTool(ex.Msg.Params)
	if err != nil {
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: err.Error()})
		return
	}
	if msg := g.maintenance.Load(); msg != nil {
		g.deny(ex, rules, g.newCall(ex, params, start), &gate.Denial{Reason: gate.MaintenanceMode, Detail: *msg}, start)
		return
	}

	// Rewrite: a meta-tool of dynamic discovery or a deprecated alias
	// stands for another tool; from here on this is a call of that tool,
	// priced, checked and forwarded as one (discovery.go, aliases.go).
	fwd := ex.Msg.Params
	if g.discovery || g.aliases.Active() {
		var done bool
		if params, fwd, done = g.rewrite(ctx, ex, rules, params); done {
			return
		}
	}

	// Authenticate, resolve policy, check. What the checks take (a
	// concurrency slot) is given back at settle, on every path.
	c := g.newCall(ex, params, start)
	defer c.Settle()
	shadow := rules.Policy.Shadow()
	if err := rules.Chain.Run(ctx, c, shadow); err != nil {
		g.checkFailed(ex, rules, c, err, start)
		return
	}

	// Cache: an identical earlier call's result stands in for the
	// backend's answer (cache.go); a hit is charged only with
	// cacheHitCharge "full".
	ck, hit := g.cacheLookup(rules, c, ex.Msg.ID)

	// Admit: a call the backend would refuse at once (open circuit
	// breaker, unknown tool) is refused before it is charged.
	if hit == nil {
		if err := g.admit(params.Name); err != nil {
			g.refuse(ex, c, err, start)
			return
		}
	}

	// Charge: one atomic step that re-checks credits, spending limit and
	// quotas, so concurrent calls cannot overspend what the checks saw.
	var receipt *store.Receipt
	callID := newCallID()
	if !shadow && (hit == nil || rules.Policy.ChargeCacheHits()) {
		if receipt, err = g.store.Reserve(ctx, reservation(rules, c, callID)); err != nil {
			g.chargeFailed(ex, rules, c, err, start)
			return
		}
	}
	gateDone := g.now()
	if g.metrics != nil {
		g.metrics.GateDuration.Observe(gateDone.Sub(start).Seconds())
	}

	// Forward. The ledger commit of the charge runs concurrently.
	resp, ferr := hit, error(nil)
	if hit == nil {
		callCtx, cancel := callContext(ctx, rules, params.Name)
		resp, ferr = g.backend.Call(callCtx, &backend.Request{ID: ex.Msg.ID, Method: ex.Msg.Method, Params: fwd, Peer: ex})
		cancel()
		if g.metrics != nil {
			g.metrics.BackendLatency.WithLabelValues(g.backend.Name()).Observe(g.now().Sub(gateDone).Seconds())
		}
	}
	c.Settle() // the tool is done: give slots back before the client hears

	// Settle: refund what was not delivered, and failures when configured.
	out := outcomeOf(resp, ferr)
	charged := c.Items[0].Price
	refund := receipt != nil && charged >= 0 && (out.undelivered() || (rules.Policy.RefundOnFailure() && out.failed()))
	balance := int64(-1)
	if receipt != nil {
		balance = receipt.BalanceAfter
	} else if hit != nil {
		balance = accountBalance(c)
	}
	var refundReceipt *store.Receipt
	if refund {
		refundReceipt, err = g.store.Refund(context.WithoutCancel(ctx), store.Refund{
			KeyID: c.Key.ID, CallID: callID, Item: 0, Amount: charged, Tool: params.Name, Now: g.now(),
			Meta: store.Meta{RequestID: c.RequestID, Actor: "gateway", Note: out.String()},
		})
		if err != nil {
			g.log.ErrorContext(ctx, "refund failed", "call", callID, "key", c.Key.Mask(), "err", err)
		} else {
			balance = refundReceipt.BalanceAfter
		}
	}

	// A charged result is never sent before its ledger entry is durable.
	if werr := waitDurable(ctx, receipt, refundReceipt); werr != nil {
		g.log.ErrorContext(ctx, "ledger write not durable; withholding result", "call", callID, "err", werr)
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInternalError, Message: "internal error: the charge could not be recorded; the call was not billed", Data: callData(callID)})
		g.recordUsage(c, callID, 0, true, "ledger_error", g.now().Sub(start), false, "")
		return
	}

	g.setHeaders(ex, c, balance)
	outcome := g.cacheResult(ex, c, ck, hit, resp, out)
	net := charged
	if refund || receipt == nil {
		net = 0
	}
	g.recordUsage(c, callID, net, true, "", g.now().Sub(start), refund, outcome)
	if g.metrics != nil {
		status := "allowed"
		switch {
		case refund:
			status = "refunded"
			g.metrics.Refunds.WithLabelValues(params.Name).Inc()
			g.metrics.RefundCredits.WithLabelValues(params.Name).Add(float64(charged))
		case out.failed() || out.undelivered():
			status = "error"
		}
		g.metrics.ToolCalls.WithLabelValues(params.Name, status).Inc()
		if net > 0 {
			g.metrics.CreditsCharged.WithLabelValues(params.Name).Add(float64(net))
		}
	}
	if ferr != nil {
		ex.ReplyError(g.forwardError(ferr))
		return
	}
	ex.Reply(mcp.Encode(resp))
}

// newCall builds the gate's view of a tools/call.
func (g *Gateway) newCall(ex *streamable.Exchange, p *mcp.CallToolParams, now time.Time) *gate.Call {
	return &gate.Call{
		Method:     mcp.MethodToolsCall,
		Items:      []gate.Item{{Tool: p.Name, Args: p.Arguments, ArgBytes: len(p.Arguments)}},
		Credential: Credential(ex.Request),
		ClientIP:   g.clientIP.ClientIP(ex.Request),
		Now:        now,
		RequestID:  RequestID(ex.Request.Context()),
	}
}

// deny answers a refused call with paygate-mcp's -32402 error shape and
// records the decision. Nothing was charged.
func (g *Gateway) deny(ex *streamable.Exchange, rules *Rules, c *gate.Call, d *gate.Denial, start time.Time) {
	c.Settle() // a later check or the charge refused it: slots go back before the answer
	g.setHeaders(ex, c, accountBalance(c))
	if d.RetryAfter > 0 {
		ex.Header.Set("Retry-After", strconv.FormatInt(int64((d.RetryAfter+time.Second-1)/time.Second), 10))
	}
	ex.ReplyError(gate.ErrorFor(d, g.pricing))
	g.recordUsage(c, "", 0, false, string(d.Reason), g.now().Sub(start), false, "")
	if g.metrics != nil {
		tool := ""
		if len(c.Items) > 0 {
			tool = c.Items[0].Tool
		}
		g.metrics.ToolCalls.WithLabelValues(tool, "denied").Inc()
		g.metrics.Denials.WithLabelValues(string(d.Reason)).Inc()
		switch d.Reason {
		case gate.RateLimited:
			g.metrics.RateLimitHits.WithLabelValues("key").Inc()
		case gate.ToolRateLimited:
			g.metrics.RateLimitHits.WithLabelValues("tool").Inc()
		}
	}
}

// reservation asks the store to charge every item of c, at its price,
// under call id callID.
func reservation(rules *Rules, c *gate.Call, callID string) store.Reservation {
	items := make([]store.Item, len(c.Items))
	for i, it := range c.Items {
		items[i] = store.Item{Tool: it.Tool, Amount: it.Price}
	}
	return store.Reservation{KeyID: c.Key.ID, CallID: callID, FreshCallID: true, Items: items,
		Limits: rules.Policy.Limits(c.Key), Now: c.Now, Meta: store.Meta{RequestID: c.RequestID, Actor: "gateway"}}
}

// checkFailed answers a call the gate chain refused (a denial) or could
// not decide (an internal fault).
func (g *Gateway) checkFailed(ex *streamable.Exchange, rules *Rules, c *gate.Call, err error, start time.Time) {
	var d *gate.Denial
	if errors.As(err, &d) {
		g.deny(ex, rules, c, d, start)
		return
	}
	g.fault(ex, c, "gate", err)
}

// chargeFailed answers a call whose charge Reserve refused: a limit (the
// balance, the spending limit or a quota) is a denial; a store that cannot
// take the charge refuses the call (never served for free) with a clear,
// retryable error.
func (g *Gateway) chargeFailed(ex *streamable.Exchange, rules *Rules, c *gate.Call, err error, start time.Time) {
	var le *store.LimitError
	if errors.As(err, &le) {
		g.deny(ex, rules, c, c.LimitDenial(le), start)
		return
	}
	if errors.Is(err, store.ErrKeyInactive) {
		g.deny(ex, rules, c, &gate.Denial{Reason: gate.InvalidAPIKey}, start)
		return
	}
	g.log.ErrorContext(ex.Request.Context(), "charge failed", "key", c.Key.Mask(), "err", err)
	g.deny(ex, rules, c, &gate.Denial{Reason: gate.StoreUnavailable, Detail: "the credit store is unavailable; retry later", RetryAfter: time.Second}, start)
}

// fault answers an internal error without leaking it.
func (g *Gateway) fault(ex *streamable.Exchange, c *gate.Call, where string, err error) {
	id := newCallID()
	g.log.ErrorContext(ex.Request.Context(), "internal error", "where", where, "call", id, "err", err)
	ex.ReplyError(&mcp.WireError{Code: mcp.CodeInternalError, Message: "internal error", Data: callData(id)})
}

func callData(id string) []byte { return []byte(`{"callId":"` + id + `"}`) }

// authenticateOnly checks that a request carries a valid, usable key (for
// methods that are not free but not charged either).
func (g *Gateway) authenticateOnly(ctx context.Context, ex *streamable.Exchange, rules *Rules) *gate.Denial {
	c := &gate.Call{
		Method:     ex.Msg.Method,
		Credential: Credential(ex.Request),
		ClientIP:   g.clientIP.ClientIP(ex.Request),
		Now:        g.now(),
		RequestID:  RequestID(ex.Request.Context()),
	}
	if rules.Policy.Shadow() {
		return nil
	}
	if err := rules.Chain.Authenticate(ctx, c); err != nil {
		var d *gate.Denial
		if errors.As(err, &d) {
			return d
		}
		return &gate.Denial{Reason: gate.StoreUnavailable}
	}
	return nil
}

// setHeaders adds X-Credits-Remaining and X-RateLimit-* to the response.
func (g *Gateway) setHeaders(ex *streamable.Exchange, c *gate.Call, balance int64) {
	if c.Key == nil {
		return
	}
	// One backing array for the values and the canonical keys written
	// directly: this runs on every call, and Header.Set allocates per value.
	var vals [4]string
	h := ex.Header
	if balance >= 0 {
		vals[0] = strconv.FormatInt(balance, 10)
		h["X-Credits-Remaining"] = vals[0:1:1]
	}
	if rl := c.RateLimit; rl != nil {
		reset := int64(rl.Reset.Sub(c.Now).Seconds() + 0.999)
		vals[1] = strconv.FormatInt(rl.Limit, 10)
		vals[2] = strconv.FormatInt(rl.Remaining, 10)
		vals[3] = strconv.FormatInt(max(reset, 0), 10)
		h["X-Ratelimit-Limit"] = vals[1:2:2]
		h["X-Ratelimit-Remaining"] = vals[2:3:3]
		h["X-Ratelimit-Reset"] = vals[3:4:4]
	}
}

// accountBalance is the balance for X-Credits-Remaining on a denial, or -1
// when the gate did not read the account (the header is then left out
// rather than guessed).
func accountBalance(c *gate.Call) int64 {
	if c.Key == nil || !c.AccountLoaded {
		return -1
	}
	return c.Account.Balance
}

// recordUsage appends the decision to the usage log (asynchronously).
func (g *Gateway) recordUsage(c *gate.Call, callID string, charged int64, allowed bool, reason string, d time.Duration, refunded bool, outcome string) {
	rec := store.UsageRecord{
		Time:      c.Now,
		Method:    c.Method,
		Allowed:   allowed,
		Reason:    reason,
		Credits:   charged,
		Refunded:  refunded,
		Outcome:   outcome,
		Duration:  d,
		RequestID: c.RequestID,
		CallID:    callID,
	}
	if c.ClientIP.IsValid() {
		rec.ClientIP = c.ClientIP.String()
	}
	if len(c.Items) > 0 {
		rec.Tool = c.Items[0].Tool
	}
	if c.Key != nil {
		rec.KeyID, rec.KeyMask, rec.Namespace = c.Key.ID, c.Key.Mask(), c.Key.Namespace
	}
	if allowed && len(c.Shadow) > 0 {
		rec.Reason = "shadow:" + string(c.Shadow[0])
	}
	g.store.AppendUsage(rec)
	if g.audit != nil {
		g.audit.Gate(rec)
	}
}

func waitDurable(ctx context.Context, rs ...*store.Receipt) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), durableWait)
	defer cancel()
	for _, r := range rs {
		if r == nil {
			continue
		}
		if err := r.Wait(wctx); err != nil {
			return err
		}
	}
	return nil
}

// outcome classifies what came back from the backend.
type outcome struct {
	err      error
	rpcError bool
	isError  bool
}

func outcomeOf(resp *mcp.Message, err error) outcome {
	o := outcome{err: err}
	if err == nil && resp != nil {
		o.rpcError = resp.Error != nil
		o.isError = !o.rpcError && mcp.ToolResultIsError(resp.Result)
	}
	return o
}

// undelivered: the client got no result from the backend, so it is never billed.
func (o outcome) undelivered() bool { return o.err != nil }

// failed: the backend answered with an error.
func (o outcome) failed() bool { return o.rpcError || o.isError }

func (o outcome) String() string {
	switch {
	case errors.Is(o.err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(o.err, context.Canceled):
		return "cancelled"
	case o.err != nil:
		return "backend_down"
	case o.rpcError:
		return "rpc_error"
	case o.isError:
		return "tool_error"
	}
	return "ok"
}

// forwardError turns a backend failure into the JSON-RPC error the client
// sees: it names the backend state and never hangs.
func (g *Gateway) forwardError(err error) *mcp.WireError {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &mcp.WireError{Code: mcp.CodeToolTimeout, Message: "tool call timed out; it was not billed"}
	case errors.Is(err, context.Canceled):
		return &mcp.WireError{Code: mcp.CodeServiceUnavailable, Message: "request cancelled"}
	case errors.Is(err, backend.ErrUnknownTool):
		return unknownTool(err)
	case errors.Is(err, backend.ErrCircuitOpen):
		return g.circuitOpen(err)
	}
	return backendUnavailable(g.statusOf(err))
}

func backendUnavailable(st backend.Status) *mcp.WireError {
	msg := fmt.Sprintf("backend %q is %s", st.Name, st.State)
	if st.State == backend.StateReady {
		msg = fmt.Sprintf("backend %q connection lost during the call", st.Name)
	}
	if st.LastError != "" {
		msg += ": " + st.LastError
	}
	return mcp.NewError(mcp.CodeBackendUnavailable, msg+"; the call was not billed, retry shortly", map[string]any{"backend": st.Name, "state": st.State, "restarts": st.Restarts})
}

// SetMaintenance turns maintenance mode on (msg != nil) or off.
func (g *Gateway) SetMaintenance(msg *string) { g.maintenance.Store(msg) }

// Maintenance returns the maintenance message, or nil when off.
func (g *Gateway) Maintenance() *string { return g.maintenance.Load() }

var _ = http.StatusOK
