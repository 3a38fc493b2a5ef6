package admin

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/audit"
	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

// withRecorder routes the API's audit events through an audit.Recorder.
func withRecorder(rec **audit.Recorder) fixtureOpt {
	return func(o *Options) {
		*rec = audit.New(audit.Options{Store: o.Store, Now: o.Now, MaxAge: 30 * 24 * time.Hour, MaxEvents: 5000})
		o.Audit = *rec
	}
}

type auditPageT struct {
	Total  int64 `json:"total"`
	Offset int   `json:"offset"`
	Limit  int   `json:"limit"`
	Events []struct {
		ID        int64          `json:"id"`
		Timestamp string         `json:"timestamp"`
		Type      string         `json:"type"`
		Actor     string         `json:"actor"`
		RequestID string         `json:"requestId"`
		KeyMasked string         `json:"keyMasked"`
		Message   string         `json:"message"`
		Metadata  map[string]any `json:"metadata"`
	} `json:"events"`
}

func (f *fixture) auditPage(path string) auditPageT {
	f.t.Helper()
	r := f.req("GET", path, f.viewer, "")
	mustStatus(f.t, r, http.StatusOK)
	var p auditPageT
	if err := jsonUnmarshal(r.body, &p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func TestAuditQuery(t *testing.T) {
	f := newFixture(t)
	f.newKey(`{"name":"a","credits":10,"alias":"qa"}`)
	f.clock.Add(time.Hour)
	f.newKey(`{"name":"b"}`)
	mustStatus(t, f.post("/topup", `{"key":"qa","credits":5}`), 200)
	f.req("POST", "/admin/keys", f.super, `{"name":"ops","role":"viewer"}`, "X-Request-Id", "rid-q")

	all := f.auditPage("/audit")
	if all.Total != 4 || all.Limit != 100 || len(all.Events) != 4 {
		t.Fatalf("page %+v", all)
	}
	if e := all.Events[0]; e.Type != "admin_key.created" || e.RequestID != "rid-q" || e.Actor != keys.Mask(f.super) || e.ID <= all.Events[1].ID {
		t.Fatalf("newest first: %+v", all.Events)
	}
	if e := all.Events[3]; e.Type != "key.created" || e.KeyMasked == "" || e.Metadata["keyId"] == nil || !strings.HasSuffix(e.Timestamp, "Z") {
		t.Fatalf("oldest: %+v", e)
	}
	cases := []struct {
		path  string
		total int64
		n     int
	}{
		{"/audit?types=key.created", 2, 2},
		{"/audit?types=key.created,key.topup", 3, 3},
		{"/audit?types=gate.deny", 0, 0},
		{"/audit?actor=" + keys.Mask(f.super), 1, 1},
		{"/audit?since=" + t0.Add(30*time.Minute).Format(time.RFC3339), 3, 3},
		{"/audit?until=" + t0.Add(30*time.Minute).Format(time.RFC3339), 1, 1},
		{"/audit?limit=2", 4, 2},
		{"/audit?limit=2&offset=3", 4, 1},
		{"/audit?offset=10", 4, 0},
	}
	for _, tc := range cases {
		p := f.auditPage(tc.path)
		if p.Total != tc.total || len(p.Events) != tc.n {
			t.Errorf("%s: total %d, %d events; want %d, %d", tc.path, p.Total, len(p.Events), tc.total, tc.n)
		}
	}
	if p := f.auditPage("/audit?limit=2&offset=1"); p.Events[0].ID != all.Events[1].ID || p.Offset != 1 {
		t.Errorf("offset page %+v", p)
	}

	bad := []struct{ path, field string }{
		{"/audit?limit=0", "limit"},
		{"/audit?limit=1001", "limit"},
		{"/audit?limit=ten", "limit"},
		{"/audit?offset=-1", "offset"},
		{"/audit?types=Key.Created", "types"},
		{"/audit?types=key.created,drop%20table", "types"},
		{"/audit?since=yesterday", "since"},
		{"/audit?since=2026-03-14T13:00:00Z&until=2026-03-14T12:00:00Z", "until"},
		{"/audit/export?format=xml", "format"},
		{"/audit/export?afterSeq=x", "afterSeq"},
		{"/admin/events?types=a..b", "types"},
	}
	for _, tc := range bad {
		errBody(t, f.req("GET", tc.path, f.viewer, ""), http.StatusBadRequest, CodeBadRequest, tc.field)
	}
	errBody(t, f.req("GET", "/audit", "", ""), http.StatusUnauthorized, CodeUnauthorized, "")
}

func TestAuditExport(t *testing.T) {
	f := newFixture(t)
	f.newKey(`{"name":"a"}`)
	// Free text that reaches the trail from outside: a spreadsheet must not
	// run it.
	f.st.AppendAudit(store.AuditEvent{Time: t0, Type: "gate.deny", Actor: "@SUM(1+1)", Message: "=HYPERLINK(\"http://x\")",
		KeyMask: "+pg...", RequestID: "-1", Metadata: map[string]any{"tool": "=cmd"}})
	r := f.req("GET", "/audit/export?format=csv", f.viewer, "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.header.Get("Content-Disposition"), "paygate-audit-") {
		t.Fatalf("csv: %d %v", r.status, r.header)
	}
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "id,timestamp,type,actor,message,requestId,keyMasked,metadata" || len(rows) != 3 {
		t.Fatalf("csv rows %q", rows)
	}
	deny := rows[2]
	for i, want := range map[int]string{3: "'@SUM(1+1)", 4: "'=HYPERLINK(\"http://x\")", 5: "'-1", 6: "'+pg..."} {
		if deny[i] != want {
			t.Errorf("cell %d = %q, want %q", i, deny[i], want)
		}
	}
	if !strings.Contains(deny[7], `"tool":"=cmd"`) {
		t.Errorf("metadata cell %q", deny[7])
	}

	// JSON, oldest first, paged with afterSeq.
	var page struct {
		Count     int   `json:"count"`
		Truncated bool  `json:"truncated"`
		LastSeq   int64 `json:"lastSeq"`
		Events    []struct {
			ID   int64  `json:"id"`
			Type string `json:"type"`
		} `json:"events"`
	}
	mustStatus(t, f.req("GET", "/audit/export?limit=1", f.viewer, ""), 200)
	r = f.req("GET", "/audit/export?limit=1&types=key.created,gate.deny", f.viewer, "")
	if err := jsonUnmarshal(r.body, &page); err != nil || page.Count != 1 || !page.Truncated || page.Events[0].Type != "key.created" {
		t.Fatalf("first page %s", r.body)
	}
	r = f.req("GET", "/audit/export?types=key.created,gate.deny&afterSeq="+fmtInt(page.LastSeq), f.viewer, "")
	if err := jsonUnmarshal(r.body, &page); err != nil || page.Count != 1 || page.Truncated || page.Events[0].Type != "gate.deny" {
		t.Fatalf("second page %s", r.body)
	}
	if n := len(f.audit("audit.exported")); n != 4 {
		t.Errorf("%d audit.exported events, want 4", n)
	}
}

func TestAuditStats(t *testing.T) {
	var rec *audit.Recorder
	f := newFixture(t, withRecorder(&rec))
	f.newKey(`{"name":"a"}`)
	f.newKey(`{"name":"b"}`)
	f.st.AppendAudit(store.AuditEvent{Time: t0.Add(-48 * time.Hour), Type: "gate.deny", Actor: "pg_x...1234"})
	sub, _ := rec.Subscribe(nil)
	defer sub.Close()
	r := f.req("GET", "/audit/stats", f.viewer, "")
	m := mustStatus(t, r, 200)
	byType := m["eventsByType"].(map[string]any)
	if m["totalEvents"] != 3.0 || byType["key.created"] != 2.0 || byType["gate.deny"] != 1.0 {
		t.Fatalf("stats %s", r.body)
	}
	if m["eventsLastHour"] != 2.0 || m["eventsLast24h"] != 2.0 || m["oldestEvent"] != fmtTime(t0.Add(-48*time.Hour)) {
		t.Fatalf("time stats %s", r.body)
	}
	top := m["topActors"].([]any)[0].(map[string]any)
	if top["actor"] != keys.Mask(f.admin) || top["count"] != 2.0 {
		t.Fatalf("top actors %s", r.body)
	}
	ret := m["retention"].(map[string]any)
	if ret["maxAgeDays"] != 30.0 || ret["maxEvents"] != 5000.0 || ret["gateAllows"] != "summary" || m["liveSubscribers"] != 1.0 {
		t.Fatalf("retention %s", r.body)
	}
}

// TestAuditThroughRecorder: with a recorder, the API's events (writes and
// refused requests alike) reach the store and live subscribers.
func TestAuditThroughRecorder(t *testing.T) {
	var rec *audit.Recorder
	f := newFixture(t, withRecorder(&rec))
	sub, err := rec.Subscribe([]string{"key.created", "admin.auth_failed"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	f.newKey(`{"name":"a"}`)
	f.req("GET", "/keys", "ak_wrong_key_000000000000000000000000", "")
	mustStatus(t, f.post("/topup", `{"key":"`+firstKeyID(t, f)+`","credits":1}`), 200)
	var got []string
	for len(got) < 2 {
		select {
		case e := <-sub.Events():
			got = append(got, e.Type)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %v", got)
		}
	}
	if strings.Join(got, ",") != "key.created,admin.auth_failed" {
		t.Fatalf("streamed %v", got)
	}
	if len(f.audit("key.topup")) != 1 || len(f.audit("admin.auth_failed")) != 1 {
		t.Fatal("events did not reach the store")
	}
}

func firstKeyID(t *testing.T, f *fixture) string {
	t.Helper()
	vs, _, err := f.st.ListKeys(context.Background(), store.KeyFilter{})
	if err != nil || len(vs) == 0 {
		t.Fatalf("keys: %v", err)
	}
	return vs[0].Key.ID
}

// plainStore hides the optional interfaces of the store it wraps, as a
// store without them (say, a first Redis store) looks to the API.
type plainStore struct{ store.Store }

// TestAuditWithoutCounter: a store that cannot count gets totals and
// stats from a bounded scan, and backups answer 503.
func TestAuditWithoutCounter(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Store = plainStore{o.Store} })
	f.newKey(`{"name":"a"}`)
	f.newKey(`{"name":"b"}`)
	if p := f.auditPage("/audit?types=key.created&limit=1"); p.Total != 2 || len(p.Events) != 1 {
		t.Fatalf("page %+v", p)
	}
	m := mustStatus(t, f.req("GET", "/audit/stats", f.viewer, ""), 200)
	if m["totalEvents"] != 2.0 || m["eventsByType"].(map[string]any)["key.created"] != 2.0 || m["truncated"] != false {
		t.Fatalf("stats %v", m)
	}
	errBody(t, f.req("GET", "/admin/backup", f.super, ""), http.StatusServiceUnavailable, CodeUnavailable, "")
	errBody(t, f.req("POST", "/admin/restore", f.super, "{}"), http.StatusServiceUnavailable, CodeUnavailable, "")
}
