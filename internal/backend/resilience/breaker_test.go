package resilience

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

func newTestBreaker(threshold int, cooldown time.Duration) (*Breaker, *script, *clock) {
	s, c := &script{}, newClock()
	return NewBreaker(s, BreakerConfig{Threshold: threshold, Cooldown: cooldown, Now: c.Now}), s, c
}

var (
	errLost        = fmt.Errorf("%w: EOF", backend.ErrConnectionLost)
	errUnavailable = fmt.Errorf("backend x restarting: %w", backend.ErrUnavailable)
	errNotSent     = fmt.Errorf("%w: dial tcp: connection refused", backend.ErrNotDelivered)
)

// TestBreakerOutcomes: which results count towards opening the breaker.
func TestBreakerOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		results  []error
		wantOpen bool
	}{
		{"three transport failures open", []error{errLost, errUnavailable, errNotSent}, true},
		{"timeouts are failures", []error{context.DeadlineExceeded, context.DeadlineExceeded, context.DeadlineExceeded}, true},
		{"other errors are failures", []error{errors.New("boom"), errLost, errLost}, true},
		{"a JSON-RPC error is an answer and resets", []error{errLost, errLost, errRPC, errLost, errLost}, false},
		{"a success resets", []error{errLost, errLost, nil, errLost, errLost}, false},
		{"cancelled calls are neutral", []error{errLost, context.Canceled, errLost, context.Canceled}, false},
		{"closed backend is neutral", []error{backend.ErrClosed, backend.ErrClosed, backend.ErrClosed}, false},
		{"cancel between failures does not reset", []error{errLost, errLost, context.Canceled, errLost}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, s, _ := newTestBreaker(3, time.Minute)
			s.push(tc.results...)
			for range tc.results {
				_, _ = call(b)
			}
			if got := b.Snapshot().State == Open; got != tc.wantOpen {
				t.Fatalf("open = %v, want %v (%+v)", got, tc.wantOpen, b.Snapshot())
			}
		})
	}
}

// TestBreakerOpenFailsFast: an open breaker refuses without calling the
// backend, with an error matching ErrCircuitOpen that says when to retry,
// and Admit refuses too.
func TestBreakerOpenFailsFast(t *testing.T) {
	b, s, c := newTestBreaker(2, 30*time.Second)
	s.push(errLost, errLost)
	call(b)
	call(b)
	c.Advance(10 * time.Second)
	_, err := call(b)
	var oe *backend.OpenError
	if !errors.Is(err, backend.ErrCircuitOpen) || !errors.As(err, &oe) || oe.RetryAfter != 20*time.Second || oe.Backend != "fake" {
		t.Fatalf("call while open: %v (%+v)", err, oe)
	}
	if s.count() != 2 {
		t.Fatalf("backend called %d times, want 2: an open breaker must not call it", s.count())
	}
	if err := b.Admit(mcp.MethodToolsCall, "t"); !errors.Is(err, backend.ErrCircuitOpen) {
		t.Fatalf("Admit while open: %v", err)
	}
	snap := b.Snapshot()
	if snap.State != Open || snap.Failures != 2 || snap.Rejections != 2 || snap.TotalFailures != 2 ||
		snap.OpenedAt == nil || snap.RetryAfterMs != 20000 || snap.LastFailure == "" {
		t.Fatalf("snapshot %+v", snap)
	}
	if st := b.Status(); st.Circuit != "open" || st.State != backend.StateReady {
		t.Fatalf("status %+v", st)
	}
}

// TestBreakerHalfOpen: after the cooldown exactly one trial goes through;
// its success closes the breaker, its failure opens it for another
// cooldown.
func TestBreakerHalfOpen(t *testing.T) {
	for _, trialOK := range []bool{true, false} {
		t.Run(fmt.Sprintf("trial ok %v", trialOK), func(t *testing.T) {
			b, s, c := newTestBreaker(1, 30*time.Second)
			s.push(errLost)
			call(b)
			c.Advance(30 * time.Second)
			if err := b.Admit(mcp.MethodToolsCall, "t"); err != nil {
				t.Fatalf("Admit after the cooldown: %v", err)
			}
			if got := b.Snapshot().State; got != HalfOpen {
				t.Fatalf("state after the cooldown %s, want half_open", got)
			}
			block := make(chan struct{})
			s.mu.Lock()
			s.block = block
			s.mu.Unlock()
			if !trialOK {
				s.push(errLost)
			}
			done := make(chan error, 1)
			go func() { _, err := call(b); done <- err }()
			waitFor(t, func() bool { return s.count() == 2 })

			// While the trial runs, everything else is refused.
			if _, err := call(b); !errors.Is(err, backend.ErrCircuitOpen) {
				t.Fatalf("second call during the trial: %v", err)
			}
			if err := b.Admit(mcp.MethodToolsCall, "t"); !errors.Is(err, backend.ErrCircuitOpen) {
				t.Fatalf("Admit during the trial: %v", err)
			}
			close(block)
			<-done
			s.mu.Lock()
			s.block = nil
			s.mu.Unlock()
			snap := b.Snapshot()
			if trialOK {
				if snap.State != Closed || snap.Failures != 0 || snap.OpenedAt != nil {
					t.Fatalf("after a good trial: %+v", snap)
				}
				if _, err := call(b); err != nil {
					t.Fatalf("closed breaker: %v", err)
				}
				return
			}
			if snap.State != Open || !snap.OpenedAt.Equal(c.Now()) || snap.RetryAfterMs != 30000 {
				t.Fatalf("after a failed trial: %+v", snap)
			}
		})
	}
}

// TestBreakerNeutralTrial: a trial the client cancels frees the slot for
// the next call instead of deciding anything.
func TestBreakerNeutralTrial(t *testing.T) {
	b, s, c := newTestBreaker(1, time.Second)
	s.push(errLost, context.Canceled)
	call(b)
	c.Advance(time.Second)
	if _, err := call(b); !errors.Is(err, context.Canceled) {
		t.Fatalf("trial: %v", err)
	}
	if got := b.Snapshot().State; got != HalfOpen {
		t.Fatalf("after a cancelled trial: %s, want half_open", got)
	}
	if _, err := call(b); err != nil {
		t.Fatalf("next trial: %v", err)
	}
	if got := b.Snapshot().State; got != Closed {
		t.Fatalf("after a good trial: %s", got)
	}
}

// TestBreakerReset: POST /admin/circuit closes an open breaker at once.
func TestBreakerReset(t *testing.T) {
	b, s, _ := newTestBreaker(1, time.Hour)
	s.push(errLost)
	call(b)
	b.Reset()
	snap := b.Snapshot()
	if snap.State != Closed || snap.Failures != 0 || snap.TotalFailures != 1 {
		t.Fatalf("after reset %+v", snap)
	}
	if _, err := call(b); err != nil {
		t.Fatalf("call after reset: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
