package admin

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

func TestRateLimitStatus(t *testing.T) {
	f := newFixture(t)
	id, _ := f.newKey(`{"name":"rl","credits":10}`)
	ctx := context.Background()
	// The gate counts a key's calls under its id and per-tool calls under id:tool.
	for range 3 {
		f.limiter.Allow(ctx, id, 60, time.Minute, t0)
	}
	f.limiter.Allow(ctx, id+":search", 5, time.Minute, t0)
	f.clock.Add(15 * time.Second)
	m := mustStatus(t, f.get("/keys/rate-limit-status?key="+id), 200)
	if fmt.Sprint(m["global"]) != "map[limit:60 remaining:57 resetInMs:45000 used:3 windowMs:60000]" {
		t.Errorf("global = %v", m["global"])
	}
	if fmt.Sprint(m["perTool"]) != "map[search:map[limit:5 remaining:4 resetInMs:45000 used:1 windowMs:60000]]" {
		t.Errorf("perTool = %v", m["perTool"])
	}
	// Peeking consumed nothing.
	m = mustStatus(t, f.get("/keys/rate-limit-status?key="+id), 200)
	if m["global"].(map[string]any)["used"] != 3.0 {
		t.Errorf("status consumed a call: %v", m["global"])
	}
	// A per-key override of 0 is unlimited.
	unl, _ := f.newKey(`{"name":"free","rateLimitPerMin":0}`)
	m = mustStatus(t, f.get("/keys/rate-limit-status?key="+unl), 200)
	if g := m["global"].(map[string]any); g["limit"] != 0.0 || g["remaining"] != nil {
		t.Errorf("unlimited = %v", g)
	}
	errBody(t, f.get("/keys/rate-limit-status?key=ghost"), 404, CodeNotFound, "key")

	nolim := newFixture(t, func(o *Options) { o.Limiter = nil })
	id2, _ := nolim.newKey(`{"name":"x"}`)
	errBody(t, nolim.get("/keys/rate-limit-status?key="+id2), 503, CodeUnavailable, "")
}

func TestQuotaStatus(t *testing.T) {
	f := newFixture(t)
	id, _ := f.newKey(`{"name":"q","credits":100,"quota":{"dailyCallLimit":10,"dailyCreditLimit":50}}`)
	plain, _ := f.newKey(`{"name":"p","credits":100}`)
	ctx := context.Background()
	k, _, _ := f.st.GetKey(ctx, id)
	for i := range 2 {
		if _, err := f.st.Reserve(ctx, store.Reservation{KeyID: id, CallID: fmt.Sprint("c", i),
			Items: []store.Item{{Tool: "search", Amount: 4}}, Limits: f.policy.Limits(k), Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	m := mustStatus(t, f.get("/keys/quota-status?key="+id), 200)
	if m["quotaSource"] != "per-key" {
		t.Fatalf("source = %v", m["quotaSource"])
	}
	d := m["daily"].(map[string]any)
	want := "map[callsLimit:10 callsRemaining:8 callsUsed:2 creditsLimit:50 creditsRemaining:42 creditsUsed:8 resetDay:2026-03-14 resetsAt:2026-03-15T00:00:00.000Z]"
	if fmt.Sprint(d) != want {
		t.Errorf("daily = %v", d)
	}
	mo := m["monthly"].(map[string]any)
	if mo["callsRemaining"] != nil || mo["callsUsed"] != 2.0 || mo["resetMonth"] != "2026-03" {
		t.Errorf("monthly = %v", mo)
	}
	// The next day starts from zero.
	f.clock.Add(24 * time.Hour)
	d = mustStatus(t, f.get("/keys/quota-status?key="+id), 200)["daily"].(map[string]any)
	if d["callsUsed"] != 0.0 || d["callsRemaining"] != 10.0 {
		t.Errorf("next day = %v", d)
	}
	if m := mustStatus(t, f.get("/keys/quota-status?key="+plain), 200); m["quotaSource"] != "none" {
		t.Errorf("no quota: %v", m["quotaSource"])
	}
	f.policy = policy.MustNew(policy.Settings{GlobalQuota: store.Quota{MonthlyCalls: 1000}})
	if m := mustStatus(t, f.get("/keys/quota-status?key="+plain), 200); m["quotaSource"] != "global" {
		t.Errorf("global quota: %v", m["quotaSource"])
	}
}

func TestBalance(t *testing.T) {
	f := newFixture(t)
	id, secret := f.newKey(`{"name":"self","credits":500,"spendingLimit":300,"allowedTools":["search"],"expiresIn":3600,
		"quota":{"dailyCallLimit":10}}`)
	ctx := context.Background()
	k, _, _ := f.st.GetKey(ctx, id)
	if _, err := f.st.Reserve(ctx, store.Reservation{KeyID: id, CallID: "c1", Items: []store.Item{{Tool: "search", Amount: 150}},
		Limits: f.policy.Limits(k), Now: t0}); err != nil {
		t.Fatal(err)
	}
	for _, hdr := range [][]string{{"X-API-Key", secret}, {"Authorization", "Bearer " + secret}} {
		m := mustStatus(t, f.req("GET", "/balance", "", "", hdr...), 200)
		want := map[string]any{"id": id, "credits": 350.0, "totalSpent": 150.0, "totalCalls": 1.0, "spendingLimit": 300.0,
			"remainingBudget": 150.0, "expiresAt": "2026-03-14T13:00:00.000Z", "expired": false, "rateLimitPerMin": 60.0,
			"lastUsedAt": "2026-03-14T12:00:00.000Z"}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}
		q := m["quota"].(map[string]any)
		if q["source"] != "per-key" || q["daily"].(map[string]any)["callsRemaining"] != 9.0 {
			t.Errorf("quota = %v", q)
		}
		if fmt.Sprint(m["allowedTools"]) != "[search]" {
			t.Errorf("allowedTools = %v", m["allowedTools"])
		}
	}
	errBody(t, f.req("GET", "/balance", "", ""), 401, CodeUnauthorized, "")
	errBody(t, f.req("GET", "/balance", "", "", "Authorization", "Basic xyz"), 401, CodeUnauthorized, "")
	mustStatus(t, f.post("/keys/suspend", `{"key":"`+id+`"}`), 200)
	if m := mustStatus(t, f.req("GET", "/balance", "", "", "X-API-Key", secret), 200); m["suspended"] != true {
		t.Errorf("suspended key balance = %v", m)
	}
}
