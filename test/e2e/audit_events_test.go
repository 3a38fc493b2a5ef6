package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAdminEventStream: GET /admin/events streams what happens after the
// client subscribes, filtered by type, to several clients at once, and
// every stream ends cleanly (without holding the shutdown up) when the
// gateway stops.
func TestAdminEventStream(t *testing.T) {
	g := startGateway(t, "--server", auditEcho(t), "--rate-limit", "0")
	viewer, _ := g.newAdminKey("", "viewer") // before anyone subscribes: never streamed

	filtered := g.openEvents(viewer, "?types=key.created,gate.deny")
	all := g.openEvents(testAdminKey, "")
	for _, s := range []*eventStream{filtered, all} {
		if s.Status != 200 || !strings.HasPrefix(s.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("open: %d %v", s.Status, s.Header)
		}
		if ev := s.next(10 * time.Second); ev.Event != "connected" {
			t.Fatalf("first event %+v", ev)
		}
	}

	key := g.createKey(5, nil)
	mask := key[:7] + "..." + key[len(key)-4:]
	if code := g.admin("POST", "/topup", map[string]any{"key": key, "credits": 2}, nil); code != 200 {
		t.Fatalf("topup: %d", code)
	}
	g.auditCall("pg_"+strings.Repeat("1", 48), "rid-sse-deny")

	if e := filtered.nextAudit(10 * time.Second); e.Type != "key.created" || e.KeyMasked != mask || e.Actor == "" {
		t.Fatalf("filtered stream, first: %+v", e)
	}
	if e := filtered.nextAudit(10 * time.Second); e.Type != "gate.deny" || e.RequestID != "rid-sse-deny" {
		t.Fatalf("filtered stream, second (the topup must be filtered out): %+v", e)
	}
	for _, want := range []string{"key.created", "key.topup", "gate.deny"} {
		if e := all.nextAudit(10 * time.Second); e.Type != want {
			t.Fatalf("unfiltered stream got %+v, want %s", e, want)
		}
	}

	// Bad requests never open a stream.
	if code := g.do("GET", "/admin/events?types=Not+A+Type", map[string]string{"X-Admin-Key": viewer}, nil, nil); code != http.StatusBadRequest {
		t.Errorf("bad types: %d", code)
	}
	if code := g.do("GET", "/admin/events", nil, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("no key: %d", code)
	}

	// Shutdown: each stream gets a close event and ends, and the process
	// exits long before the 30s drain timeout an open stream would cost.
	start := time.Now()
	stopped := make(chan struct{})
	go func() { g.stop(); close(stopped) }()
	for _, s := range []*eventStream{filtered, all} {
		ev := s.next(15 * time.Second)
		for ev.Event == "audit" { // the refused requests above (admin.auth_failed), if not read yet
			ev = s.next(15 * time.Second)
		}
		if ev.Event != "close" || !strings.Contains(ev.Data, "shutting down") {
			t.Fatalf("last event %+v", ev)
		}
		if !s.ended(15 * time.Second) {
			t.Fatal("the stream did not end")
		}
	}
	<-stopped
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stopping with open streams took %s", d)
	}
}
