package resilience

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend"
)

// sleeps records the delays a Retrier waited, without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) bool {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err() == nil
}

func newTestRetrier(cfg RetryConfig) (*Retrier, *script, *sleeps) {
	s, sl, c := &script{}, &sleeps{}, newClock()
	cfg.Now, cfg.Sleep = c.Now, sl.Sleep
	if cfg.Jitter == nil {
		cfg.Jitter = func() float64 { return 0.5 }
	}
	return NewRetrier(s, cfg), s, sl
}

// TestRetryClassification: only calls that provably never reached the
// server are sent again.
func TestRetryClassification(t *testing.T) {
	tests := []struct {
		name      string
		results   []error
		wantCalls int
		wantErr   error // nil: success
	}{
		{"not delivered, then ok", []error{errNotSent}, 2, nil},
		{"unavailable twice, then ok", []error{errUnavailable, errUnavailable}, 3, nil},
		{"gives up after MaxRetries", []error{errNotSent, errNotSent, errNotSent, errNotSent}, 3, backend.ErrNotDelivered},
		{"connection lost: may have run, never retried", []error{errLost}, 1, backend.ErrConnectionLost},
		{"timeout: never retried", []error{context.DeadlineExceeded}, 1, context.DeadlineExceeded},
		{"closed: never retried", []error{backend.ErrClosed}, 1, backend.ErrClosed},
		{"a JSON-RPC error is an answer", []error{errRPC}, 1, nil},
		{"breaker refusal is not retried", []error{&backend.OpenError{Backend: "x"}}, 1, backend.ErrCircuitOpen},
		{"not delivered then lost: stops at the loss", []error{errNotSent, errLost, nil}, 2, backend.ErrConnectionLost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, s, _ := newTestRetrier(RetryConfig{MaxRetries: 2})
			s.push(tc.results...)
			_, err := call(r)
			if s.count() != tc.wantCalls {
				t.Errorf("backend called %d times, want %d", s.count(), tc.wantCalls)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("err %v, want success", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestRetryBackoff: full jitter under a doubling, capped ceiling.
func TestRetryBackoff(t *testing.T) {
	r, s, sl := newTestRetrier(RetryConfig{MaxRetries: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond,
		Jitter: func() float64 { return 0.5 }})
	s.push(errNotSent, errNotSent, errNotSent, errNotSent, errNotSent)
	if _, err := call(r); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 150 * time.Millisecond, 150 * time.Millisecond}
	if len(sl.d) != len(want) {
		t.Fatalf("delays %v, want %v", sl.d, want)
	}
	for i := range want {
		if sl.d[i] != want[i] {
			t.Fatalf("delays %v, want %v", sl.d, want)
		}
	}
	if st := r.Stats(); st.Retries != 5 || st.Recovered != 1 || st.BudgetExhausted != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRetryBudget: retries stay under floor + percent of the calls in the
// window; when the budget is spent, the failure is returned at once.
func TestRetryBudget(t *testing.T) {
	r, s, _ := newTestRetrier(RetryConfig{MaxRetries: 1, BudgetFloor: 2, BudgetPercent: 10})
	// Three failing calls: the first two may retry (floor 2); the third
	// may not, 3 calls adding no whole retry at 10%.
	for i := range 3 {
		s.push(errNotSent, errNotSent)
		if _, err := call(r); !errors.Is(err, backend.ErrNotDelivered) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if s.count() != 2+2+1 {
		t.Fatalf("backend called %d times, want 5", s.count())
	}
	if st := r.Stats(); st.Retries != 2 || st.BudgetExhausted != 1 {
		t.Fatalf("stats %+v", st)
	}
	// 20 successful calls earn 2 more retries at 10%.
	for range 20 {
		call(r)
	}
	s.push(errNotSent)
	if _, err := call(r); err != nil {
		t.Fatalf("retry within the earned budget: %v", err)
	}
}

// TestRetryBudgetWindow: spent retries are forgotten after the window.
func TestRetryBudgetWindow(t *testing.T) {
	c := newClock()
	b := newBudget(10, 1, 10*time.Second)
	b.call(c.Now())
	if !b.retry(c.Now()) || b.retry(c.Now()) {
		t.Fatal("floor of 1 not applied")
	}
	c.Advance(5 * time.Second)
	if b.retry(c.Now()) {
		t.Fatal("retry inside the window should be refused")
	}
	c.Advance(6 * time.Second)
	if !b.retry(c.Now()) {
		t.Fatal("the window has passed; the floor should be available again")
	}
}

// TestRetryCancelledWhileWaiting: a caller giving up during the backoff
// gets its context's error, and nothing is sent again.
func TestRetryCancelledWhileWaiting(t *testing.T) {
	s := &script{}
	s.push(errNotSent, errNotSent)
	r := NewRetrier(s, RetryConfig{BaseDelay: time.Hour, MaxDelay: time.Hour, Jitter: func() float64 { return 0.9 }})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := r.Call(ctx, &backend.Request{Method: "tools/call"})
	if !errors.Is(err, context.DeadlineExceeded) || s.count() != 1 {
		t.Fatalf("err %v after %d calls", err, s.count())
	}
}
