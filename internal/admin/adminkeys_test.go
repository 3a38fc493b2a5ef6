package admin

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/keys"
)

func TestAdminKeys(t *testing.T) {
	f := newFixture(t)
	r := f.req("POST", "/admin/keys", f.super, `{"name":"ops","role":"viewer"}`)
	m := mustStatus(t, r, 201)
	secret := m["key"].(string)
	if !strings.HasPrefix(secret, "ak_") || m["role"] != "viewer" || m["keyMasked"] != keys.Mask(secret) || m["createdBy"] != keys.Mask(f.super) {
		t.Fatalf("created = %v", m)
	}
	id := m["id"].(string)
	// The new key works, with its role.
	mustStatus(t, f.req("GET", "/keys", secret, ""), 200)
	errBody(t, f.req("POST", "/keys", secret, `{}`), 403, CodeForbidden, "")

	var list []map[string]any
	r = f.req("GET", "/admin/keys", f.super, "")
	if err := jsonUnmarshal(mustRaw(t, r, 200), &list); err != nil || len(list) != 4 {
		t.Fatalf("list: %v %s", err, r.body)
	}
	for _, k := range list {
		if !strings.Contains(k["key"].(string), "...") {
			t.Fatalf("unmasked admin key in list: %v", k)
		}
	}
	if ev := f.audit("admin_key.created"); len(ev) != 1 || ev[0].Metadata["role"] != "viewer" {
		t.Fatalf("audit = %+v", ev)
	}

	before := f.snapshot()
	errBody(t, f.req("POST", "/admin/keys", f.super, `{"role":"root"}`), 400, CodeBadRequest, "role")
	errBody(t, f.req("POST", "/admin/keys", f.super, `{"name":5}`), 400, CodeBadRequest, "name")
	errBody(t, f.req("POST", "/admin/keys/revoke", f.super, `{"id":"`+f.superID+`"}`), 409, CodeConflict, "id")
	errBody(t, f.req("POST", "/admin/keys/revoke", f.super, `{"key":"`+f.super+`"}`), 409, CodeConflict, "key")
	errBody(t, f.req("POST", "/admin/keys/revoke", f.super, `{"id":"adm_0000000000000000"}`), 404, CodeNotFound, "id")
	errBody(t, f.req("POST", "/admin/keys/revoke", f.super, `{}`), 400, CodeBadRequest, "id")
	errBody(t, f.req("POST", "/admin/keys/revoke", f.admin, `{"id":"`+id+`"}`), 403, CodeForbidden, "")
	f.unchanged(before)

	m = mustStatus(t, f.req("POST", "/admin/keys/revoke", f.super, `{"key":"`+secret+`"}`), 200)
	if m["revoked"] != true || m["id"] != id {
		t.Fatalf("revoke = %v", m)
	}
	errBody(t, f.req("GET", "/keys", secret, ""), 401, CodeUnauthorized, "")
	errBody(t, f.req("POST", "/admin/keys/revoke", f.super, `{"id":"`+id+`"}`), 409, CodeConflict, "id")
	if len(f.audit("admin_key.revoked")) != 1 {
		t.Fatal("revocation not audited")
	}
}

// TestLastSuperAdmin: the last active super_admin cannot be revoked, even
// by another super_admin racing to revoke it.
func TestLastSuperAdmin(t *testing.T) {
	f := newFixture(t)
	m := mustStatus(t, f.req("POST", "/admin/keys", f.super, `{"name":"second","role":"super_admin"}`), 201)
	second, secondID := m["key"].(string), m["id"].(string)
	done := make(chan resp, 2)
	go func() { done <- f.req("POST", "/admin/keys/revoke", f.super, `{"id":"`+secondID+`"}`) }()
	go func() { done <- f.req("POST", "/admin/keys/revoke", second, `{"id":"`+f.superID+`"}`) }()
	r1, r2 := <-done, <-done
	codes := map[int]int{r1.status: 1}
	codes[r2.status]++
	if codes[200] != 1 || codes[409]+codes[401] != 1 {
		t.Fatalf("statuses %d (%s) and %d (%s)", r1.status, r1.body, r2.status, r2.body)
	}
	// Exactly one super_admin is left, and it cannot revoke itself.
	active := 0
	var list []map[string]any
	_ = jsonUnmarshal(mustRaw(t, f.req("GET", "/admin/keys", pickLive(r1, r2, f.super, second), ""), 200), &list)
	for _, k := range list {
		if k["role"] == "super_admin" && k["revoked"] == false {
			active++
		}
	}
	if active != 1 {
		t.Fatalf("%d active super_admins", active)
	}
}

// pickLive returns the super_admin secret that survived the race.
func pickLive(r1, r2 resp, first, second string) string {
	if r1.status == 200 && strings.Contains(r1.body, keys.Mask(second)) || r2.status == 200 && strings.Contains(r2.body, keys.Mask(second)) {
		return first
	}
	return second
}
