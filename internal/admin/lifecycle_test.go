package admin

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

// TestResolver: every "key" parameter takes an id, the secret or an alias.
func TestResolver(t *testing.T) {
	f := newFixture(t)
	id, secret := f.newKey(`{"name":"r","credits":1,"alias":"svc-1"}`)
	for _, ref := range []string{id, secret, "svc-1"} {
		m := mustStatus(t, f.post("/topup", `{"key":"`+ref+`","credits":1}`), 200)
		if m["id"] != id {
			t.Fatalf("ref resolved to %v", m["id"])
		}
	}
	for _, ref := range []string{"key_0000000000000000", "pg_" + strings.Repeat("a", 48), "nobody"} {
		before := f.snapshot()
		r := f.post("/topup", `{"key":"`+ref+`","credits":1}`)
		errBody(t, r, 404, CodeNotFound, "key")
		if strings.Contains(r.body, ref) {
			t.Fatalf("error echoes the reference: %s", r.body)
		}
		f.unchanged(before)
	}
	errBody(t, f.post("/topup", `{"credits":1}`), 400, CodeBadRequest, "key")
	errBody(t, f.get("/keys/usage"), 400, CodeBadRequest, "key")
}

func TestRevokeSuspendResume(t *testing.T) {
	f := newFixture(t)
	var changed []string
	f.api.changed = func(id string) { changed = append(changed, id) }
	id, secret := f.newKey(`{"name":"life","credits":10}`)
	bal := func() int { return f.req("GET", "/balance", "", "", "X-API-Key", secret).status }

	m := mustStatus(t, f.post("/keys/suspend", `{"key":"`+id+`","reason":"investigating abuse"}`), 200)
	if m["message"] != "Key suspended" || m["suspended"] != true || m["status"] != "suspended" {
		t.Fatalf("suspend = %v", m)
	}
	if ev := f.audit("key.suspended"); len(ev) != 1 || ev[0].Metadata["reason"] != "investigating abuse" || ev[0].KeyMask != keys.Mask(secret) {
		t.Fatalf("audit = %+v", ev)
	}
	// Admin operations still work on suspended keys.
	mustStatus(t, f.post("/topup", `{"key":"`+id+`","credits":5}`), 200)
	before := f.snapshot()
	errBody(t, f.post("/keys/suspend", `{"key":"`+id+`"}`), 409, CodeConflict, "key")
	errBody(t, f.post("/keys/suspend", `{"key":"`+id+`","reason":"`+strings.Repeat("r", 501)+`"}`), 400, CodeBadRequest, "reason")
	f.unchanged(before)

	m = mustStatus(t, f.post("/keys/resume", `{"key":"`+id+`"}`), 200)
	if m["message"] != "Key resumed" || m["suspended"] != false {
		t.Fatalf("resume = %v", m)
	}
	before = f.snapshot()
	errBody(t, f.post("/keys/resume", `{"key":"`+id+`"}`), 409, CodeConflict, "key")
	f.unchanged(before)

	if bal() != 200 {
		t.Fatal("active key refused at /balance")
	}
	m = mustStatus(t, f.post("/keys/revoke", `{"key":"`+id+`"}`), 200)
	if m["message"] != "Key revoked" || m["revoked"] != true {
		t.Fatalf("revoke = %v", m)
	}
	if bal() != 401 {
		t.Fatal("revoked key accepted at /balance")
	}
	before = f.snapshot()
	for _, path := range []string{"/keys/revoke", "/keys/suspend", "/keys/resume", "/keys/rotate", "/keys/clone"} {
		errBody(t, f.post(path, `{"key":"`+id+`"}`), 409, CodeConflict, "key")
	}
	errBody(t, f.post("/topup", `{"key":"`+id+`","credits":1}`), 409, CodeConflict, "key")
	errBody(t, f.post("/keys/tags", `{"key":"`+id+`","tags":{"a":"b"}}`), 409, CodeConflict, "key")
	f.unchanged(before)
	for _, typ := range []string{"key.revoked", "key.resumed", "key.topup"} {
		if len(f.audit(typ)) != 1 {
			t.Errorf("%s events: %d", typ, len(f.audit(typ)))
		}
	}
	if len(changed) < 4 || changed[len(changed)-1] != id {
		t.Fatalf("OnKeyChanged calls = %v", changed)
	}
}

