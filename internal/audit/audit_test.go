package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
)

var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// memSink is a store.Audit stand-in that keeps events in order.
type memSink struct {
	mu     sync.Mutex
	evs    []store.AuditEvent
	pruned []struct {
		before time.Time
		keep   int
	}
}

func (m *memSink) AppendAudit(evs ...store.AuditEvent) {
	m.mu.Lock()
	m.evs = append(m.evs, evs...)
	m.mu.Unlock()
}

func (m *memSink) PruneAudit(_ context.Context, before time.Time, keep int) (int, error) {
	m.mu.Lock()
	m.pruned = append(m.pruned, struct {
		before time.Time
		keep   int
	}{before, keep})
	m.mu.Unlock()
	return 0, nil
}

func (m *memSink) types() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.evs {
		out = append(out, e.Type)
	}
	return out
}

func (m *memSink) byType(t string) []store.AuditEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.AuditEvent
	for _, e := range m.evs {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

func newRecorder(o Options) (*Recorder, *memSink, *clock) {
	c := &clock{t: t0}
	sink := &memSink{}
	o.Store, o.Now = sink, c.Now
	return New(o), sink, c
}

func allowed(key, tool string, credits int64) store.UsageRecord {
	return store.UsageRecord{Time: t0, KeyID: key, KeyMask: "pg_" + key + "...mask", Namespace: "default",
		Method: "tools/call", Tool: tool, Allowed: true, Credits: credits, Outcome: "ok", RequestID: "req_1"}
}

func denied(key, ip, reason string) store.UsageRecord {
	r := store.UsageRecord{Time: t0, KeyID: key, Method: "tools/call", Tool: "search", Reason: reason, ClientIP: ip, RequestID: "req_2"}
	if key != "" {
		r.KeyMask = "pg_" + key + "...mask"
	}
	return r
}

func TestGateAllowModes(t *testing.T) {
	cases := []struct {
		mode      string
		wantAllow int // gate.allow events
		wantSum   int // gate.allow_summary events after Flush
	}{
		{AllowsSummary, 0, 2},
		{"", 0, 2},
		{AllowsAll, 5, 0},
		{AllowsNone, 0, 0},
	}
	for _, tc := range cases {
		t.Run("mode "+tc.mode, func(t *testing.T) {
			r, sink, _ := newRecorder(Options{GateAllows: tc.mode})
			for range 3 {
				r.Gate(allowed("a", "search", 2))
			}
			r.Gate(allowed("b", "fetch", 1))
			r.Gate(allowed("b", "search", 0))
			r.Flush()
			if got := len(sink.byType(TypeGateAllow)); got != tc.wantAllow {
				t.Errorf("%d gate.allow events, want %d", got, tc.wantAllow)
			}
			if got := len(sink.byType(TypeGateAllowSummary)); got != tc.wantSum {
				t.Errorf("%d summaries, want %d", got, tc.wantSum)
			}
		})
	}
}

func TestAllowSummaryContent(t *testing.T) {
	r, sink, c := newRecorder(Options{})
	for range 3 {
		r.Gate(allowed("a", "search", 2))
	}
	ref := allowed("a", "fetch", 0)
	ref.Refunded, ref.Outcome = true, "backend_down"
	r.Gate(ref)
	shadow := allowed("a", "search", 0)
	shadow.Reason = "shadow:insufficient_credits"
	r.Gate(shadow)
	c.Add(time.Minute)
	r.Flush()
	sums := sink.byType(TypeGateAllowSummary)
	if len(sums) != 1 {
		t.Fatalf("%d summaries", len(sums))
	}
	s := sums[0]
	m := s.Metadata
	if s.Actor != "pg_a...mask" || s.KeyMask != "pg_a...mask" || m["keyId"] != "a" || m["calls"] != int64(5) ||
		m["credits"] != int64(6) || m["refunded"] != int64(1) || m["shadow"] != int64(1) {
		t.Fatalf("summary %+v", s)
	}
	if tools := m["tools"].(map[string]int64); tools["search"] != 4 || tools["fetch"] != 1 {
		t.Fatalf("tools %v", tools)
	}
	if out := m["outcomes"].(map[string]int64); out["ok"] != 4 || out["backend_down"] != 1 {
		t.Fatalf("outcomes %v", out)
	}
	if m["from"] != "2026-03-14T12:00:00Z" || m["to"] != "2026-03-14T12:01:00Z" || !s.Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("interval %v %v at %v", m["from"], m["to"], s.Time)
	}
	// The next interval starts empty.
	r.Flush()
	if len(sink.byType(TypeGateAllowSummary)) != 1 {
		t.Fatal("an empty interval wrote a summary")
	}
}

