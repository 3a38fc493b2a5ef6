package admin

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/backup"
	"github.com/paygate/paygate/internal/keys"
)

// backupOf downloads a backup from f as super_admin.
func backupOf(t *testing.T, f *fixture, query string) string {
	t.Helper()
	r := f.req("GET", "/admin/backup"+query, f.super, "")
	if r.status != 200 || !strings.Contains(r.header.Get("Content-Disposition"), "paygate-backup-") {
		t.Fatalf("backup: %d %s", r.status, r.body)
	}
	return r.body
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	src := newFixture(t)
	id, secret := src.newKey(`{"name":"roundtrip","credits":500,"alias":"rt","tags":{"plan":"pro"}}`)
	mustStatus(t, src.post("/topup", `{"key":"rt","credits":25}`), 200)
	other, _ := src.newKey(`{"name":"other","credits":40}`)
	mustStatus(t, src.post("/keys/transfer", `{"from":"rt","to":"`+other+`","credits":15}`), 200)
	body := backupOf(t, src, "")
	snap, info, err := backup.Decode(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the download does not decode: %v", err)
	}
	if len(snap.Keys) != 2 || info.Stats.AdminKeys != 3 || snap.Audit != nil {
		t.Fatalf("backup holds %d keys, %+v", len(snap.Keys), info.Stats)
	}
	if ev := src.audit("backup.created"); len(ev) != 1 || ev[0].Metadata["checksum"] != info.Checksum {
		t.Fatalf("backup.created = %+v", ev)
	}
	if strings.Contains(body, secret) {
		t.Fatal("the backup holds a secret")
	}

	dst := newFixture(t)
	dst.newKey(`{"name":"goes away","credits":1}`)
	r := dst.req("POST", "/admin/restore?mode=full&dryRun=true", dst.super, body)
	m := mustStatus(t, r, 200)
	if m["dryRun"] != true || m["restoredAt"] != nil {
		t.Fatalf("dry run %s", r.body)
	}
	before := dst.snapshot()
	dst.unchanged(before)

	r = dst.req("POST", "/admin/restore?mode=full", dst.super, body)
	m = mustStatus(t, r, 200)
	res := m["results"].(map[string]any)
	if m["success"] != true || m["mode"] != "full" || res["keys"].(map[string]any)["imported"] != 2.0 ||
		res["keys"].(map[string]any)["removed"] != 1.0 || m["backup"].(map[string]any)["checksum"] != info.Checksum {
		t.Fatalf("restore: %s", r.body)
	}
	// The key authenticates with its old secret; balances and ledger match.
	k, err := dst.st.LookupHash(context.Background(), keys.Hash(secret))
	if err != nil || k.ID != id || k.Alias != "rt" || k.Tags["plan"] != "pro" {
		t.Fatalf("restored key %+v, %v", k, err)
	}
	for _, kid := range []string{id, other} {
		_, a1, _ := src.st.GetKey(context.Background(), kid)
		_, a2, _ := dst.st.GetKey(context.Background(), kid)
		if a1.Balance != a2.Balance || a1.Spent != a2.Spent {
			t.Fatalf("key %s: balance %d/%d", kid, a1.Balance, a2.Balance)
		}
	}
	if err := dst.st.Verify(context.Background()); err != nil {
		t.Fatalf("restored store does not reconcile: %v", err)
	}
	// The operator's key survives a full restore; the backup's keys came in.
	mustStatus(t, dst.req("GET", "/admin/keys", dst.super, ""), 200)
	mustStatus(t, dst.req("GET", "/admin/keys", src.super, ""), 200)
	if ev := dst.audit("backup.restored"); len(ev) != 1 || ev[0].Metadata["mode"] != "full" {
		t.Fatalf("backup.restored = %+v", ev)
	}
}

func TestRestoreRefusesAndChangesNothing(t *testing.T) {
	src := newFixture(t)
	src.newKey(`{"name":"a","credits":100,"alias":"taken"}`)
	good := backupOf(t, src, "?include=audit")
	if !strings.Contains(good, `"audit": [`) {
		t.Fatal("include=audit did not include the audit trail")
	}

	dst := newFixture(t)
	dst.newKey(`{"name":"mine","credits":7,"alias":"taken"}`)
	before := dst.snapshot()
	cases := []struct {
		name, query, body, field, want string
	}{
		{"corrupted checksum", "?mode=merge", strings.Replace(good, `"checksum": "sha256:`, `"checksum": "sha256:0`, 1), "backup", "checksum mismatch"},
		{"edited balance", "?mode=full", strings.Replace(good, `"balance":100`, `"balance":1000`, 1), "backup", "checksum mismatch"},
		{"truncated", "?mode=full", good[:len(good)/3], "backup", "truncated"},
		{"not a backup", "?mode=full", `{"keys":[]}`, "backup", "not a paygate backup"},
		{"empty body", "?mode=full", "", "backup", "not a paygate backup"},
		{"conflicting alias", "?mode=merge", good, "backup", "belongs to key"},
		{"bad mode", "?mode=replace", good, "mode", "must be one of"},
		{"bad dryRun", "?dryRun=maybe", good, "dryRun", "true or false"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dst.req("POST", "/admin/restore"+tc.query, dst.super, tc.body)
			errBody(t, r, http.StatusBadRequest, CodeBadRequest, tc.field)
			if !strings.Contains(r.body, tc.want) {
				t.Fatalf("error %s does not mention %q", r.body, tc.want)
			}
			dst.unchanged(before)
		})
	}
	if len(dst.audit("backup.restored")) != 0 {
		t.Fatal("a refused restore was audited as restored")
	}
}

func TestBackupRoles(t *testing.T) {
	f := newFixture(t)
	body := backupOf(t, f, "")
	errBody(t, f.req("GET", "/admin/backup", f.admin, ""), http.StatusForbidden, CodeForbidden, "")
	errBody(t, f.req("GET", "/admin/backup", f.viewer, ""), http.StatusForbidden, CodeForbidden, "")
	errBody(t, f.req("POST", "/admin/restore", f.admin, body), http.StatusForbidden, CodeForbidden, "")
	errBody(t, f.req("GET", "/admin/backup?include=usage", f.super, ""), http.StatusBadRequest, CodeBadRequest, "include")
}

// TestRestoreBodyLimit: a restore body may exceed the API's usual limit.
func TestRestoreBodyLimit(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBody = 1024 })
	for i := range 20 {
		f.newKey(`{"name":"k` + fmtInt(int64(i)) + `","credits":1}`)
	}
	body := backupOf(t, f, "")
	if len(body) <= 1024 {
		t.Fatalf("backup of %d bytes is too small for this test", len(body))
	}
	mustStatus(t, f.req("POST", "/admin/restore?mode=merge", f.super, body), 200)
	errBody(t, f.req("POST", "/keys", f.admin, `{"name":"`+strings.Repeat("x", 2000)+`"}`), http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "")
}
