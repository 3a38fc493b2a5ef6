package resilience

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/backend/backendtest"
	"github.com/paygate/paygate/internal/backend/flakytest"
	"github.com/paygate/paygate/internal/backend/httpmcp"
	"github.com/paygate/paygate/internal/backend/stdio"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/testenv"
)

// TestDecoratorsKeepTheContract: a breaker around a retrier around a real
// stdio server still passes the backend contract suite (progress,
// sampling, cancellation, colliding ids, close).
func TestDecoratorsKeepTheContract(t *testing.T) {
	bin := testenv.EverythingServer(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return NewBreaker(NewRetrier(stdio.New(stdio.Config{Name: "conformance", Argv: []string{bin}}), RetryConfig{}), BreakerConfig{})
	})
}

func startHTTP(t *testing.T, url string) *httpmcp.Backend {
	t.Helper()
	b := httpmcp.New(httpmcp.Config{Name: "flaky", URL: url, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

func callTool(b backend.Backend, name string) (*mcp.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return b.Call(ctx, &backend.Request{ID: mcp.Int64ID(7), Method: mcp.MethodToolsCall, Params: json.RawMessage(`{"name":"` + name + `","arguments":{}}`)})
}

// TestRetryNeverDuplicates runs a counting tool on a real Streamable HTTP
// server: a request refused with 503 before the server saw it is sent
// again and runs once; a request whose connection died after the server
// ran it is not sent again.
func TestRetryNeverDuplicates(t *testing.T) {
	srv := flakytest.Start(t, flakytest.Options{})
	r := NewRetrier(startHTTP(t, srv.URL), RetryConfig{MaxRetries: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond})

	srv.FailNext(2)
	m, err := callTool(r, "count")
	if err != nil || m.Error != nil || !strings.Contains(string(m.Result), "count=1") {
		t.Fatalf("call after two 503s: %v %+v", err, m)
	}
	if n := srv.Executions("count"); n != 1 {
		t.Fatalf("count ran %d times, want 1", n)
	}
	if st := r.Stats(); st.Retries != 2 || st.Recovered != 1 {
		t.Fatalf("stats %+v", st)
	}

	srv.DropNext(1)
	_, err = callTool(r, "count")
	if !errors.Is(err, backend.ErrConnectionLost) {
		t.Fatalf("dropped after running: err %v, want ErrConnectionLost", err)
	}
	time.Sleep(100 * time.Millisecond) // a retry, if any, would have run by now
	if n := srv.Executions("count"); n != 2 {
		t.Fatalf("count ran %d times, want 2: a call that may have run must not be retried", n)
	}
	if st := r.Stats(); st.Retries != 2 {
		t.Fatalf("stats %+v: nothing should have been retried", st)
	}

	// The backend reconnects and serves again.
	backendtest.Eventually(t, "the backend to serve again", func() bool {
		m, err := callTool(r, "echo")
		return err == nil && m.Error == nil
	})
}

// TestRetryGivesUpOnADeadServer: with the server gone, calls fail as not
// delivered after their retries. (The first call may instead be lost: a
// request written on a pooled connection the server has just closed reads
// EOF, which cannot be told apart from a server dying mid-request.)
func TestRetryGivesUpOnADeadServer(t *testing.T) {
	srv := flakytest.Start(t, flakytest.Options{})
	r := NewRetrier(startHTTP(t, srv.URL), RetryConfig{MaxRetries: 2, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond})
	srv.Close()
	if _, err := callTool(r, "count"); !backend.NotDelivered(err) && !errors.Is(err, backend.ErrConnectionLost) {
		t.Fatalf("first call: %v", err)
	}
	for i := range 3 {
		if _, err := callTool(r, "count"); !backend.NotDelivered(err) {
			t.Fatalf("call %d: %v, want a not-delivered error", i, err)
		}
	}
}

// TestBreakerOverRealBackend: a backend answering 503 opens the breaker
// after the threshold; calls are then refused without reaching the server;
// once it is back, the trial after the cooldown closes the breaker.
func TestBreakerOverRealBackend(t *testing.T) {
	srv := flakytest.Start(t, flakytest.Options{})
	c := newClock()
	b := NewBreaker(startHTTP(t, srv.URL), BreakerConfig{Threshold: 3, Cooldown: 10 * time.Second, Now: c.Now})
	srv.SetDown(true)
	for i := range 3 {
		if _, err := callTool(b, "count"); !errors.Is(err, backend.ErrNotDelivered) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	before := len(srv.Methods())
	if _, err := callTool(b, "count"); !errors.Is(err, backend.ErrCircuitOpen) {
		t.Fatalf("call while open: %v", err)
	}
	if after := len(srv.Methods()); after != before {
		t.Fatalf("an open breaker sent %d requests", after-before)
	}
	srv.SetDown(false)
	c.Advance(10 * time.Second)
	if m, err := callTool(b, "count"); err != nil || m.Error != nil {
		t.Fatalf("trial: %v %+v", err, m)
	}
	if s := b.Snapshot(); s.State != Closed || s.Rejections != 1 || s.TotalFailures != 3 {
		t.Fatalf("snapshot %+v", s)
	}
}
