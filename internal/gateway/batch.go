package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/gateway/streamable"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/store"
)

// maxBatchCalls bounds tools/call_batch, like paygate-mcp's bulk limits.
const maxBatchCalls = 100

type batchParams struct {
	Calls []mcp.CallToolParams `json:"calls"`
}

type batchItemResult struct {
	Tool           string          `json:"tool"`
	Result         json.RawMessage `json:"result,omitempty"`
	Error          *mcp.WireError  `json:"error,omitempty"`
	CreditsCharged int64           `json:"creditsCharged"`
	Refunded       bool            `json:"refunded,omitempty"`
}

// toolsCallBatch is paygate-mcp's tools/call_batch: every call is priced and
// checked first and charged all-or-nothing in one atomic reservation, then
// the calls run in parallel and each is settled on its own.
func (g *Gateway) toolsCallBatch(ctx context.Context, ex *streamable.Exchange) {
	start := g.now()
	rules := g.rules.Load()
	var p batchParams
	if err := json.Unmarshal(ex.Msg.Params, &p); err != nil {
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: "invalid params: " + err.Error()})
		return
	}
	switch {
	case len(p.Calls) == 0:
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: "invalid batch: calls must be a non-empty array"})
		return
	case len(p.Calls) > maxBatchCalls:
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: fmt.Sprintf("invalid batch: at most %d calls", maxBatchCalls)})
		return
	}
	items := make([]gate.Item, len(p.Calls))
	for i, call := range p.Calls {
		if call.Name == "" {
			ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidParams, Message: fmt.Sprintf("invalid batch: calls[%d].name is required", i)})
			return
		}
		if g.aliases.Active() { // aliases.go: run, price and check the target
			p.Calls[i].Name, _ = g.aliasTarget(ex, call.Name)
		}
		items[i] = gate.Item{Tool: p.Calls[i].Name, Args: call.Arguments, ArgBytes: len(call.Arguments)}
	}
	c := &gate.Call{
		Method:     mcp.MethodToolsCallBatch,
		Items:      items,
		Credential: Credential(ex.Request),
		ClientIP:   g.clientIP.ClientIP(ex.Request),
		Now:        start,
		RequestID:  RequestID(ex.Request.Context()),
	}
	defer c.Settle() // gives back what the checks took (concurrency slots) on every path
	if msg := g.maintenance.Load(); msg != nil {
		g.deny(ex, rules, c, &gate.Denial{Reason: gate.MaintenanceMode, Detail: *msg}, start)
		return
	}
	shadow := rules.Policy.Shadow()
	if err := rules.Chain.Run(ctx, c, shadow); err != nil {
		g.checkFailed(ex, rules, c, err, start)
		return
	}

	// Admit: all or nothing, like the charge.
	for _, it := range c.Items {
		if err := g.admit(it.Tool); err != nil {
			g.refuse(ex, c, err, start)
			return
		}
	}

	callID := newCallID()
	var receipt *store.Receipt
	if !shadow {
		var err error
		if receipt, err = g.store.Reserve(ctx, reservation(rules, c, callID)); err != nil {
			g.chargeFailed(ex, rules, c, err, start)
			return
		}
	}

	results := make([]batchItemResult, len(p.Calls))
	var wg sync.WaitGroup
	for i := range p.Calls {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			params, _ := json.Marshal(p.Calls[i])
			callCtx, cancel := callContext(ctx, rules, p.Calls[i].Name)
			resp, err := g.backend.Call(callCtx, &backend.Request{ID: mcp.Int64ID(int64(i)), Method: mcp.MethodToolsCall, Params: params, Peer: ex})
			cancel()
			r := &results[i]
			r.Tool = p.Calls[i].Name
			r.CreditsCharged = c.Items[i].Price
			out := outcomeOf(resp, err)
			switch {
			case err != nil:
				r.Error = g.forwardError(err)
			case resp.Error != nil:
				r.Error = resp.Error
			default:
				r.Result = resp.Result
			}
			if receipt != nil && (out.undelivered() || (rules.Policy.RefundOnFailure() && out.failed())) {
				rr, rerr := g.store.Refund(context.WithoutCancel(ctx), store.Refund{KeyID: c.Key.ID, CallID: callID, Item: i,
					Amount: c.Items[i].Price, Tool: r.Tool, Now: g.now(), Meta: store.Meta{RequestID: c.RequestID, Actor: "gateway", Note: out.String()}})
				if rerr == nil {
					r.Refunded, r.CreditsCharged = true, 0
					_ = rr.Wait(context.WithoutCancel(ctx))
				}
			}
			if receipt == nil {
				r.CreditsCharged = 0
			}
		}(i)
	}
	wg.Wait()
	c.Settle() // every call is done: give slots back before the client hears

	if err := waitDurable(ctx, receipt); err != nil {
		g.log.ErrorContext(ctx, "ledger write not durable; withholding batch result", "call", callID, "err", err)
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInternalError, Message: "internal error: the charge could not be recorded", Data: callData(callID)})
		return
	}
	var total int64
	for _, r := range results {
		total += r.CreditsCharged
	}
	remaining := int64(-1)
	if c.Key != nil {
		if acct, err := g.store.Account(ctx, c.Key.ID); err == nil {
			remaining = acct.Balance
		}
	}
	g.setHeaders(ex, c, remaining)
	for i, r := range results {
		u := *c
		u.Items = c.Items[i : i+1]
		o := "ok"
		if r.Error != nil {
			o = "error"
		}
		g.recordUsage(&u, callID, r.CreditsCharged, true, "", g.now().Sub(start), r.Refunded, o)
	}
	body, _ := json.Marshal(struct {
		Results             []batchItemResult `json:"results"`
		TotalCreditsCharged int64             `json:"totalCreditsCharged"`
		RemainingCredits    int64             `json:"remainingCredits"`
	}{results, total, max(remaining, 0)})
	ex.ReplyResult(body)
}
