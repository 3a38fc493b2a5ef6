package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// moveMoney gives a gateway keys whose ledgers hold every kind of line a
// backup must carry: grants, charges, a top-up and a transfer.
func moveMoney(t *testing.T, g *gateway) (k1, k2 string) {
	t.Helper()
	k1 = g.createKey(100, map[string]any{"alias": "alpha", "tags": map[string]string{"plan": "pro"}})
	k2 = g.createKey(50, nil)
	for i := range 3 {
		if r := g.auditCall(k1, ""); r.Error != nil {
			t.Fatalf("call %d: %+v", i, r.Error)
		}
	}
	if code := g.admin("POST", "/topup", map[string]any{"key": "alpha", "credits": 7}, nil); code != 200 {
		t.Fatalf("topup: %d", code)
	}
	if code := g.admin("POST", "/keys/transfer", map[string]any{"from": k1, "to": k2, "credits": 10}, nil); code != 200 {
		t.Fatalf("transfer: %d", code)
	}
	return k1, k2
}

// TestBackupRestoreThroughAPI: GET /admin/backup on one gateway, POST
// /admin/restore on a fresh one. A corrupted backup is refused with 400
// and changes nothing; a good one restores keys that authenticate with
// their old secrets, the same balances and a ledger that reconciles.
func TestBackupRestoreThroughAPI(t *testing.T) {
	src := startGateway(t, "--server", auditEcho(t), "--rate-limit", "0")
	k1, k2 := moveMoney(t, src)
	want := map[string]keyState{k1: src.keyState(k1), k2: src.keyState(k2)}

	code, backup, hdr := src.fetch("GET", "/admin/backup", testAdminKey, nil)
	if code != 200 || !strings.Contains(hdr.Get("Content-Disposition"), "paygate-backup-") {
		t.Fatalf("GET /admin/backup: %d %s", code, backup)
	}
	var doc struct {
		Format   string `json:"format"`
		Version  int    `json:"version"`
		Checksum string `json:"checksum"`
		Data     struct {
			Keys   []map[string]any `json:"keys"`
			Ledger []map[string]any `json:"ledger"`
		} `json:"data"`
	}
	if err := json.Unmarshal(backup, &doc); err != nil || doc.Format != "paygate-backup" || doc.Version != 1 ||
		!strings.HasPrefix(doc.Checksum, "sha256:") || len(doc.Data.Keys) != 2 || len(doc.Data.Ledger) != 8 {
		t.Fatalf("backup document: %v %+v", err, doc)
	}
	if bytes.Contains(backup, []byte(k1)) || bytes.Contains(backup, []byte(k2)) {
		t.Fatal("the backup holds a secret")
	}

	dst := startGateway(t, "--server", auditEcho(t), "--rate-limit", "0")
	doomed := dst.createKey(9, nil)
	before := dst.keyList()
	refused := func(name string, body []byte, want string) {
		t.Helper()
		code, resp, _ := dst.fetch("POST", "/admin/restore?mode=full", testAdminKey, body)
		var e struct{ Error, Code, Field string }
		_ = json.Unmarshal(resp, &e)
		if code != http.StatusBadRequest || e.Code != "bad_request" || e.Field != "backup" || !strings.Contains(e.Error, want) {
			t.Fatalf("%s: %d %s", name, code, resp)
		}
		if dst.keyList() != before {
			t.Fatalf("%s changed the store", name)
		}
	}
	refused("corrupted checksum", bytes.Replace(backup, []byte(`"checksum": "sha256:`), []byte(`"checksum": "sha256:ff`), 1), "checksum mismatch")
	refused("edited balance", bytes.Replace(backup, []byte(`"balance":94`), []byte(`"balance":9400`), 1), "checksum mismatch")
	refused("truncated", backup[:len(backup)/2], "truncated")
	if code, resp, _ := dst.fetch("POST", "/admin/restore?mode=full&dryRun=true", testAdminKey, backup); code != 200 ||
		!strings.Contains(string(resp), `"dryRun":true`) || dst.keyList() != before {
		t.Fatalf("dry run: %d %s", code, resp)
	}

	code, resp, _ := dst.fetch("POST", "/admin/restore?mode=full", testAdminKey, backup)
	if code != 200 || !strings.Contains(string(resp), `"imported":2`) || !strings.Contains(string(resp), `"removed":1`) {
		t.Fatalf("restore: %d %s", code, resp)
	}
	for k, w := range want {
		got := dst.keyState(k) // also checks that the ledger reconciles
		if got.Balance != w.Balance || strings.Join(got.Entries, "\n") != strings.Join(w.Entries, "\n") {
			t.Fatalf("key %s after restore:\n%+v\nwant\n%+v", k[:7], got, w)
		}
	}
	// The old secret works, and charges as before; the alias came along;
	// the key the full restore replaced is gone.
	if r := dst.auditCall(k1, ""); r.Error != nil {
		t.Fatalf("restored key refused: %+v", r.Error)
	}
	if b := dst.balance(k1); b != want[k1].Balance-1 {
		t.Fatalf("balance after a call %d, want %d", b, want[k1].Balance-1)
	}
	if code := dst.admin("POST", "/topup", map[string]any{"key": "alpha", "credits": 1}, nil); code != 200 {
		t.Fatalf("alias after restore: %d", code)
	}
	if r := dst.auditCall(doomed, ""); r.reason() != "invalid_api_key" {
		t.Fatalf("a key the full restore removed still works: %+v", r)
	}
	if p := dst.audit("?types=backup.restored"); p.Total != 1 || p.Events[0].Metadata["mode"] != "full" {
		t.Fatalf("backup.restored: %+v", p)
	}
}