func TestRotate(t *testing.T) {
	f := newFixture(t)
	id, old := f.newKey(`{"name":"rot","credits":500,"allowedTools":["search"],"alias":"rot"}`)
	m := mustStatus(t, f.post("/keys/rotate", `{"key":"rot"}`), 200)
	newKey := m["newKey"].(string)
	if !secretRE.MatchString(newKey) || newKey == old || m["id"] != id || m["credits"] != 500.0 ||
		m["keyMasked"] != keys.Mask(newKey) || m["oldKeyMasked"] != keys.Mask(old) || m["key"] != keys.Mask(newKey) {
		t.Fatalf("rotate = %v", m)
	}
	if fmt.Sprint(m["allowedTools"]) != "[search]" || m["alias"] != "rot" {
		t.Fatalf("configuration lost: %v", m)
	}
	if r := f.req("GET", "/balance", "", "", "X-API-Key", old); r.status != 401 {
		t.Fatalf("old secret still works: %d", r.status)
	}
	b := mustStatus(t, f.req("GET", "/balance", "", "", "Authorization", "Bearer "+newKey), 200)
	if b["id"] != id || b["credits"] != 500.0 {
		t.Fatalf("balance = %v", b)
	}
	ev := f.audit("key.rotated")
	if len(ev) != 1 || ev[0].Metadata["oldKeyMasked"] != keys.Mask(old) || ev[0].Metadata["newKeyMasked"] != keys.Mask(newKey) {
		t.Fatalf("audit = %+v", ev)
	}
	before := f.snapshot()
	errBody(t, f.post("/keys/rotate", `{"key":"`+old+`"}`), 404, CodeNotFound, "key")
	errBody(t, f.post("/keys/rotate", `{"key":"rot","extra":1}`), 400, CodeBadRequest, "extra")
	f.unchanged(before)
}

func TestClone(t *testing.T) {
	f := newFixture(t)
	src, srcSecret := f.newKey(`{"name":"source","credits":200,"allowedTools":["a"],"deniedTools":["b"],"expiresIn":600,
		"quota":{"dailyCallLimit":3},"spendingLimit":90,"tags":{"env":"prod"},"ipAllowlist":["10.0.0.1"],
		"namespace":"team","alias":"src","rateLimitPerMin":7}`)
	ctx := context.Background()
	// Give the source some usage, which the clone must not inherit.
	if _, err := f.st.Reserve(ctx, store.Reservation{KeyID: src, CallID: "c1", Items: []store.Item{{Tool: "a", Amount: 5}}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, f.post("/keys/suspend", `{"key":"src"}`), 200)

	m := mustStatus(t, f.post("/keys/clone", `{"key":"src"}`), 201)
	cloneSecret := m["key"].(string)
	if !secretRE.MatchString(cloneSecret) || cloneSecret == srcSecret || m["id"] == src || m["clonedFrom"] != src {
		t.Fatalf("clone = %v", m)
	}
	want := map[string]any{"name": "source-clone", "credits": 195.0, "totalSpent": 0.0, "totalCalls": 0.0,
		"suspended": false, "alias": nil, "namespace": "team", "spendingLimit": 90.0, "rateLimitPerMin": 7.0}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	for k, v := range map[string]string{"allowedTools": "[a]", "deniedTools": "[b]", "ipAllowlist": "[10.0.0.1]",
		"tags": "map[env:prod]", "expiresAt": "2026-03-14T12:10:00.000Z"} {
		if fmt.Sprint(m[k]) != v {
			t.Errorf("%s = %v, want %s", k, m[k], v)
		}
	}
	m = mustStatus(t, f.post("/keys/clone", `{"key":"src","name":"staging","credits":50,"namespace":"Staging","tags":{"env":"stg"},"alias":"stg"}`), 201)
	if m["name"] != "staging" || m["credits"] != 50.0 || m["namespace"] != "staging" || fmt.Sprint(m["tags"]) != "map[env:stg]" || m["alias"] != "stg" {
		t.Fatalf("clone with overrides = %v", m)
	}
	if len(f.audit("key.cloned")) != 2 {
		t.Fatal("clone not audited")
	}
	before := f.snapshot()
	errBody(t, f.post("/keys/clone", `{"key":"src","alias":"stg"}`), 409, CodeConflict, "alias")
	errBody(t, f.post("/keys/clone", `{"key":"src","credits":-1}`), 400, CodeBadRequest, "credits")
	errBody(t, f.post("/keys/clone", `{"key":"src","allowedTools":["x"]}`), 400, CodeBadRequest, "allowedTools")
	errBody(t, f.post("/keys/clone", `{"key":"nope"}`), 404, CodeNotFound, "key")
	f.unchanged(before)
}
