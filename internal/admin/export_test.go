package admin

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

// TestExportImportRoundTrip exports keys from one paygate and imports the
// document, as it is, into a fresh one: ids, hashes, configuration,
// balances and counters come across, and the old secrets work there.
func TestExportImportRoundTrip(t *testing.T) {
	src := newFixture(t)
	a, secretA := src.newKey(`{"name":"alpha","credits":1000,"allowedTools":["search"],"deniedTools":["rm"],
		"expiresIn":86400,"quota":{"dailyCallLimit":10,"monthlyCreditLimit":900},"spendingLimit":700,
		"tags":{"env":"prod"},"ipAllowlist":["10.0.0.0/8","::1"],"namespace":"prod","alias":"alpha","rateLimitPerMin":30}`)
	b, _ := src.newKey(`{"name":"beta","credits":50}`)
	c, _ := src.newKey(`{"name":"gamma","credits":5}`)
	mustStatus(t, src.post("/topup", `{"key":"`+a+`","credits":250}`), 200)
	if _, err := src.st.Reserve(context.Background(), store.Reservation{KeyID: a, CallID: "c1",
		Items: []store.Item{{Tool: "search", Amount: 40}}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, src.post("/keys/suspend", `{"key":"`+b+`"}`), 200)
	mustStatus(t, src.post("/keys/revoke", `{"key":"`+c+`"}`), 200)

	exported := mustRaw(t, src.get("/keys/export"), 200)
	var doc exportDoc
	if err := json.Unmarshal([]byte(exported), &doc); err != nil || doc.Count != 3 || doc.Format != exportFormat {
		t.Fatalf("export: %v %+v", err, doc)
	}
	for _, e := range doc.Keys {
		if e.ID == a && (e.Hash != fmt.Sprintf("%x", keys.Hash(secretA)) || e.KeyMasked != keys.Mask(secretA) || e.Credits != 1210) {
			t.Fatalf("export of alpha: %+v", e)
		}
	}

	dst := newFixture(t)
	m := mustStatus(t, dst.post("/keys/import", exported), 200)
	if m["imported"] != 3.0 || m["errors"] != 0.0 || m["mode"] != "skip" {
		t.Fatalf("import = %v", m)
	}
	reexported := mustRaw(t, dst.get("/keys/export"), 200)
	var doc2 exportDoc
	_ = json.Unmarshal([]byte(reexported), &doc2)
	doc.ExportedAt, doc2.ExportedAt = "", ""
	j1, _ := json.Marshal(doc)
	j2, _ := json.Marshal(doc2)
	if string(j1) != string(j2) {
		t.Fatalf("round trip differs:\n%s\n%s", j1, j2)
	}
	bal := mustStatus(t, dst.req("GET", "/balance", "", "", "X-API-Key", secretA), 200)
	if bal["id"] != a || bal["credits"] != 1210.0 || bal["totalSpent"] != 40.0 || bal["totalCalls"] != 1.0 {
		t.Fatalf("balance in the new instance = %v", bal)
	}
	if len(dst.audit("key.imported")) != 3 {
		t.Fatal("imports not audited")
	}
	// Importing again skips all three and changes nothing.
	before := dst.snapshot()
	m = mustStatus(t, dst.post("/keys/import", exported), 200)
	if m["skipped"] != 3.0 {
		t.Fatalf("second import = %v", m)
	}
	dst.unchanged(before)
	// Mode error refuses the whole request.
	var req map[string]any
	_ = json.Unmarshal([]byte(exported), &req)
	req["mode"] = "error"
	body, _ := json.Marshal(req)
	errBody(t, dst.post("/keys/import", string(body)), 409, CodeConflict, "keys[0]")
	dst.unchanged(before)
}

func TestExportFilters(t *testing.T) {
	f := newFixture(t)
	f.newKey(`{"name":"=cmd|' /C calc'!A0","credits":1,"namespace":"prod","allowedTools":["a","b"]}`)
	rev, _ := f.newKey(`{"name":"gone","namespace":"prod"}`)
	f.newKey(`{"name":"dev"}`)
	mustStatus(t, f.post("/keys/revoke", `{"key":"`+rev+`"}`), 200)
	m := mustStatus(t, f.get("/keys/export?activeOnly=true&namespace=prod"), 200)
	if m["count"] != 1.0 {
		t.Fatalf("filtered export = %v", m)
	}
	r := f.get("/keys/export?format=csv")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("csv export: %d %v", r.status, r.header)
	}
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][0] != "id" || rows[0][1] != "hash" {
		t.Fatalf("csv: %v %v", err, rows)
	}
	found := false
	for _, row := range rows[1:] {
		if row[14] == "a;b" {
			found = true
			if row[3] != "'=cmd|' /C calc'!A0" {
				t.Fatalf("formula not neutralized: %v", row)
			}
		}
	}
	if !found {
		t.Fatalf("csv rows = %v", rows)
	}
	errBody(t, f.get("/keys/export?format=xml"), 400, CodeBadRequest, "format")
	errBody(t, f.get("/keys/export?activeOnly=maybe"), 400, CodeBadRequest, "activeOnly")
}