// TestBackupRestoreCLI: paygate backup and paygate restore on a stopped
// gateway's database; both refuse a database a running gateway holds.
func TestBackupRestoreCLI(t *testing.T) {
	dir := t.TempDir()
	srcDB, dstDB, file := filepath.Join(dir, "src.db"), filepath.Join(dir, "dst.db"), filepath.Join(dir, "backup.json")
	src := startGateway(t, "--server", auditEcho(t), "--rate-limit", "0", "--state-file", srcDB)
	k1, k2 := moveMoney(t, src)
	want := map[string]keyState{k1: src.keyState(k1), k2: src.keyState(k2)}

	r := paygateCLI(t, dir, "backup", "--state-file", srcDB, "-o", file)
	if r.Code != 1 || !strings.Contains(r.Stderr, "in use by a running paygate (pid") || !strings.Contains(r.Stderr, "stop the gateway first") {
		t.Fatalf("backup of a running gateway: %+v", r)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a refused backup wrote a file")
	}
	src.stop()
	if r = paygateCLI(t, dir, "backup", "--state-file", srcDB, "-o", file); r.Code != 0 || !strings.Contains(r.Stderr, "2 keys, 8 ledger entries") {
		t.Fatalf("backup: %+v", r)
	}

	// A corrupted copy is refused before the database is touched.
	b, _ := os.ReadFile(file)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, bytes.Replace(b, []byte(`"balance":94`), []byte(`"balance":95`), 1), 0o600)
	if r = paygateCLI(t, dir, "restore", "--state-file", dstDB, "--mode", "full", bad); r.Code != 1 || !strings.Contains(r.Stderr, "checksum mismatch") {
		t.Fatalf("corrupted restore: %+v", r)
	}
	if _, err := os.Stat(dstDB); err == nil {
		t.Fatal("a refused restore created the database")
	}
	if r = paygateCLI(t, dir, "restore", "--state-file", dstDB, "--mode", "full", file); r.Code != 0 || !strings.Contains(r.Stdout, "keys 2 added") {
		t.Fatalf("restore: %+v", r)
	}

	dst := startGateway(t, "--server", auditEcho(t), "--rate-limit", "0", "--state-file", dstDB)
	for k, w := range want {
		if got := dst.keyState(k); got.Balance != w.Balance || strings.Join(got.Entries, "\n") != strings.Join(w.Entries, "\n") {
			t.Fatalf("key %s after restore:\n%+v\nwant\n%+v", k[:7], got, w)
		}
	}
	if r := dst.auditCall(k2, ""); r.Error != nil {
		t.Fatalf("restored key refused: %+v", r.Error)
	}
	if p := dst.audit("?types=backup.restored"); p.Total != 1 || p.Events[0].Actor != "cli" {
		t.Fatalf("backup.restored: %+v", p)
	}
	// The restored gateway is running now: restore refuses its database.
	if r = paygateCLI(t, dir, "restore", "--state-file", dstDB, "--mode", "merge", file); r.Code != 1 || !strings.Contains(r.Stderr, "in use") {
		t.Fatalf("restore into a running gateway: %+v", r)
	}
}
