package admin

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

// wantRoutes is the admin API: every endpoint and its least role.
var wantRoutes = map[string]store.AdminRole{
	"POST /keys":                  store.RoleAdmin,
	"GET /keys":                   store.RoleViewer,
	"GET /keys/stats":             store.RoleViewer,
	"POST /keys/search":           store.RoleAdmin,
	"POST /keys/revoke":           store.RoleAdmin,
	"POST /keys/suspend":          store.RoleAdmin,
	"POST /keys/resume":           store.RoleAdmin,
	"POST /keys/rotate":           store.RoleAdmin,
	"POST /keys/clone":            store.RoleAdmin,
	"POST /keys/acl":              store.RoleAdmin,
	"POST /keys/expiry":           store.RoleAdmin,
	"POST /keys/quota":            store.RoleAdmin,
	"POST /limits":                store.RoleAdmin,
	"POST /keys/tags":             store.RoleAdmin,
	"POST /keys/ip":               store.RoleAdmin,
	"POST /keys/alias":            store.RoleAdmin,
	"POST /topup":                 store.RoleAdmin,
	"POST /keys/transfer":         store.RoleAdmin,
	"GET /keys/credit-history":    store.RoleViewer,
	"POST /keys/bulk":             store.RoleAdmin,
	"GET /keys/export":            store.RoleAdmin,
	"POST /keys/import":           store.RoleAdmin,
	"GET /keys/usage":             store.RoleViewer,
	"GET /usage":                  store.RoleViewer,
	"GET /status":                 store.RoleViewer,
	"GET /keys/rate-limit-status": store.RoleViewer,
	"GET /keys/quota-status":      store.RoleViewer,
	"GET /balance":                RoleAPIKey,
	"POST /admin/keys":            store.RoleSuperAdmin,
	"GET /admin/keys":             store.RoleSuperAdmin,
	"POST /admin/keys/revoke":     store.RoleSuperAdmin,
	"GET /audit":                  store.RoleViewer,
	"GET /audit/export":           store.RoleViewer,
	"GET /audit/stats":            store.RoleViewer,
	"GET /admin/events":           store.RoleViewer,
	"GET /admin/backup":           store.RoleSuperAdmin,
	"POST /admin/restore":         store.RoleSuperAdmin,
	"GET /admin/circuit":          store.RoleViewer,
	"POST /admin/circuit":         store.RoleAdmin,
	"GET /admin/concurrency":      store.RoleViewer,
	"POST /admin/concurrency":     store.RoleAdmin,
	"GET /admin/cache":            store.RoleViewer,
	"DELETE /admin/cache":         store.RoleAdmin,
	"GET /admin/tool-aliases":     store.RoleViewer,
	"POST /admin/tool-aliases":    store.RoleAdmin,
	"DELETE /admin/tool-aliases":  store.RoleAdmin,
}

func TestRouteTable(t *testing.T) {
	f := newFixture(t)
	got := map[string]store.AdminRole{}
	for _, rt := range f.api.Routes() {
		id := rt.Method + " " + rt.Pattern
		t.Run(id, func(t *testing.T) {
			if _, dup := got[id]; dup {
				t.Fatal("route listed twice")
			}
			got[id] = rt.Role
			if rt.Method != "GET" && rt.Method != "POST" && rt.Method != "DELETE" {
				t.Errorf("method %q", rt.Method)
			}
			if !strings.HasPrefix(rt.Pattern, "/") || strings.ContainsAny(rt.Pattern, " {") {
				t.Errorf("pattern %q", rt.Pattern)
			}
			if rt.Role != RoleAPIKey && roleRank(rt.Role) == 0 {
				t.Errorf("role %q is not an admin role", rt.Role)
			}
			// Viewers may only read: every write needs admin or more.
			if rt.Method != "GET" && rt.Role != RoleAPIKey && roleRank(rt.Role) < roleRank(store.RoleAdmin) {
				t.Errorf("%s is open to viewers", id)
			}
			if rt.Handler == nil || rt.Doc.Summary == "" || rt.Doc.Tag == "" || rt.Doc.Response == nil {
				t.Errorf("incomplete route: handler %v, doc %+v", rt.Handler != nil, rt.Doc)
			}
			if rt.Method == "POST" && rt.Doc.Request == nil {
				t.Error("POST route without a request schema")
			}
		})
	}
	for id, role := range wantRoutes {
		if g, ok := got[id]; !ok {
			t.Errorf("missing route %s", id)
		} else if g != role {
			t.Errorf("%s: role %q, want %q", id, g, role)
		}
	}
	for id := range got {
		if _, ok := wantRoutes[id]; !ok {
			t.Errorf("unexpected route %s (add it to wantRoutes)", id)
		}
	}
}