func TestImportModes(t *testing.T) {
	f := newFixture(t)
	plain := "pg_" + strings.Repeat("ab", 24) // paygate-mcp export: plaintext secrets
	body := `{"keys":[{"key":"` + plain + `","name":"my-key","credits":500,"active":true,"tags":{}}],"mode":"skip"}`
	m := mustStatus(t, f.post("/keys/import", body), 200)
	res := m["results"].([]any)[0].(map[string]any)
	if m["imported"] != 1.0 || res["status"] != "imported" || res["key"] != keys.Mask(plain) {
		t.Fatalf("import = %v", m)
	}
	id := res["id"].(string)
	if bal := mustStatus(t, f.req("GET", "/balance", "", "", "X-API-Key", plain), 200); bal["credits"] != 500.0 {
		t.Fatalf("imported key balance = %v", bal)
	}
	// skip: the existing key is left alone.
	before := f.snapshot()
	m = mustStatus(t, f.post("/keys/import", strings.Replace(body, `"credits":500`, `"credits":9`, 1)), 200)
	if m["skipped"] != 1.0 {
		t.Fatalf("skip = %v", m)
	}
	f.unchanged(before)
	// overwrite: configuration replaced, balance set, id kept.
	m = mustStatus(t, f.post("/keys/import", `{"mode":"overwrite","keys":[{"key":"`+plain+`","name":"renamed","credits":42,"allowedTools":["x"]}]}`), 200)
	if m["overwritten"] != 1.0 {
		t.Fatalf("overwrite = %v", m)
	}
	k, acct, _ := f.st.GetKey(context.Background(), id)
	if k.Name != "renamed" || acct.Balance != 42 || fmt.Sprint(k.AllowedTools) != "[x]" {
		t.Fatalf("overwritten key %+v balance %d", k, acct.Balance)
	}
	// error mode: an invalid or existing key refuses everything.
	other := "pg_" + strings.Repeat("cd", 24)
	before = f.snapshot()
	errBody(t, f.post("/keys/import", `{"mode":"error","keys":[{"key":"`+other+`"},{"key":"`+plain+`"}]}`), 409, CodeConflict, "keys[1]")
	errBody(t, f.post("/keys/import", `{"mode":"error","keys":[{"key":"`+other+`"},{"key":"sk_live_123456789012"}]}`), 400, CodeBadRequest, "keys[1].key")
	f.unchanged(before)
	// skip mode: bad entries are reported, good ones imported.
	m = mustStatus(t, f.post("/keys/import", `{"keys":[
		{"key":"sk_live_123456789012"},
		{"key":"`+other+`","credits":-1},
		{"hash":"zz"},
		{"key":"`+other+`","name":"ok"},
		{"key":"`+other+`","name":"dup"},
		{"hash":"`+strings.Repeat("0", 64)+`"},
		{"hash":"`+strings.Repeat("0", 63)+`1","keyMasked":"pg_1234...abcd","id":"key_00000000000000aa","credits":3}
	]}`), 200)
	if m["imported"] != 2.0 || m["errors"] != 5.0 {
		t.Fatalf("mixed import = %v", m)
	}
	if strings.Contains(m2s(m), "sk_live_123456789012") {
		t.Fatal("an import result echoes a secret")
	}
	k, acct, err := f.st.GetKey(context.Background(), "key_00000000000000aa")
	if err != nil || k.Mask() != "pg_1234...abcd" || acct.Balance != 3 {
		t.Fatalf("hash import: %+v %v", k, err)
	}
	before = f.snapshot()
	many := make([]string, 1001)
	for i := range many {
		many[i] = `{"hash":"` + fmt.Sprintf("%064x", i+1) + `"}`
	}
	errBody(t, f.post("/keys/import", `{"keys":[`+strings.Join(many, ",")+`]}`), 400, CodeBadRequest, "keys")
	errBody(t, f.post("/keys/import", `{"keys":[]}`), 400, CodeBadRequest, "keys")
	errBody(t, f.post("/keys/import", `{"keys":[{"hash":"`+strings.Repeat("1", 64)+`"}],"mode":"merge"}`), 400, CodeBadRequest, "mode")
	errBody(t, f.post("/keys/import", `{"keys":[{"hash":"`+strings.Repeat("1", 64)+`"}],"version":2}`), 400, CodeBadRequest, "version")
	f.unchanged(before)
}

func m2s(m map[string]any) string { b, _ := json.Marshal(m); return string(b) }

func TestImportKeepsExpiredAndRevoked(t *testing.T) {
	f := newFixture(t)
	past := t0.Add(-time.Hour).Format(time.RFC3339)
	m := mustStatus(t, f.post("/keys/import", `{"keys":[
		{"hash":"`+strings.Repeat("a", 64)+`","expiresAt":"`+past+`","name":"old"},
		{"hash":"`+strings.Repeat("b", 64)+`","active":false,"name":"dead"}]}`), 200)
	if m["imported"] != 2.0 {
		t.Fatalf("import = %v", m)
	}
	s := mustStatus(t, f.get("/keys/stats"), 200)
	if s["expired"] != 1.0 || s["revoked"] != 1.0 {
		t.Fatalf("stats = %v", s)
	}
}
