package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

func TestCreateKey(t *testing.T) {
	f := newFixture(t)
	r := f.post("/keys", `{"name":" agent one ","credits":100,"allowedTools":["search","fs:*"],"deniedTools":["rm"],
		"expiresIn":3600,"quota":{"dailyCallLimit":10,"monthlyCreditLimit":500},"spendingLimit":50,
		"tags":{"env":"prod"},"ipAllowlist":["10.0.0.0/8","2001:db8::1"," 192.168.1.7 "],"namespace":"Prod-EU","alias":"agent-1"}`)
	m := mustStatus(t, r, http.StatusCreated)
	secret := m["key"].(string)
	if !secretRE.MatchString(secret) || m["keyMasked"] != keys.Mask(secret) {
		t.Fatalf("key %q mask %q", secret, m["keyMasked"])
	}
	want := map[string]any{
		"name": "agent one", "credits": 100.0, "namespace": "prod-eu", "alias": "agent-1", "status": "active",
		"active": true, "spendingLimit": 50.0, "remainingBudget": 50.0, "totalSpent": 0.0,
		"expiresAt": "2026-03-14T13:00:00.000Z", "createdAt": "2026-03-14T12:00:00.000Z",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if got := fmt.Sprint(m["ipAllowlist"]); got != "[10.0.0.0/8 2001:db8::1 192.168.1.7]" {
		t.Errorf("ipAllowlist = %s", got)
	}
	if got := fmt.Sprint(m["quota"]); !strings.Contains(got, "dailyCallLimit:10") || !strings.Contains(got, "monthlyCreditLimit:500") {
		t.Errorf("quota = %s", got)
	}
	k, acct, err := f.st.GetKey(context.Background(), m["id"].(string))
	if err != nil || acct.Balance != 100 || k.Hash != keys.Hash(secret) || k.Alias != "agent-1" {
		t.Fatalf("stored key %+v %+v %v", k, acct, err)
	}
	es, _ := f.st.Entries(context.Background(), store.LedgerFilter{KeyID: k.ID})
	if len(es) != 1 || es[0].Kind != store.EntryGrant || es[0].Actor != keys.Mask(f.admin) {
		t.Fatalf("ledger = %+v", es)
	}
	// Listings never show the secret again (checked for every response at cleanup).
	f.get("/keys")
	f.get("/keys?namespace=prod-eu")
}

func TestCreateKeyRefusals(t *testing.T) {
	f := newFixture(t)
	f.newKey(`{"name":"taken","alias":"taken"}`)
	past := t0.Add(-time.Hour).Format(time.RFC3339)
	tests := []struct {
		name, body  string
		status      int
		code, field string
		msgContains string
	}{
		{"negative credits", `{"credits":-5}`, 400, CodeBadRequest, "credits", "negative"},
		{"fractional credits", `{"credits":1.5}`, 400, CodeBadRequest, "credits", "whole number"},
		{"string credits", `{"credits":"10"}`, 400, CodeBadRequest, "credits", "whole number"},
		{"too many credits", fmt.Sprintf(`{"credits":%d}`, credits.Max+1), 400, CodeBadRequest, "credits", "at most"},
		{"bool credits", `{"credits":true}`, 400, CodeBadRequest, "credits", ""},
		{"unknown field", `{"name":"x","colour":"red"}`, 400, CodeBadRequest, "colour", "unknown field"},
		{"wrong case field", `{"Credits":1}`, 400, CodeBadRequest, "Credits", "unknown field"},
		{"bad JSON", `{"name":`, 400, CodeBadRequest, "", "invalid JSON"},
		{"trailing garbage", `{"name":"a"} x`, 400, CodeBadRequest, "", "invalid JSON"},
		{"array body", `[1,2]`, 400, CodeBadRequest, "", "JSON object"},
		{"null body", `null`, 400, CodeBadRequest, "", "JSON object"},
		{"name not a string", `{"name":5}`, 400, CodeBadRequest, "name", "must be a string"},
		{"name too long", `{"name":"` + strings.Repeat("é", 201) + `"}`, 400, CodeBadRequest, "name", "at most 200"},
		{"name control char", `{"name":"a\u0007b"}`, 400, CodeBadRequest, "name", "control"},
		{"tools not an array", `{"allowedTools":"search"}`, 400, CodeBadRequest, "allowedTools", "array of strings"},
		{"bad tool pattern", `{"deniedTools":["a*b"]}`, 400, CodeBadRequest, "deniedTools[0]", "*"},
		{"empty tool", `{"allowedTools":[""]}`, 400, CodeBadRequest, "allowedTools[0]", "empty"},
		{"too many tags", `{"tags":{` + manyTags(51) + `}}`, 400, CodeBadRequest, "tags", "at most 50"},
		{"tag value not string", `{"tags":{"a":1}}`, 400, CodeBadRequest, "tags.a", "must be a string"},
		{"null tag on create", `{"tags":{"a":null}}`, 400, CodeBadRequest, "tags.a", "must be a string"},
		{"namespace chars", `{"namespace":"prod_eu"}`, 400, CodeBadRequest, "namespace", "letters, digits and hyphens"},
		{"namespace too long", `{"namespace":"` + strings.Repeat("a", 51) + `"}`, 400, CodeBadRequest, "namespace", "at most 50"},
		{"alias format", `{"alias":"has space"}`, 400, CodeBadRequest, "alias", "letters"},
		{"alias reserved", `{"alias":"key_abc"}`, 400, CodeBadRequest, "alias", "reserved"},
		{"alias too long", `{"alias":"` + strings.Repeat("a", 101) + `"}`, 400, CodeBadRequest, "alias", "at most 100"},
		{"alias conflict", `{"alias":"taken"}`, 409, CodeConflict, "alias", "already in use"},
		{"expiresIn zero", `{"expiresIn":0}`, 400, CodeBadRequest, "expiresIn", "positive"},
		{"expiresIn negative", `{"expiresIn":-1}`, 400, CodeBadRequest, "expiresIn", "negative"},
		{"expiresIn and expiresAt", `{"expiresIn":5,"expiresAt":"2030-01-01T00:00:00Z"}`, 400, CodeBadRequest, "expiresIn", "not both"},
		{"expiresAt past", `{"expiresAt":"` + past + `"}`, 400, CodeBadRequest, "expiresAt", "future"},
		{"expiresAt garbage", `{"expiresAt":"tomorrow"}`, 400, CodeBadRequest, "expiresAt", "RFC 3339"},
		{"bad ip", `{"ipAllowlist":["10.0.0.300"]}`, 400, CodeBadRequest, "ipAllowlist[0]", "not an IP"},
		{"bad cidr", `{"ipAllowlist":["10.0.0.0/33"]}`, 400, CodeBadRequest, "ipAllowlist[0]", "not an IP"},
		{"quota negative", `{"quota":{"dailyCallLimit":-1}}`, 400, CodeBadRequest, "quota.dailyCallLimit", "negative"},
		{"quota unknown", `{"quota":{"hourly":1}}`, 400, CodeBadRequest, "quota.hourly", "unknown field"},
		{"quota not object", `{"quota":7}`, 400, CodeBadRequest, "quota", "object"},
		{"spendingLimit fraction", `{"spendingLimit":0.5}`, 400, CodeBadRequest, "spendingLimit", "whole number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			r := f.post("/keys", tc.body)
			errBody(t, r, tc.status, tc.code, tc.field)
			if !strings.Contains(r.body, tc.msgContains) {
				t.Errorf("message lacks %q: %s", tc.msgContains, r.body)
			}
			f.unchanged(before)
		})
	}
}