// TestRoleEnforcement walks every route of the table with no key, a wrong
// key, and each role.
func TestRoleEnforcement(t *testing.T) {
	f := newFixture(t)
	_, apiKey := f.newKey(`{"name":"holder","credits":5}`)
	roles := []struct {
		role   store.AdminRole
		secret string
	}{{store.RoleViewer, f.viewer}, {store.RoleAdmin, f.admin}, {store.RoleSuperAdmin, f.super}}
	for _, rt := range f.api.Routes() {
		t.Run(rt.Method+" "+rt.Pattern, func(t *testing.T) {
			body := ""
			if rt.Method == "POST" {
				body = "{}"
			}
			before := f.snapshot()
			if r := f.req(rt.Method, rt.Pattern, "", body); r.status != http.StatusUnauthorized {
				t.Fatalf("no credential: %d %s", r.status, r.body)
			} else {
				errBody(t, r, 401, CodeUnauthorized, "")
			}
			if rt.Role == RoleAPIKey {
				if r := f.req(rt.Method, rt.Pattern, f.super, body); r.status != http.StatusUnauthorized {
					t.Fatalf("admin key on an API-key route: %d", r.status)
				}
				if r := f.req(rt.Method, rt.Pattern, "", body, "X-API-Key", "pg_"+strings.Repeat("0", 48)); r.status != 401 {
					t.Fatalf("unknown API key: %d", r.status)
				}
				if r := f.req(rt.Method, rt.Pattern, "", body, "X-API-Key", apiKey); r.status == 401 || r.status == 403 {
					t.Fatalf("API key holder refused: %d %s", r.status, r.body)
				}
				f.unchanged(before)
				return
			}
			if r := f.req(rt.Method, rt.Pattern, "ak_"+strings.Repeat("f", 48), body); r.status != http.StatusUnauthorized {
				t.Fatalf("wrong admin key: %d", r.status)
			}
			if r := f.req(rt.Method, rt.Pattern, "", body, "X-API-Key", apiKey); r.status != http.StatusUnauthorized {
				t.Fatalf("API key on an admin route: %d", r.status)
			}
			for _, ro := range roles { // refusals first: they must leave the store as it was
				if roleRank(ro.role) >= roleRank(rt.Role) {
					continue
				}
				r := f.req(rt.Method, rt.Pattern, ro.secret, body)
				errBody(t, r, 403, CodeForbidden, "")
			}
			f.unchanged(before)
			for _, ro := range roles {
				if roleRank(ro.role) < roleRank(rt.Role) {
					continue
				}
				if r := f.req(rt.Method, rt.Pattern, ro.secret, body); r.status == 401 || r.status == 403 {
					t.Errorf("%s refused: %d %s", ro.role, r.status, r.body)
				}
			}
		})
	}
	// Refusals are audited with masked actors.
	failed := f.audit("admin.auth_failed")
	forbidden := f.audit("admin.forbidden")
	if len(failed) == 0 || len(forbidden) == 0 {
		t.Fatalf("audit: %d auth_failed, %d forbidden", len(failed), len(forbidden))
	}
	actors := map[string]bool{}
	for _, e := range failed {
		actors[e.Actor] = true
		if e.RequestID == "" {
			t.Errorf("auth_failed without a request id: %+v", e)
		}
	}
	if !actors["anonymous"] || !actors[keys.Mask("ak_"+strings.Repeat("f", 48))] {
		t.Errorf("auth_failed actors = %v", actors)
	}
	for _, e := range forbidden {
		if e.Actor != keys.Mask(f.viewer) && e.Actor != keys.Mask(f.admin) {
			t.Errorf("forbidden actor %q", e.Actor)
		}
	}
}

