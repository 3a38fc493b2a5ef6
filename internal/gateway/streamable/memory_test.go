package streamable

import (
	"encoding/json"
	"runtime"
	"testing"

	"github.com/paygate/paygate/internal/mcp"
)

// An idle session must cost little: no goroutine, no stream buffers, just
// the Session and its table entry. This measures the heap per session for
// 10,000 sessions opened with what the go-sdk client sends in initialize,
// each used by one request.
func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 10,000 sessions")
	}
	const n = 10000
	srv := New(newFakeHandler(), Options{MaxSessions: n})
	defer srv.Close(t.Context())
	params := &initParams{
		ProtocolVersion: mcp.Version20251125,
		Capabilities:    json.RawMessage(`{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{}}}`),
		ClientInfo:      json.RawMessage(`{"name":"claude-code","title":"Claude Code","version":"2.1.4"}`),
	}
	goroutines := runtime.NumGoroutine()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		sess, err := srv.newSession(params)
		if err != nil {
			t.Fatal(err)
		}
		sess.release()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d bytes per idle session (%d sessions)", per, n)
	if per > 1024 {
		t.Errorf("%d bytes per idle session, want at most 1024", per)
	}
	// One sweeper for the server, none per session.
	if g := runtime.NumGoroutine() - goroutines; g > 1 {
		t.Errorf("%d goroutines for %d idle sessions", g, n)
	}
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	if len(srv.sessions) != n {
		t.Fatalf("%d sessions", len(srv.sessions))
	}
}

// BenchmarkNewSession measures opening a session through the table.
func BenchmarkNewSession(b *testing.B) {
	srv := New(newFakeHandler(), Options{MaxSessions: 1 << 30})
	defer srv.Close(b.Context())
	params := &initParams{ProtocolVersion: mcp.Version20251125,
		Capabilities: json.RawMessage(`{"roots":{"listChanged":true}}`), ClientInfo: json.RawMessage(`{"name":"b","version":"1"}`)}
	b.ReportAllocs()
	for b.Loop() {
		sess, err := srv.newSession(params)
		if err != nil {
			b.Fatal(err)
		}
		sess.release()
	}
}
