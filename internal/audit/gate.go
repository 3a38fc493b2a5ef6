package audit

import (
	"fmt"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// Gate event types.
const (
	TypeGateAllow        = "gate.allow"
	TypeGateDeny         = "gate.deny"
	TypeGateAllowSummary = "gate.allow_summary"
	TypeGateDenySummary  = "gate.deny_summary"
)

// Bounds of the sampler's memory between two flushes.
const (
	maxTracked   = 10_000 // keys (or client addresses) tracked per interval; the rest share one entry
	maxToolNames = 32     // tools named per allow summary; the rest count as "(other)"
	overflowID   = "*"
)

// Gate records one gate decision, given as the usage record the gateway
// wrote for it. Denials become gate.deny events, at most DenyPerSecond per
// key per second, the surplus counted into a gate.deny_summary. Allowed
// calls become gate.allow events (AllowsAll), are summed into one
// gate.allow_summary per key and interval (AllowsSummary), or are not
// audited (AllowsNone).
func (r *Recorder) Gate(rec store.UsageRecord) {
	if rec.Allowed {
		switch r.set.GateAllows {
		case AllowsNone:
		case AllowsAll:
			r.AppendAudit(allowEvent(&rec))
		default:
			r.gate.allow(&rec)
		}
		return
	}
	if ev, ok := r.gate.deny(&rec, r.now()); ok {
		r.AppendAudit(ev)
	}
}

// gateSampler holds the per-key counts of the current interval.
type gateSampler struct {
	r      *Recorder
	mu     sync.Mutex
	since  time.Time
	allows map[string]*allowAgg
	denies map[string]*denyState
}

type allowAgg struct {
	keyID, mask, ns string
	calls, refunded int64
	credits         int64
	shadow          int64
	outcomes        map[string]int64
	tools           map[string]int64
}

type denyState struct {
	keyID, mask, ip string
	second          int64 // unix second of the current window
	inSecond        int
	suppressed      int64
	reasons         map[string]int64
}

func (g *gateSampler) init(r *Recorder) {
	g.r = r
	g.since = r.now()
	g.allows = map[string]*allowAgg{}
	g.denies = map[string]*denyState{}
}

func (g *gateSampler) allow(rec *store.UsageRecord) {
	id := rec.KeyID
	if id == "" {
		id = "anonymous"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.allows[id]
	if a == nil {
		if len(g.allows) >= maxTracked {
			id = overflowID
			a = g.allows[id]
		}
		if a == nil {
			a = &allowAgg{outcomes: map[string]int64{}, tools: map[string]int64{}}
			if id != overflowID {
				a.keyID, a.mask, a.ns = rec.KeyID, rec.KeyMask, rec.Namespace
			}
			g.allows[id] = a
		}
	}
	a.calls++
	a.credits += rec.Credits
	if rec.Refunded {
		a.refunded++
	}
	if len(rec.Reason) > 7 && rec.Reason[:7] == "shadow:" {
		a.shadow++
	}
	out := rec.Outcome
	if out == "" {
		out = orDefault(rec.Reason, "ok")
	}
	a.outcomes[out]++
	tool := orDefault(rec.Tool, rec.Method)
	if _, known := a.tools[tool]; !known && len(a.tools) >= maxToolNames {
		tool = "(other)"
	}
	a.tools[tool]++
}

// deny reports whether the denial gets its own event, counting it into
// the next summary when not.
func (g *gateSampler) deny(rec *store.UsageRecord, now time.Time) (store.AuditEvent, bool) {
	limit := g.r.set.DenyPerSecond
	if limit < 0 {
		return denyEvent(rec), true
	}
	id := rec.KeyID
	if id == "" {
		id = "ip:" + orDefault(rec.ClientIP, "unknown")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.denies[id]
	if d == nil {
		if len(g.denies) >= maxTracked {
			id = overflowID
			d = g.denies[id]
		}
		if d == nil {
			d = &denyState{reasons: map[string]int64{}}
			if id != overflowID {
				d.keyID, d.mask, d.ip = rec.KeyID, rec.KeyMask, rec.ClientIP
			}
			g.denies[id] = d
		}
	}
	if sec := now.Unix(); sec != d.second {
		d.second, d.inSecond = sec, 0
	}
	if d.inSecond < limit {
		d.inSecond++
		return denyEvent(rec), true
	}
	d.suppressed++
	d.reasons[orDefault(rec.Reason, "unknown")]++
	return store.AuditEvent{}, false
}

// flush returns the summaries of the interval ending at now and starts a
// new one. Keys are visited in order so output is deterministic.
func (g *gateSampler) flush(now time.Time) []store.AuditEvent {
	g.mu.Lock()
	allows, denies, since := g.allows, g.denies, g.since
	g.allows, g.denies, g.since = map[string]*allowAgg{}, map[string]*denyState{}, now
	g.mu.Unlock()
	from, to := since.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)
	var out []store.AuditEvent
	for _, id := range sortedKeys(allows) {
		a := allows[id]
		meta := map[string]any{"calls": a.calls, "credits": a.credits, "refunded": a.refunded, "outcomes": a.outcomes,
			"tools": a.tools, "from": from, "to": to}
		if a.keyID != "" {
			meta["keyId"], meta["namespace"] = a.keyID, a.ns
		}
		if a.shadow > 0 {
			meta["shadow"] = a.shadow
		}
		out = append(out, store.AuditEvent{Time: now, Type: TypeGateAllowSummary, Actor: actorOf(a.mask, id), KeyMask: a.mask,
			Message:  fmt.Sprintf("%d allowed %s, %d credits, %s to %s", a.calls, plural(a.calls, "call"), a.credits, from, to),
			Metadata: meta})
	}
	for _, id := range sortedKeys(denies) {
		d := denies[id]
		if d.suppressed == 0 {
			continue
		}
		meta := map[string]any{"suppressed": d.suppressed, "reasons": d.reasons, "limitPerSecond": g.r.set.DenyPerSecond,
			"from": from, "to": to}
		if d.keyID != "" {
			meta["keyId"] = d.keyID
		}
		if d.ip != "" {
			meta["clientIp"] = d.ip
		}
		out = append(out, store.AuditEvent{Time: now, Type: TypeGateDenySummary, Actor: actorOf(d.mask, id), KeyMask: d.mask,
			Message: fmt.Sprintf("%d more %s not logged one by one (over %d per second), %s to %s",
				d.suppressed, plural(d.suppressed, "denial"), g.r.set.DenyPerSecond, from, to),
			Metadata: meta})
	}
	return out
}

func allowEvent(rec *store.UsageRecord) store.AuditEvent {
	tool := orDefault(rec.Tool, rec.Method)
	meta := gateMeta(rec)
	meta["credits"] = rec.Credits
	meta["outcome"] = rec.Outcome
	if rec.Refunded {
		meta["refunded"] = true
	}
	if rec.CallID != "" {
		meta["callId"] = rec.CallID
	}
	meta["durationMs"] = rec.Duration.Milliseconds()
	return store.AuditEvent{Time: rec.Time, Type: TypeGateAllow, Actor: actorOf(rec.KeyMask, ""), RequestID: rec.RequestID,
		KeyMask: rec.KeyMask, Message: "Allowed: " + tool, Metadata: meta}
}

func denyEvent(rec *store.UsageRecord) store.AuditEvent {
	tool := orDefault(rec.Tool, rec.Method)
	return store.AuditEvent{Time: rec.Time, Type: TypeGateDeny, Actor: actorOf(rec.KeyMask, ""), RequestID: rec.RequestID,
		KeyMask: rec.KeyMask, Message: fmt.Sprintf("Denied: %s (%s)", tool, rec.Reason), Metadata: gateMeta(rec)}
}

func gateMeta(rec *store.UsageRecord) map[string]any {
	m := map[string]any{"method": rec.Method}
	if rec.Tool != "" {
		m["tool"] = rec.Tool
	}
	if rec.Reason != "" {
		m["reason"] = rec.Reason
	}
	if rec.KeyID != "" {
		m["keyId"], m["namespace"] = rec.KeyID, rec.Namespace
	}
	if rec.ClientIP != "" {
		m["clientIp"] = rec.ClientIP
	}
	return m
}

// actorOf is the event's actor: the key's mask, else "anonymous" (or the
// overflow marker).
func actorOf(mask, id string) string {
	switch {
	case mask != "":
		return mask
	case id == overflowID:
		return "(many keys)"
	}
	return "anonymous"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