func TestRevokedAdminKeyRefused(t *testing.T) {
	f := newFixture(t)
	id, secret := f.addAdmin(store.RoleAdmin)
	mustStatus(t, f.req("POST", "/admin/keys/revoke", f.super, `{"id":"`+id+`"}`), 200)
	errBody(t, f.req("GET", "/keys", secret, ""), 401, CodeUnauthorized, "")
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	mounted := http.NewServeMux()
	f.api.Mount(mounted)
	mounted.HandleFunc("GET /mcp", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	tests := []struct {
		method, path, allow string
	}{
		{"DELETE", "/keys", "GET, HEAD, POST"},
		{"GET", "/topup", "POST"},
		{"PUT", "/admin/keys", "GET, HEAD, POST"},
		{"POST", "/status", "GET, HEAD"},
	}
	for _, h := range []struct {
		name string
		h    http.Handler
	}{{"Handler", f.h}, {"Mount", mounted}} {
		for _, tc := range tests {
			t.Run(h.name+" "+tc.method+" "+tc.path, func(t *testing.T) {
				w := httptest.NewRecorder()
				r := httptest.NewRequest(tc.method, tc.path, nil)
				r.Header.Set("X-Admin-Key", f.super)
				h.h.ServeHTTP(w, r)
				if w.Code != 405 || w.Header().Get("Allow") != tc.allow {
					t.Fatalf("status %d Allow %q, want 405 %q", w.Code, w.Header().Get("Allow"), tc.allow)
				}
				errBody(t, resp{status: w.Code, body: w.Body.String()}, 405, CodeMethodNotAllowed, "")
			})
		}
	}
	errBody(t, f.req("GET", "/nope", f.super, ""), 404, CodeNotFound, "")
	// The app's own routes share the mux.
	w := httptest.NewRecorder()
	mounted.ServeHTTP(w, httptest.NewRequest("GET", "/mcp", nil))
	if w.Code != 204 {
		t.Fatalf("GET /mcp on the shared mux: %d", w.Code)
	}
}

func TestBodyLimit(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBody = 1 << 10 })
	_, _ = f.newKey(`{"name":"a","credits":1}`)
	before := f.snapshot()
	big := `{"name":"` + strings.Repeat("x", 2<<10) + `","credits":1}`
	errBody(t, f.post("/keys", big), 413, CodePayloadTooLarge, "")
	// Without a Content-Length the limit trips while reading.
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/keys", struct{ *bytes.Reader }{bytes.NewReader([]byte(big))})
	r.ContentLength = -1
	r.Header.Set("X-Admin-Key", f.admin)
	f.h.ServeHTTP(w, r)
	errBody(t, resp{status: w.Code, body: w.Body.String()}, 413, CodePayloadTooLarge, "")
	f.unchanged(before)
}

func TestDefaultBodyLimitIsOneMiB(t *testing.T) {
	f := newFixture(t)
	before := f.snapshot()
	big := `{"name":"a","credits":1,"tags":{"x":"` + strings.Repeat("y", 1<<20) + `"}}`
	errBody(t, f.post("/keys", big), 413, CodePayloadTooLarge, "")
	f.unchanged(before)
}

func TestRequestIDAndObserve(t *testing.T) {
	f := newFixture(t)
	r := f.req("POST", "/keys", f.admin, `{"name":"a"}`, "X-Request-Id", "trace-123")
	mustStatus(t, r, 201)
	if r.header.Get("X-Request-Id") != "trace-123" {
		t.Fatalf("request id header %q", r.header.Get("X-Request-Id"))
	}
	evs := f.audit("key.created")
	if len(evs) != 1 || evs[0].RequestID != "trace-123" || evs[0].Actor != keys.Mask(f.admin) || evs[0].KeyMask == "" {
		t.Fatalf("audit = %+v", evs)
	}
	r = f.get("/keys")
	if id := r.header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") || len(id) != 20 {
		t.Fatalf("generated request id %q", id)
	}
	f.mu.Lock()
	obs := slices.Clone(f.observed)
	f.mu.Unlock()
	if len(obs) != 2 || obs[0].Pattern != "/keys" || obs[0].Status != 201 || obs[0].Actor != keys.Mask(f.admin) ||
		obs[1].Method != "GET" || obs[1].Status != 200 {
		t.Fatalf("observations = %+v", obs)
	}
}

