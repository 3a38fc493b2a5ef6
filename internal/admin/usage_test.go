package admin

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// seedUsage records gate decisions for two keys.
func seedUsage(f *fixture) (a, b string) {
	f.t.Helper()
	a, _ = f.newKey(`{"name":"a","credits":100,"namespace":"prod"}`)
	b, _ = f.newKey(`{"name":"b","credits":100}`)
	ka, _, _ := f.st.GetKey(context.Background(), a)
	kb, _, _ := f.st.GetKey(context.Background(), b)
	rec := func(k *store.Key, at time.Duration, tool string, allowed bool, reason string, cr int64) store.UsageRecord {
		return store.UsageRecord{Time: t0.Add(at), KeyID: k.ID, KeyMask: k.Mask(), Namespace: k.Namespace, Method: "tools/call",
			Tool: tool, Allowed: allowed, Reason: reason, Credits: cr, Outcome: map[bool]string{true: "ok"}[allowed],
			Duration: 1500 * time.Microsecond, RequestID: "req_1"}
	}
	f.st.AppendUsage(
		rec(ka, time.Minute, "search", true, "", 5),
		rec(ka, 2*time.Minute, "search", true, "", 5),
		rec(ka, 61*time.Minute, "search", false, "rate_limited", 0),
		rec(ka, 62*time.Minute, "=HYPERLINK(\"x\")", true, "", 2),
		rec(kb, 3*time.Minute, "search", false, "insufficient_credits", 0),
	)
	return a, b
}

func TestKeyUsage(t *testing.T) {
	f := newFixture(t)
	a, _ := seedUsage(f)
	m := mustStatus(t, f.get("/keys/usage?key="+a), 200)
	for k, v := range map[string]float64{"totalCalls": 4, "totalAllowed": 3, "totalDenied": 1, "totalCreditsSpent": 12, "credits": 100} {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if fmt.Sprint(m["perTool"].(map[string]any)["search"]) != "map[allowed:2 calls:3 credits:10 denied:1]" {
		t.Errorf("perTool = %v", m["perTool"])
	}
	if fmt.Sprint(m["denyReasons"]) != "map[rate_limited:1]" {
		t.Errorf("denyReasons = %v", m["denyReasons"])
	}
	ts := m["timeSeries"].([]any)
	if len(ts) != 2 || fmt.Sprint(ts[0]) != "map[calls:2 credits:10 denied:0 hour:2026-03-14T12:00:00.000Z]" {
		t.Errorf("timeSeries = %v", ts)
	}
	ev := m["recentEvents"].([]any)
	if len(ev) != 4 || ev[0].(map[string]any)["tool"] != `=HYPERLINK("x")` {
		t.Errorf("recentEvents = %v", ev)
	}
	m = mustStatus(t, f.get("/keys/usage?key="+a+"&since=2026-03-14T13:00:00Z"), 200)
	if m["totalCalls"] != 2.0 {
		t.Errorf("since: %v", m["totalCalls"])
	}
	errBody(t, f.get("/keys/usage?key="+a+"&since=2026-03-14T13:00:00Z&until=2026-03-14T12:00:00Z"), 400, CodeBadRequest, "until")
	errBody(t, f.get("/keys/usage?key=nobody"), 404, CodeNotFound, "key")
}

func TestUsageExport(t *testing.T) {
	f := newFixture(t)
	a, _ := seedUsage(f)
	m := mustStatus(t, f.get("/usage"), 200)
	if m["count"] != 5.0 || m["truncated"] != false {
		t.Fatalf("usage = %v", m)
	}
	e0 := m["events"].([]any)[0].(map[string]any)
	if e0["timestamp"] != "2026-03-14T12:01:00.000Z" || !strings.Contains(e0["key"].(string), "...") || e0["durationMs"] != 1.5 {
		t.Fatalf("first event = %v", e0)
	}
	for q, want := range map[string]float64{
		"namespace=prod": 4, "key=" + a: 4, "since=2026-03-14T13:00:00Z": 2,
		"until=2026-03-14T12:02:30Z": 2, "limit=2": 2,
	} {
		if m := mustStatus(t, f.get("/usage?"+q), 200); m["count"] != want {
			t.Errorf("%s: count %v, want %v", q, m["count"], want)
		}
	}
	m = mustStatus(t, f.get("/usage?limit=2"), 200)
	if m["truncated"] != true {
		t.Fatalf("page 1 = %v", m)
	}
	m = mustStatus(t, f.get(fmt.Sprintf("/usage?limit=2&afterSeq=%.0f", m["lastSeq"].(float64))), 200)
	if m["count"] != 2.0 || m["truncated"] != true {
		t.Fatalf("page 2 = %v", m)
	}

	r := f.get("/usage?format=csv")
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) != 6 || rows[0][1] != "timestamp" {
		t.Fatalf("csv: %v %v", err, rows)
	}
	for _, row := range rows[1:] {
		for _, cell := range row {
			if strings.HasPrefix(cell, "=") {
				t.Errorf("formula cell %q", cell)
			}
		}
	}
	errBody(t, f.get("/usage?limit=0"), 400, CodeBadRequest, "limit")
	errBody(t, f.get("/usage?format=xls"), 400, CodeBadRequest, "format")
	errBody(t, f.get("/usage?key=ghost"), 404, CodeNotFound, "key")
}

func TestStatus(t *testing.T) {
	f := newFixture(t)
	seedUsage(f)
	m := mustStatus(t, f.get("/status"), 200)
	if m["activeKeys"] != 2.0 || m["totalCredits"] != 200.0 {
		t.Fatalf("status = %v", m)
	}
	if fmt.Sprint(m["denyReasons"]) != "map[insufficient_credits:1 rate_limited:1]" {
		t.Errorf("denyReasons = %v", m["denyReasons"])
	}
	u := m["usage"].(map[string]any)
	if u["totalCalls"] != 5.0 || u["totalCreditsSpent"] != 12.0 {
		t.Errorf("usage = %v", u)
	}
	p := m["pricing"].(map[string]any)
	if p["defaultCreditsPerCall"] != 1.0 || p["globalRateLimitPerMin"] != 60.0 {
		t.Errorf("pricing = %v", p)
	}
	m = mustStatus(t, f.get("/status?namespace=prod"), 200)
	if m["activeKeys"] != 1.0 || m["usage"].(map[string]any)["totalCalls"] != 4.0 {
		t.Fatalf("namespaced status = %v", m)
	}
}
