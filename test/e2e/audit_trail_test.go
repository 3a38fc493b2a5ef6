package e2e

import (
	"encoding/csv"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditTrailSurvivesRestart: admin actions and gate decisions land in
// the audit trail with actor, request id and masked key; denials at
// once, allowed calls as a per-key summary (written at the latest when
// the gateway stops); all of it is still there after a restart, and after
// a kill -9 for what GET /audit had already shown.
func TestAuditTrailSurvivesRestart(t *testing.T) {
	g := startGateway(t, "--server", auditEcho(t), "--rate-limit", "0")
	key := g.createKey(3, nil)
	mask := key[:7] + "..." + key[len(key)-4:]
	for i := range 3 {
		if r := g.auditCall(key, ""); r.Error != nil {
			t.Fatalf("call %d: %+v", i, r.Error)
		}
	}
	if r := g.auditCall(key, "rid-broke"); r.reason() != "insufficient_credits" {
		t.Fatalf("4th call: %s", r.Result)
	}
	stranger := "pg_" + strings.Repeat("0", 48)
	if r := g.auditCall(stranger, "rid-stranger"); r.reason() != "invalid_api_key" {
		t.Fatalf("unknown key: %+v", r.Error)
	}

	checkDenials := func() {
		t.Helper()
		p := g.audit("?types=gate.deny")
		if p.Total != 2 || len(p.Events) != 2 {
			t.Fatalf("gate.deny: %+v", p)
		}
		byID := map[string]auditEvent{}
		for _, e := range p.Events {
			byID[e.RequestID] = e
		}
		broke, strange := byID["rid-broke"], byID["rid-stranger"]
		if broke.Actor != mask || broke.KeyMasked != mask || broke.Metadata["reason"] != "insufficient_credits" ||
			broke.Metadata["tool"] != "echo" || broke.Metadata["keyId"] == nil {
			t.Errorf("denial of the broke key: %+v", broke)
		}
		if strange.Actor != "anonymous" || strange.Metadata["reason"] != "invalid_api_key" || strange.Metadata["clientIp"] != "127.0.0.1" {
			t.Errorf("denial of the unknown key: %+v", strange)
		}
		for _, e := range p.Events {
			if strings.Contains(e.Message+e.Actor+e.KeyMasked, stranger) || strings.Contains(e.Message+e.Actor, key) {
				t.Errorf("a secret in the audit trail: %+v", e)
			}
		}
	}
	checkDenials()
	if p := g.audit("?types=gate.allow_summary"); p.Total != 0 {
		t.Fatalf("a summary before the interval ended: %+v", p)
	}

	g.stop()
	g.restart()
	created := g.audit("?types=key.created")
	if created.Total != 1 || created.Events[0].KeyMasked != mask || created.Events[0].Actor == "" || created.Events[0].RequestID == "" {
		t.Fatalf("key.created after restart: %+v", created)
	}
	checkDenials()
	sum := g.audit("?types=gate.allow_summary")
	if sum.Total != 1 {
		t.Fatalf("the allow summary was not written at shutdown: %+v", sum)
	}
	if m := sum.Events[0].Metadata; sum.Events[0].Actor != mask || m["calls"] != 3.0 || m["credits"] != 3.0 ||
		m["tools"].(map[string]any)["echo"] != 3.0 {
		t.Fatalf("allow summary: %+v", sum.Events[0])
	}

	// What GET /audit has shown survives a crash.
	g.createKey(1, map[string]any{"name": "before-crash"})
	if p := g.audit("?types=key.created"); p.Total != 2 {
		t.Fatalf("second key.created: %+v", p)
	}
	g.kill9()
	g.restart()
	if p := g.audit("?types=key.created"); p.Total != 2 || !strings.Contains(p.Events[0].Message, "before-crash") {
		t.Fatalf("after kill -9: %+v", p)
	}
}

// TestAuditAPIThroughBinary: filters, export, stats, the config keys and
// every invalid parameter answering 400.
func TestAuditAPIThroughBinary(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "paygate.json")
	writeConfigJSON(t, cfg, map[string]any{"auditGateAllows": "all", "auditRetentionDays": 7, "auditMaxEvents": 5000,
		"globalRateLimitPerMin": 0})
	g := startGateway(t, "--config", cfg, "--server", auditEcho(t))
	viewer, _ := g.newAdminKey("", "viewer")
	key := g.createKey(10, map[string]any{"name": "=cmd|' /C calc'!A0"})
	g.auditCall(key, "rid-allow")
	var page auditPage
	if code := g.adminAs(viewer, "GET", "/audit?types=gate.allow&limit=5", nil, &page); code != 200 || page.Total != 1 ||
		page.Events[0].RequestID != "rid-allow" || page.Events[0].Metadata["credits"] != 1.0 {
		t.Fatalf("gate.allow with auditGateAllows=all: %d %+v", code, page)
	}
	if p := g.audit("?limit=2&offset=1"); p.Limit != 2 || p.Offset != 1 || len(p.Events) != 2 || p.Total < 3 {
		t.Fatalf("paging: %+v", p)
	}

	var stats struct {
		TotalEvents  int64            `json:"totalEvents"`
		EventsByType map[string]int64 `json:"eventsByType"`
		Retention    struct {
			MaxAgeDays int64  `json:"maxAgeDays"`
			MaxEvents  int    `json:"maxEvents"`
			GateAllows string `json:"gateAllows"`
		} `json:"retention"`
	}
	if code := g.adminAs(viewer, "GET", "/audit/stats", nil, &stats); code != 200 || stats.EventsByType["key.created"] != 1 ||
		stats.Retention.MaxAgeDays != 7 || stats.Retention.MaxEvents != 5000 || stats.Retention.GateAllows != "all" {
		t.Fatalf("stats: %d %+v", code, stats)
	}

	code, body, hdr := g.fetch("GET", "/audit/export?format=csv&types=key.created", viewer, nil)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv export: %d %s", code, body)
	}
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "id" {
		t.Fatalf("csv: %v %q", err, rows)
	}
	// The key's name is in the message; a spreadsheet must not run it.
	if msg := rows[1][4]; !strings.Contains(msg, "=cmd") || strings.HasPrefix(msg, "=") {
		t.Fatalf("message cell %q", msg)
	}

	for _, path := range []string{
		"/audit?limit=abc", "/audit?limit=0", "/audit?limit=5000", "/audit?offset=-3", "/audit?types=Key.Created",
		"/audit?types=key.created,drop%20table", "/audit?since=yesterday", "/audit?until=2020-13-45",
		"/audit?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "/audit/export?format=pdf",
		"/audit/export?limit=1000000", "/admin/events?types=bad!type",
	} {
		var e struct{ Error, Code, Field string }
		if code := g.adminAs(viewer, "GET", path, nil, &e); code != http.StatusBadRequest || e.Code != "bad_request" || e.Field == "" {
			t.Errorf("GET %s: %d %+v, want 400 naming the parameter", path, code, e)
		}
	}
	if code := g.do("GET", "/audit", nil, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /audit without a key: %d", code)
	}
}