func TestDenyRateLimitPerKey(t *testing.T) {
	r, sink, c := newRecorder(Options{DenyPerSecond: 3})
	for range 10 {
		r.Gate(denied("a", "", "insufficient_credits"))
	}
	r.Gate(denied("a", "", "rate_limited"))
	for range 2 {
		r.Gate(denied("b", "", "tool_not_allowed")) // another key has its own budget
	}
	for range 5 {
		r.Gate(denied("", "192.0.2.7", "invalid_api_key")) // no key: per address
	}
	if got := len(sink.byType(TypeGateDeny)); got != 3+2+3 {
		t.Fatalf("%d gate.deny events, want 8", got)
	}
	c.Add(time.Second) // a new second: the budget is back
	r.Gate(denied("a", "", "insufficient_credits"))
	if got := len(sink.byType(TypeGateDeny)); got != 9 {
		t.Fatalf("%d gate.deny events after a second, want 9", got)
	}
	r.Flush()
	sums := sink.byType(TypeGateDenySummary)
	if len(sums) != 2 {
		t.Fatalf("%d deny summaries, want 2 (key a and the address): %+v", len(sums), sums)
	}
	byActor := map[string]store.AuditEvent{}
	for _, s := range sums {
		byActor[s.Actor] = s
	}
	a := byActor["pg_a...mask"].Metadata
	if a["suppressed"] != int64(8) || a["reasons"].(map[string]int64)["insufficient_credits"] != 7 ||
		a["reasons"].(map[string]int64)["rate_limited"] != 1 {
		t.Fatalf("key a summary %+v", a)
	}
	ip := byActor["anonymous"].Metadata
	if ip["suppressed"] != int64(2) || ip["clientIp"] != "192.0.2.7" {
		t.Fatalf("address summary %+v", ip)
	}
	d := sink.byType(TypeGateDeny)[0]
	if d.Actor != "pg_a...mask" || d.RequestID != "req_2" || d.Metadata["reason"] != "insufficient_credits" ||
		d.Message != "Denied: search (insufficient_credits)" {
		t.Fatalf("deny event %+v", d)
	}
}

func TestDenyUnlimited(t *testing.T) {
	r, sink, _ := newRecorder(Options{DenyPerSecond: -1})
	for range 50 {
		r.Gate(denied("a", "", "rate_limited"))
	}
	r.Flush()
	if len(sink.byType(TypeGateDeny)) != 50 || len(sink.byType(TypeGateDenySummary)) != 0 {
		t.Fatalf("events %v", sink.types())
	}
}

func TestTrackedKeysAreBounded(t *testing.T) {
	r, sink, _ := newRecorder(Options{})
	for i := range maxTracked + 50 {
		r.Gate(allowed(fmt.Sprintf("k%d", i), "t", 1))
	}
	r.Flush()
	sums := sink.byType(TypeGateAllowSummary)
	if len(sums) != maxTracked+1 {
		t.Fatalf("%d summaries, want %d", len(sums), maxTracked+1)
	}
	var total int64
	overflow := 0
	for _, s := range sums {
		total += s.Metadata["calls"].(int64)
		if s.Actor == "(many keys)" {
			overflow++
		}
	}
	if total != maxTracked+50 || overflow != 1 {
		t.Fatalf("total %d overflow %d", total, overflow)
	}
}

