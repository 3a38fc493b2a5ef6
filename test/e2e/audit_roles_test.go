package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestAdminKeyRoles: through the binary, a viewer may read but not write,
// an admin may write but not manage admin keys, no key may revoke itself,
// and two super_admins revoking each other at once cannot leave the
// gateway without one. Refusals are audited.
func TestAdminKeyRoles(t *testing.T) {
	g := startGateway(t, "--server", auditEcho(t))
	viewer, _ := g.newAdminKey("", "viewer")
	admin, _ := g.newAdminKey("", "admin")
	apiKey := g.createKey(5, nil)

	type call struct {
		who, method, path string
		body              any
		want              int
	}
	for _, c := range []call{
		{viewer, "GET", "/keys", nil, 200},
		{viewer, "GET", "/audit", nil, 200},
		{viewer, "GET", "/status", nil, 200},
		{viewer, "POST", "/keys", map[string]any{"name": "v"}, 403},
		{viewer, "POST", "/topup", map[string]any{"key": apiKey, "credits": 1}, 403},
		{viewer, "POST", "/keys/revoke", map[string]any{"key": apiKey}, 403},
		{viewer, "GET", "/admin/keys", nil, 403},
		{viewer, "GET", "/admin/backup", nil, 403},
		{admin, "POST", "/keys", map[string]any{"name": "a"}, 201},
		{admin, "POST", "/topup", map[string]any{"key": apiKey, "credits": 1}, 200},
		{admin, "GET", "/admin/keys", nil, 403},
		{admin, "POST", "/admin/keys", map[string]any{"name": "x", "role": "super_admin"}, 403},
		{admin, "POST", "/admin/keys/revoke", map[string]any{"key": viewer}, 403},
		{admin, "GET", "/admin/backup", nil, 403},
		{admin, "POST", "/admin/restore", map[string]any{}, 403},
	} {
		var body []byte
		if c.body != nil {
			body, _ = json.Marshal(c.body)
		}
		got, resp, _ := g.fetch(c.method, c.path, c.who, body)
		if got != c.want || got == 403 && !strings.Contains(string(resp), `"code":"forbidden"`) {
			role := map[string]string{viewer: "viewer", admin: "admin"}[c.who]
			t.Errorf("%s %s %s: %d %s, want %d", role, c.method, c.path, got, resp, c.want)
		}
	}
	var forbidden auditPage
	if code := g.adminAs(viewer, "GET", "/audit?types=admin.forbidden", nil, &forbidden); code != 200 || forbidden.Total != 10 {
		t.Errorf("admin.forbidden events: %d %d", code, forbidden.Total)
	}

	// No key revokes itself, whichever field names it.
	var e struct{ Error, Code string }
	if code := g.admin("POST", "/admin/keys/revoke", map[string]any{"key": testAdminKey}, &e); code != http.StatusConflict ||
		!strings.Contains(e.Error, "cannot revoke itself") {
		t.Fatalf("self revoke: %d %+v", code, e)
	}

	// Leave a single super_admin: S revokes the bootstrap key.
	s, _ := g.newAdminKey("", "super_admin")
	if code := g.adminAs(s, "POST", "/admin/keys/revoke", map[string]any{"key": testAdminKey}, nil); code != 200 {
		t.Fatalf("revoke the bootstrap key: %d", code)
	}
	if code := g.admin("GET", "/keys", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("a revoked admin key still works: %d", code)
	}
	// Then, round after round, the last super_admin creates a second one
	// and both revoke each other at the same moment: one wins; the other
	// is refused, as the last super_admin (409) or, if it came second,
	// as already revoked (401). One super_admin always remains.
	lastGuard := 0
	for round := 0; round < 20 && lastGuard < 2; round++ {
		s2, _ := g.newAdminKey(s, "super_admin")
		type res struct {
			code int
			msg  string
		}
		out := make([]res, 2)
		var wg sync.WaitGroup
		for i, p := range [][2]string{{s, s2}, {s2, s}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var e struct{ Error string }
				out[i].code = g.adminAs(p[0], "POST", "/admin/keys/revoke", map[string]any{"key": p[1]}, &e)
				out[i].msg = e.Error
			}()
		}
		wg.Wait()
		ok := 0
		for _, r := range out {
			switch {
			case r.code == 200:
				ok++
			case r.code == http.StatusConflict && strings.Contains(r.msg, "last active super_admin"):
				lastGuard++
			case r.code == http.StatusUnauthorized:
			default:
				t.Fatalf("round %d: %d %q", round, r.code, r.msg)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d revocations succeeded: %+v", round, ok, out)
		}
		alive := 0
		for _, k := range []string{s, s2} {
			if g.adminAs(k, "GET", "/admin/keys", nil, nil) == 200 {
				s, alive = k, alive+1
			}
		}
		if alive != 1 {
			t.Fatalf("round %d: %d super_admins left", round, alive)
		}
	}
	if lastGuard == 0 {
		t.Fatal("the last-super_admin guard never answered in 20 rounds of mutual revocation")
	}
}