func manyTags(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"t%d":"v"`, i)
	}
	return strings.Join(parts, ",")
}

func TestIgnoredFields(t *testing.T) {
	f := newFixture(t)
	m := mustStatus(t, f.post("/keys", `{"name":"a","credits":3,"autoTopup":{"threshold":5},"template":"free","webhookUrl":"https://x"}`), 201)
	got := fmt.Sprint(m["ignored"])
	if got != "[autoTopup template webhookUrl]" {
		t.Fatalf("ignored = %s", got)
	}
	m = mustStatus(t, f.post("/keys", `{"name":"b"}`), 201)
	if _, ok := m["ignored"]; ok {
		t.Fatal("ignored listed without ignored fields")
	}
}

func TestListKeys(t *testing.T) {
	f := newFixture(t)
	for i, spec := range []string{
		`{"name":"prod-a","credits":500,"namespace":"prod","tags":{"tier":"gold"}}`,
		`{"name":"prod-b","credits":50,"namespace":"prod"}`,
		`{"name":"dev-c","credits":5}`,
	} {
		f.newKey(spec)
		f.clock.Add(time.Second * time.Duration(i+1))
	}
	r := f.get("/keys")
	var flat []map[string]any
	if err := json.Unmarshal([]byte(mustRaw(t, r, 200)), &flat); err != nil || len(flat) != 3 {
		t.Fatalf("flat list: %v %s", err, r.body)
	}
	if flat[0]["name"] != "prod-a" || flat[2]["name"] != "dev-c" {
		t.Fatalf("flat order: %v, %v", flat[0]["name"], flat[2]["name"])
	}
	tests := []struct {
		query string
		names string
		total float64
	}{
		{"limit=2", "[dev-c prod-b]", 3},
		{"limit=2&offset=2", "[prod-a]", 3},
		{"sortBy=credits&order=asc", "[dev-c prod-b prod-a]", 3},
		{"namespace=PROD", "[prod-b prod-a]", 2},
		{"minCredits=50&maxCredits=500&sortBy=name&order=asc", "[prod-a prod-b]", 2},
		{"namePrefix=PROD-", "[prod-b prod-a]", 2},
		{"tag=tier:gold", "[prod-a]", 1},
		{"status=active", "[dev-c prod-b prod-a]", 3},
		{"suspended=true", "[]", 0},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			m := mustStatus(t, f.get("/keys?"+tc.query), 200)
			var names []string
			for _, k := range m["keys"].([]any) {
				names = append(names, k.(map[string]any)["name"].(string))
			}
			if fmt.Sprint(names) != tc.names && !(tc.names == "[]" && len(names) == 0) || m["total"] != tc.total {
				t.Fatalf("names %v total %v, want %s %v", names, m["total"], tc.names, tc.total)
			}
			if _, ok := m["hasMore"]; !ok {
				t.Fatal("no hasMore")
			}
		})
	}
	for _, q := range []string{"limit=0", "limit=501", "offset=-1", "sortBy=hash", "order=up", "status=gone",
		"minCredits=-1", "active=false", "tag=novalue", "namespace=a_b"} {
		t.Run("bad "+q, func(t *testing.T) {
			field, _, _ := strings.Cut(q, "=")
			errBody(t, f.get("/keys?"+q), 400, CodeBadRequest, field)
		})
	}
}

func mustRaw(t *testing.T, r resp, status int) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r.body
}

func TestKeyStatsAndSearch(t *testing.T) {
	f := newFixture(t)
	f.newKey(`{"name":"a","credits":100,"namespace":"prod","tags":{"team":"x"}}`)
	idB, _ := f.newKey(`{"name":"b","credits":10,"namespace":"prod","tags":{"team":"y"}}`)
	idC, _ := f.newKey(`{"name":"c","credits":1,"tags":{"team":"x"}}`)
	f.newKey(`{"name":"d","expiresIn":10}`)
	mustStatus(t, f.post("/keys/suspend", `{"key":"`+idB+`"}`), 200)
	mustStatus(t, f.post("/keys/revoke", `{"key":"`+idC+`"}`), 200)
	f.clock.Add(time.Minute)
	m := mustStatus(t, f.get("/keys/stats"), 200)
	for k, v := range map[string]float64{"total": 4, "active": 1, "suspended": 1, "revoked": 1, "expired": 1,
		"totalCreditsRemaining": 111, "totalCreditsAllocated": 111} {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if fmt.Sprint(m["byNamespace"]) != "map[default:2 prod:2]" {
		t.Errorf("byNamespace = %v", m["byNamespace"])
	}
	m = mustStatus(t, f.get("/keys/stats?namespace=prod"), 200)
	if m["total"] != 2.0 || m["filteredByNamespace"] != "prod" {
		t.Errorf("namespaced stats = %v", m)
	}
	m = mustStatus(t, f.post("/keys/search", `{"tags":{"team":"x"}}`), 200)
	if m["total"] != 2.0 {
		t.Fatalf("search = %v", m)
	}
	m = mustStatus(t, f.post("/keys/search", `{"tags":{"team":"x"},"namespace":"prod"}`), 200)
	if m["total"] != 1.0 {
		t.Fatalf("search with namespace = %v", m)
	}
	errBody(t, f.post("/keys/search", `{}`), 400, CodeBadRequest, "")
	errBody(t, f.post("/keys/search", `{"tags":{"team":1}}`), 400, CodeBadRequest, "tags.team")
}