func TestStoreFailureIsGeneric(t *testing.T) {
	f := newFixture(t)
	f.closed = true
	f.st.Close()
	r := f.get("/keys")
	if r.status != 503 && r.status != 500 {
		t.Fatalf("status %d", r.status)
	}
	if strings.Contains(r.body, "closed") || strings.Contains(r.body, "sqlite") {
		t.Fatalf("store details leaked: %s", r.body)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, r.header.Get("X-Request-Id")) || !strings.Contains(logs, "closed") {
		t.Fatalf("the log lacks the request id or the cause: %s", logs)
	}
	if strings.Contains(logs, f.super) || strings.Contains(logs, f.admin) || strings.Contains(logs, f.viewer) {
		t.Fatal("an admin secret is in the log")
	}
}

// TestAuditTrail runs one of each write and checks its audit event: the
// acting admin key's mask, the request id, the target key's mask.
func TestAuditTrail(t *testing.T) {
	f := newFixture(t)
	f.newKey(`{"name":"a","credits":100,"alias":"aud"}`)
	other, _ := f.newKey(`{"name":"b"}`)
	writes := []struct{ typ, path, body string }{
		{"key.topup", "/topup", `{"key":"aud","credits":5}`},
		{"key.acl_updated", "/keys/acl", `{"key":"aud","allowedTools":["x"]}`},
		{"key.expiry_updated", "/keys/expiry", `{"key":"aud","expiresIn":60}`},
		{"key.quota_updated", "/keys/quota", `{"key":"aud","dailyCallLimit":3}`},
		{"key.limit_updated", "/limits", `{"key":"aud","spendingLimit":9}`},
		{"key.tags_updated", "/keys/tags", `{"key":"aud","tags":{"a":"b"}}`},
		{"key.ip_updated", "/keys/ip", `{"key":"aud","ipAllowlist":["::1"]}`},
		{"key.alias_updated", "/keys/alias", `{"key":"aud","alias":"aud2"}`},
		{"credit.transfer", "/keys/transfer", `{"from":"aud2","to":"` + other + `","credits":1}`},
		{"key.suspended", "/keys/suspend", `{"key":"aud2"}`},
		{"key.resumed", "/keys/resume", `{"key":"aud2"}`},
		{"key.cloned", "/keys/clone", `{"key":"aud2"}`},
		{"key.rotated", "/keys/rotate", `{"key":"aud2"}`},
		{"key.revoked", "/keys/revoke", `{"key":"` + other + `"}`},
		{"key.imported", "/keys/import", `{"keys":[{"hash":"` + strings.Repeat("c", 64) + `"}]}`},
		{"key.created", "/keys/bulk", `{"operations":[{"action":"create"}]}`},
	}
	for i, w := range writes {
		rid := "rid-" + w.typ
		r := f.req("POST", w.path, f.admin, w.body, "X-Request-Id", rid)
		if r.status/100 != 2 {
			t.Fatalf("%s: %d %s", w.path, r.status, r.body)
		}
		evs := f.audit(w.typ)
		ev := evs[len(evs)-1]
		if ev.RequestID != rid || ev.Actor != keys.Mask(f.admin) || ev.KeyMask == "" || ev.Metadata["keyId"] == nil {
			t.Errorf("%d %s: event %+v", i, w.typ, ev)
		}
	}
	r := f.req("POST", "/admin/keys", f.super, `{"name":"x"}`, "X-Request-Id", "rid-admin")
	mustStatus(t, r, 201)
	if ev := f.audit("admin_key.created"); len(ev) != 1 || ev[0].RequestID != "rid-admin" || ev[0].Actor != keys.Mask(f.super) {
		t.Errorf("admin_key.created = %+v", ev)
	}
}
