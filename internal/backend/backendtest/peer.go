package backendtest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// Peer is a fake client session: it records what a backend delivers to it
// and, when given an answer function, replies to server requests the way a
// client would.
type Peer struct {
	session  string
	supports []string

	mu     sync.Mutex
	b      backend.Backend
	answer func(req *mcp.Message) *mcp.Message
	got    []*mcp.Message
	ch     chan *mcp.Message
}

var _ backend.Peer = (*Peer)(nil)

// NewPeer returns a peer of the given session that declares the
// capabilities for the listed server-request methods.
func NewPeer(session string, supports ...string) *Peer {
	return &Peer{session: session, supports: supports, ch: make(chan *mcp.Message, 1024)}
}

// AnswerWith makes p reply through b to every server request delivered to
// it, with what answer returns (nil: no reply). Replies are sent from
// another goroutine, as a client's would come in on another HTTP request.
func (p *Peer) AnswerWith(b backend.Backend, answer func(req *mcp.Message) *mcp.Message) {
	p.mu.Lock()
	p.b, p.answer = b, answer
	p.mu.Unlock()
}

// Deliver implements backend.Peer.
func (p *Peer) Deliver(raw []byte) error {
	m, err := mcp.Decode(slices.Clone(raw))
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.got = append(p.got, m)
	b, answer := p.b, p.answer
	p.mu.Unlock()
	p.ch <- m
	if m.IsRequest() && answer != nil {
		go func() {
			if resp := answer(m); resp != nil {
				resp.ID = m.ID
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = b.Reply(ctx, resp, p)
			}
		}()
	}
	return nil
}

// SessionID implements backend.Peer.
func (p *Peer) SessionID() string { return p.session }

// Supports implements backend.Peer.
func (p *Peer) Supports(method string) bool { return slices.Contains(p.supports, method) }

// Messages returns everything delivered so far.
func (p *Peer) Messages() []*mcp.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// Next waits for the next delivered message whose method is one of
// methods (any message when none are given), skipping others.
func (p *Peer) Next(t testing.TB, methods ...string) *mcp.Message {
	t.Helper()
	deadline := time.After(waitLong)
	for {
		select {
		case m := <-p.ch:
			if len(methods) == 0 || slices.Contains(methods, m.Method) {
				return m
			}
		case <-deadline:
			t.Fatalf("peer %s: nothing delivered (want %v)", p.session, methods)
			return nil
		}
	}
}

// waitLong bounds every wait in the suite. Nothing should take this long;
// it only turns a hang into a failure.
const waitLong = 30 * time.Second

// Listener records what a backend sends to its listener.
type Listener struct {
	mu     sync.Mutex
	msgs   []*mcp.Message
	states []backend.Status
}

var _ backend.Listener = (*Listener)(nil)

// OnMessage implements backend.Listener.
func (l *Listener) OnMessage(m *mcp.Message) {
	m = &mcp.Message{ID: slices.Clone(m.ID), Method: m.Method, Params: slices.Clone(m.Params)}
	l.mu.Lock()
	l.msgs = append(l.msgs, m)
	l.mu.Unlock()
}

// OnStateChange implements backend.Listener.
func (l *Listener) OnStateChange(s backend.Status) {
	l.mu.Lock()
	l.states = append(l.states, s)
	l.mu.Unlock()
}

// States returns the state changes seen so far.
func (l *Listener) States() []backend.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.states)
}

// Messages returns the messages seen so far.
func (l *Listener) Messages() []*mcp.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

// Eventually polls cond until it holds, failing after a generous bound.
// It waits for things that happen asynchronously (a restart, a message
// reaching the server); it asserts nothing about how long they take.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
