package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/audit"
)

// sseEvent is one Server-Sent Event, or a comment line (event "").
type sseEvent struct {
	event, data, comment string
}

// sseClient reads an event stream line by line.
type sseClient struct {
	t    *testing.T
	resp *http.Response
	ch   chan sseEvent
}

func openStream(t *testing.T, url, key string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("X-Admin-Key", key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	c := &sseClient{t: t, resp: resp, ch: make(chan sseEvent, 100)}
	go func() {
		defer close(c.ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					c.ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return c
}

// next returns the next event that is not a comment (unless comments are
// wanted).
func (c *sseClient) next(comments bool) sseEvent {
	c.t.Helper()
	for {
		select {
		case ev, ok := <-c.ch:
			if !ok {
				c.t.Fatal("stream ended")
			}
			if ev.event == "" && !comments {
				continue
			}
			return ev
		case <-time.After(5 * time.Second):
			c.t.Fatal("no event within 5s")
		}
	}
}

func (c *sseClient) auditType(ev sseEvent) string {
	c.t.Helper()
	if ev.event != "audit" {
		c.t.Fatalf("event %+v, want an audit event", ev)
	}
	var e struct {
		Type  string `json:"type"`
		Actor string `json:"actor"`
	}
	if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
		c.t.Fatal(err)
	}
	return e.Type
}

func TestEventStream(t *testing.T) {
	var rec *audit.Recorder
	f := newFixture(t, withRecorder(&rec))
	f.api.keepalive = 30 * time.Millisecond
	srv := httptest.NewServer(f.h)
	defer srv.Close()

	keysOnly := openStream(t, srv.URL+"/admin/events?types=key.created,key.revoked", f.viewer)
	everything := openStream(t, srv.URL+"/admin/events", f.viewer)
	if ct := keysOnly.resp.Header.Get("Content-Type"); keysOnly.resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("%d %s", keysOnly.resp.StatusCode, ct)
	}
	hello := keysOnly.next(false)
	if hello.event != "connected" || !strings.Contains(hello.data, `"filters":["key.created","key.revoked"]`) {
		t.Fatalf("first event %+v", hello)
	}
	if ev := everything.next(false); ev.event != "connected" || !strings.Contains(ev.data, `"filters":"all"`) {
		t.Fatalf("first event %+v", ev)
	}
	for rec.Subscribers() < 2 {
		time.Sleep(time.Millisecond)
	}

	// Only what happens after subscribing, filtered by type.
	id, _ := f.newKey(`{"name":"streamed"}`)
	mustStatus(t, f.post("/topup", `{"key":"`+id+`","credits":3}`), 200)
	mustStatus(t, f.post("/keys/revoke", `{"key":"`+id+`"}`), 200)
	if got := keysOnly.auditType(keysOnly.next(false)); got != "key.created" {
		t.Fatalf("filtered stream got %s", got)
	}
	if got := keysOnly.auditType(keysOnly.next(false)); got != "key.revoked" {
		t.Fatalf("filtered stream got %s (the topup must be filtered out)", got)
	}
	for _, want := range []string{"key.created", "key.topup", "key.revoked"} {
		if got := everything.auditType(everything.next(false)); got != want {
			t.Fatalf("unfiltered stream got %s, want %s", got, want)
		}
	}

	// Keepalive comments while idle.
	if ev := keysOnly.next(true); !strings.HasPrefix(ev.comment, "keepalive") {
		t.Fatalf("idle stream sent %+v", ev)
	}

	// Shutdown ends both streams cleanly.
	rec.CloseStreams()
	for _, c := range []*sseClient{keysOnly, everything} {
		ev := c.next(false)
		if ev.event != "close" || !strings.Contains(ev.data, "shutting down") {
			t.Fatalf("final event %+v", ev)
		}
		for range c.ch { // the server ends the response
		}
	}
	errBody(t, f.req("GET", "/admin/events", f.viewer, ""), http.StatusServiceUnavailable, CodeUnavailable, "")
}

func TestEventStreamWithoutRecorder(t *testing.T) {
	f := newFixture(t)
	errBody(t, f.req("GET", "/admin/events", f.viewer, ""), http.StatusServiceUnavailable, CodeUnavailable, "")
	errBody(t, f.req("GET", "/admin/events", "", ""), http.StatusUnauthorized, CodeUnauthorized, "")
}