func TestSubscribeFilterAndFanOut(t *testing.T) {
	r, sink, _ := newRecorder(Options{})
	all, err := r.Subscribe(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := r.Subscribe([]string{"key.created", "key.revoked"})
	if err != nil {
		t.Fatal(err)
	}
	r.AppendAudit(store.AuditEvent{Type: "key.created", Actor: "admin", Metadata: map[string]any{"k": 1}},
		store.AuditEvent{Type: "key.topup"}, store.AuditEvent{Type: "key.revoked"})
	if len(sink.evs) != 3 || sink.evs[0].Time.IsZero() {
		t.Fatalf("store got %+v", sink.evs)
	}
	got := func(s *Subscription) []string {
		var out []string
		for {
			select {
			case e := <-s.Events():
				out = append(out, e.Type)
			default:
				return out
			}
		}
	}
	if g := got(all); fmt.Sprint(g) != "[key.created key.topup key.revoked]" {
		t.Fatalf("all: %v", g)
	}
	if g := got(keys); fmt.Sprint(g) != "[key.created key.revoked]" {
		t.Fatalf("filtered: %v", g)
	}
	keys.Close()
	if r.Subscribers() != 1 || keys.Err() != nil {
		t.Fatalf("after Close: %d subscribers, err %v", r.Subscribers(), keys.Err())
	}
}

// TestSlowSubscriberIsDropped: a subscriber that does not read is dropped
// once its buffer is full; recording never waits for it.
func TestSlowSubscriberIsDropped(t *testing.T) {
	r, sink, _ := newRecorder(Options{Buffer: 4})
	slow, _ := r.Subscribe(nil)
	fast, _ := r.Subscribe(nil)
	// The fast reader acknowledges each event before the next is
	// appended, so only the slow one can fall behind, however loaded the
	// machine is.
	acks := make(chan struct{})
	go func() {
		for range 100 {
			<-fast.Events()
			acks <- struct{}{}
		}
	}()
	for i := range 100 {
		r.AppendAudit(store.AuditEvent{Type: "x", Message: fmt.Sprint(i)})
		select {
		case <-acks:
		case <-time.After(5 * time.Second):
			t.Fatalf("fast subscriber stalled at event %d", i)
		}
	}
	select {
	case <-slow.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("slow subscriber not dropped")
	}
	if !errors.Is(slow.Err(), ErrSlowSubscriber) {
		t.Fatalf("slow err %v", slow.Err())
	}
	if len(sink.evs) != 100 {
		t.Fatalf("store got %d events", len(sink.evs))
	}
	if fast.Err() != nil {
		t.Fatalf("fast subscriber ended: %v", fast.Err())
	}
}

func TestCloseStreamsAndLimits(t *testing.T) {
	r, _, _ := newRecorder(Options{MaxSubscribers: 2})
	a, _ := r.Subscribe(nil)
	if _, err := r.Subscribe(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Subscribe(nil); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third subscriber: %v", err)
	}
	r.Gate(allowed("a", "t", 1))
	r.Close() // flushes, then closes the streams
	<-a.Done()
	if !errors.Is(a.Err(), ErrClosed) {
		t.Fatalf("err %v", a.Err())
	}
	if e := <-a.Events(); e.Type != TypeGateAllowSummary {
		t.Fatalf("the final summary was not streamed before the close: %+v", e)
	}
	if _, err := r.Subscribe(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
	r.Close() // idempotent
}

func TestRunPrunesAndSummarizes(t *testing.T) {
	c := &clock{t: t0}
	sink := &memSink{}
	r := New(Options{Store: sink, Now: c.Now, MaxAge: 48 * time.Hour, MaxEvents: 500,
		SummaryInterval: 10 * time.Millisecond, PruneInterval: 10 * time.Millisecond})
	r.Gate(allowed("a", "t", 1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sink.mu.Lock()
		n := len(sink.pruned)
		sink.mu.Unlock()
		if n >= 2 && len(sink.byType(TypeGateAllowSummary)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pruned %d times, events %v", n, sink.types())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	p := sink.pruned[0]
	if !p.before.Equal(t0.Add(-48*time.Hour)) || p.keep != 500 {
		t.Fatalf("prune(%v, %d)", p.before, p.keep)
	}
}

func TestNoRetentionNoPrune(t *testing.T) {
	r, sink, _ := newRecorder(Options{})
	if n := r.Prune(context.Background()); n != 0 || len(sink.pruned) != 0 {
		t.Fatalf("pruned without limits: %d %v", n, sink.pruned)
	}
}

// BenchmarkGateAllowSummary is the per-call cost on the gateway's hot
// path in the default mode.
func BenchmarkGateAllowSummary(b *testing.B) {
	r, _, _ := newRecorder(Options{})
	recs := make([]store.UsageRecord, 64)
	for i := range recs {
		recs[i] = allowed(fmt.Sprintf("key_%d", i), "search", 1)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Gate(recs[i%len(recs)])
			i++
		}
	})
}
