package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/mcp"
)

// pipe is an in-memory Conn: what the Mux sends lands in out, where a fake
// server reads it; the fake server answers through Mux.Receive.
type pipe struct{ out chan []byte }

func newPipe() *pipe { return &pipe{out: make(chan []byte, 1024)} }

func (p *pipe) Send(ctx context.Context, o Outgoing) error {
	select {
	case p.out <- o.Body:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// harness is a Mux attached to a pipe, with the test playing the server.
type harness struct {
	t    *testing.T
	mux  *Mux
	conn *pipe
	lis  *recListener
}

const initResult = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1"}}`

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, mux: NewMux(MuxConfig{Name: "fake", Transport: "test"}), conn: newPipe(), lis: newRecListener()}
	h.mux.SetListener(h.lis)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		res, err := h.mux.Handshake(ctx, h.conn)
		if err == nil {
			err = h.mux.Attach(ctx, h.conn, res)
		}
		done <- err
	}()
	init := h.next()
	if init.Method != mcp.MethodInitialize {
		t.Fatalf("first message %q, want initialize", init.Method)
	}
	h.receive(string(mcp.AppendResult(nil, init.ID, json.RawMessage(initResult))))
	if n := h.next(); n.Method != mcp.NotificationInitialized {
		t.Fatalf("second message %q, want notifications/initialized", n.Method)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return h
}

// next returns the next message the server received.
func (h *harness) next() *mcp.Message {
	h.t.Helper()
	select {
	case b := <-h.conn.out:
		m, err := mcp.Decode(b)
		if err != nil {
			h.t.Fatalf("mux sent invalid JSON-RPC %s: %v", b, err)
		}
		return m
	case <-time.After(10 * time.Second):
		h.t.Fatal("server received nothing")
		return nil
	}
}

func (h *harness) receive(raw string) { h.mux.Receive(h.conn, []byte(raw), nil) }

// call runs Call in the background.
func (h *harness) call(ctx context.Context, req *Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		m, err := h.mux.Call(ctx, req)
		ch <- result{m, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("call did not return")
		return result{}
	}
}

// testPeer records what is delivered to it.
type testPeer struct {
	session  string
	supports map[string]bool
	fail     bool
	got      chan []byte
}

func newTestPeer(session string, supports ...string) *testPeer {
	p := &testPeer{session: session, supports: map[string]bool{}, got: make(chan []byte, 64)}
	for _, s := range supports {
		p.supports[s] = true
	}
	return p
}

func (p *testPeer) Deliver(msg []byte) error {
	if p.fail {
		return errors.New("gone")
	}
	p.got <- append([]byte(nil), msg...)
	return nil
}
func (p *testPeer) SessionID() string           { return p.session }
func (p *testPeer) Supports(method string) bool { return p.supports[method] }

func (p *testPeer) next(t *testing.T) *mcp.Message {
	t.Helper()
	select {
	case b := <-p.got:
		m, err := mcp.Decode(b)
		if err != nil {
			t.Fatalf("peer got invalid JSON-RPC %s: %v", b, err)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("peer received nothing")
		return nil
	}
}

func (p *testPeer) none(t *testing.T) {
	t.Helper()
	select {
	case b := <-p.got:
		t.Fatalf("peer got unexpected %s", b)
	default:
	}
}

type recListener struct {
	msgs   chan *mcp.Message
	states chan Status
}

func newRecListener() *recListener {
	return &recListener{msgs: make(chan *mcp.Message, 64), states: make(chan Status, 64)}
}
func (l *recListener) OnMessage(m *mcp.Message) { l.msgs <- m }
func (l *recListener) OnStateChange(s Status)   { l.states <- s }

func TestMuxRestoresClientIDs(t *testing.T) {
	tests := []struct {
		name, id string
	}{
		{"integer", `1`},
		{"negative", `-7`},
		{"string", `"abc"`},
		{"escaped string", `"caf\u00e9 \"x\""`},
		{"fraction", `1.5`},
	}
	h := newHarness(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := h.call(context.Background(), &Request{ID: mcp.ID(tc.id), Method: "tools/list"})
			got := h.next()
			if _, ok := parseUpstreamID(got.ID); !ok {
				t.Fatalf("upstream id %s is not a gateway integer id", got.ID)
			}
			h.receive(`{"jsonrpc":"2.0","id":` + got.ID.String() + `,"result":{ "tools" : [] }}`)
			r := wait(t, ch)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if string(r.msg.ID) != tc.id {
				t.Errorf("id = %s, want %s", r.msg.ID, tc.id)
			}
			if string(r.msg.Result) != `{ "tools" : [] }` {
				t.Errorf("result re-encoded: %s", r.msg.Result)
			}
		})
	}
}

func TestMuxCollidingIDsDoNotCross(t *testing.T) {
	h := newHarness(t)
	a, b := newTestPeer("A"), newTestPeer("B")
	ca := h.call(context.Background(), &Request{ID: mcp.ID(`1`), Method: "tools/call", Peer: a, Params: json.RawMessage(`{"name":"a"}`)})
	ma := h.next()
	cb := h.call(context.Background(), &Request{ID: mcp.ID(`1`), Method: "tools/call", Peer: b, Params: json.RawMessage(`{"name":"b"}`)})
	mb := h.next()
	if ma.ID.String() == mb.ID.String() {
		t.Fatalf("both calls went upstream with id %s", ma.ID)
	}
	// Answer in reverse order.
	h.receive(`{"jsonrpc":"2.0","id":` + mb.ID.String() + `,"result":{"for":"b"}}`)
	h.receive(`{"jsonrpc":"2.0","id":` + ma.ID.String() + `,"error":{"code":-32000,"message":"for a","data":{"x":1}}}`)
	ra, rb := wait(t, ca), wait(t, cb)
	if string(rb.msg.Result) != `{"for":"b"}` || rb.msg.ID.String() != "1" {
		t.Errorf("b got %+v", rb.msg)
	}
	if ra.msg.Error == nil || ra.msg.Error.Message != "for a" || string(ra.msg.Error.Data) != `{"x":1}` || ra.msg.ID.String() != "1" {
		t.Errorf("a got %+v", ra.msg)
	}
}

func TestMuxForwardsParamsUntouched(t *testing.T) {
	h := newHarness(t)
	params := `{ "name" : "x",  "arguments": {"b":2,"a":[1, 2]}, "_meta": {"other": 1} }`
	ch := h.call(context.Background(), &Request{ID: mcp.ID(`1`), Method: "tools/call", Params: json.RawMessage(params)})
	got := h.next()
	if string(got.Params) != params {
		t.Errorf("params changed:\n got %s\nwant %s", got.Params, params)
	}
	h.receive(`{"jsonrpc":"2.0","id":` + got.ID.String() + `,"result":{}}`)
	wait(t, ch)
}

func TestMuxTranslatesProgressTokens(t *testing.T) {
	tests := []struct {
		name, token string
	}{
		{"string token", `"client-tok"`},
		{"number token", `7`},
	}
	h := newHarness(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPeer("s1")
			params := `{"name":"slow","arguments":{"progressToken":"not-meta"},"_meta": { "progressToken" : ` + tc.token + ` ,"k":1}}`
			ch := h.call(context.Background(), &Request{ID: mcp.ID(`5`), Method: "tools/call", Params: json.RawMessage(params), Peer: p})
			got := h.next()
			s, e, ok := metaProgressToken(got.Params)
			if !ok {
				t.Fatalf("no token upstream: %s", got.Params)
			}
			upTok := string(got.Params[s:e])
			if upTok == tc.token {
				t.Fatalf("token forwarded unchanged")
			}
			if want := strings.Replace(params, tc.token, upTok, 1); string(got.Params) != want {
				t.Errorf("params beyond the token changed:\n got %s\nwant %s", got.Params, want)
			}
			h.receive(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":` + upTok + `,"progress":50,"total":100}}`)
			n := p.next(t)
			if n.Method != mcp.NotificationProgress || string(n.Params) != `{"progressToken":`+tc.token+`,"progress":50,"total":100}` {
				t.Errorf("peer got %s %s", n.Method, n.Params)
			}
			h.receive(`{"jsonrpc":"2.0","id":` + got.ID.String() + `,"result":{}}`)
			wait(t, ch)
			// After the response the token is forgotten.
			h.receive(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":` + upTok + `,"progress":99}}`)
			p.none(t)
		})
	}
}

func TestMuxCancelSendsNotificationUpstream(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch := h.call(ctx, &Request{ID: mcp.ID(`"c1"`), Method: "tools/call", Params: json.RawMessage(`{"name":"slow"}`)})
	req := h.next()
	cancel()
	r := wait(t, ch)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}
	n := h.next()
	if n.Method != mcp.NotificationCancelled {
		t.Fatalf("server got %s, want notifications/cancelled", n.Method)
	}
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	_ = json.Unmarshal(n.Params, &p)
	if string(p.RequestID) != req.ID.String() {
		t.Errorf("cancelled requestId %s, want upstream id %s", p.RequestID, req.ID)
	}
	// The server answers anyway: dropped.
	h.receive(`{"jsonrpc":"2.0","id":` + req.ID.String() + `,"result":{}}`)
	if st := h.mux.Status(); st.InFlight != 0 {
		t.Errorf("in flight = %d after cancel", st.InFlight)
	}
}

func TestMuxClientCancel(t *testing.T) {
	h := newHarness(t)
	a, b := newTestPeer("A"), newTestPeer("B")
	ch := h.call(context.Background(), &Request{ID: mcp.ID(`1`), Method: "tools/call", Peer: a})
	req := h.next()
	cancelParams := json.RawMessage(`{"requestId":1,"reason":"user hit stop"}`)
	// Another client's cancel for its own id 1 must not touch a's call.
	if err := h.mux.Notify(context.Background(), &mcp.Message{Method: mcp.NotificationCancelled, Params: cancelParams}, b); err != nil {
		t.Fatal(err)
	}
	if err := h.mux.Notify(context.Background(), &mcp.Message{Method: mcp.NotificationCancelled, Params: cancelParams}, a); err != nil {
		t.Fatal(err)
	}
	r := wait(t, ch)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}
	n := h.next()
	want := `{"requestId":` + req.ID.String() + `,"reason":"user hit stop"}`
	if n.Method != mcp.NotificationCancelled || string(n.Params) != want {
		t.Errorf("server got %s %s, want %s", n.Method, n.Params, want)
	}
}

func TestMuxServerRequests(t *testing.T) {
	const sampling = mcp.MethodSamplingCreateMessage
	shared := newTestPeer("A", sampling)
	tests := []struct {
		name     string
		peers    []*testPeer // each has one call in flight
		related  int         // index+1 of the call whose stream carried the request; 0: none
		wantPeer int         // index+1 of the peer that must get it; 0: refused
		wantCode int64
	}{
		{name: "single peer", peers: []*testPeer{newTestPeer("A", sampling)}, wantPeer: 1},
		{name: "two calls of one peer", peers: []*testPeer{shared, shared}, wantPeer: 1},
		{name: "two sessions, ambiguous", peers: []*testPeer{newTestPeer("A", sampling), newTestPeer("B", sampling)}, wantCode: mcp.CodeInternalError},
		{name: "two sessions, only one capable", peers: []*testPeer{newTestPeer("A"), newTestPeer("B", sampling)}, wantPeer: 2},
		{name: "related call", peers: []*testPeer{newTestPeer("A", sampling), newTestPeer("B", sampling)}, related: 2, wantPeer: 2},
		{name: "related call not capable", peers: []*testPeer{newTestPeer("A", sampling), newTestPeer("B")}, related: 2, wantCode: mcp.CodeMethodNotFound},
		{name: "nobody capable", peers: []*testPeer{newTestPeer("A")}, wantCode: mcp.CodeMethodNotFound},
		{name: "nobody in flight", wantCode: mcp.CodeInternalError},
		{name: "delivery fails", peers: []*testPeer{{session: "A", supports: map[string]bool{sampling: true}, fail: true}}, wantCode: mcp.CodeInternalError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var upIDs []mcp.ID
			for i, p := range tc.peers {
				h.call(ctx, &Request{ID: mcp.Int64ID(int64(i + 1)), Method: "tools/call", Peer: p})
				upIDs = append(upIDs, h.next().ID)
			}
			var related mcp.ID
			if tc.related > 0 {
				related = upIDs[tc.related-1]
			}
			h.mux.Receive(h.conn, []byte(`{"jsonrpc":"2.0","id":"srv-1","method":"sampling/createMessage","params":{"maxTokens":5}}`), related)
			if tc.wantPeer == 0 {
				resp := h.next()
				if resp.Error == nil || resp.Error.Code != tc.wantCode || resp.ID.String() != `"srv-1"` {
					t.Fatalf("server got %+v, want error %d for \"srv-1\"", resp, tc.wantCode)
				}
				return
			}
			p := tc.peers[tc.wantPeer-1]
			got := p.next(t)
			if got.Method != sampling || !strings.HasPrefix(got.ID.String(), `"pg-s-`) || string(got.Params) != `{"maxTokens":5}` {
				t.Fatalf("peer got %+v", got)
			}
			for i, q := range tc.peers {
				if i != tc.wantPeer-1 && q != p {
					q.none(t)
				}
			}
			// A reply from another session is ignored; the right one goes up
			// with the server's own id.
			other := newTestPeer("Z", sampling)
			reply := &mcp.Message{ID: got.ID, Result: json.RawMessage(`{"role":"assistant"}`)}
			if err := h.mux.Reply(ctx, reply, other); err != nil {
				t.Fatal(err)
			}
			if err := h.mux.Reply(ctx, reply, p); err != nil {
				t.Fatal(err)
			}
			resp := h.next()
			if resp.ID.String() != `"srv-1"` || string(resp.Result) != `{"role":"assistant"}` {
				t.Errorf("server got %+v", resp)
			}
		})
	}
}

func TestMuxServerCancelsItsRequest(t *testing.T) {
	h := newHarness(t)
	p := newTestPeer("A", mcp.MethodElicitationCreate)
	h.call(context.Background(), &Request{ID: mcp.ID(`1`), Method: "tools/call", Peer: p})
	h.next()
	h.receive(`{"jsonrpc":"2.0","id":42,"method":"elicitation/create","params":{}}`)
	req := p.next(t)
	h.receive(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42,"reason":"timeout"}}`)
	n := p.next(t)
	if n.Method != mcp.NotificationCancelled || string(n.Params) != `{"requestId":`+req.ID.String()+`,"reason":"timeout"}` {
		t.Errorf("peer got %s %s", n.Method, n.Params)
	}
	// A late reply is dropped: nothing goes upstream.
	if err := h.mux.Reply(context.Background(), &mcp.Message{ID: req.ID, Result: json.RawMessage(`{}`)}, p); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-h.conn.out:
		t.Errorf("server got %s", b)
	default:
	}
}

func TestMuxForgetPeerAnswersUpstream(t *testing.T) {
	h := newHarness(t)
	p := newTestPeer("A", mcp.MethodRootsList)
	h.call(context.Background(), &Request{ID: mcp.ID(`1`), Method: "tools/call", Peer: p})
	h.next()
	h.receive(`{"jsonrpc":"2.0","id":"r1","method":"roots/list"}`)
	p.next(t)
	h.mux.ForgetPeer(newTestPeer("A")) // another handle on the same session
	resp := h.next()
	if resp.ID.String() != `"r1"` || resp.Error == nil || resp.Error.Code != mcp.CodeInternalError {
		t.Errorf("server got %+v", resp)
	}
}

func TestMuxNotificationRouting(t *testing.T) {
	h := newHarness(t)
	a, b := newTestPeer("A"), newTestPeer("B")
	h.call(context.Background(), &Request{ID: mcp.ID(`1`), Method: "tools/call", Peer: a})
	ua := h.next()
	logMsg := `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}`

	h.receive(logMsg) // one peer in flight: it gets the log
	if got := a.next(t); got.Method != mcp.NotificationMessage {
		t.Errorf("a got %s", got.Method)
	}
	h.receive(`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`) // always the listener's
	if got := <-h.lis.msgs; got.Method != mcp.NotificationToolsListChanged {
		t.Errorf("listener got %s", got.Method)
	}
	a.none(t)

	h.call(context.Background(), &Request{ID: mcp.ID(`1`), Method: "tools/call", Peer: b})
	h.next()
	h.receive(logMsg) // ambiguous: the listener
	if got := <-h.lis.msgs; got.Method != mcp.NotificationMessage {
		t.Errorf("listener got %s", got.Method)
	}
	h.mux.Receive(h.conn, []byte(logMsg), ua.ID) // related: a
	if got := a.next(t); got.Method != mcp.NotificationMessage {
		t.Errorf("a got %s", got.Method)
	}
	b.none(t)
}

func TestMuxLostFailsPendingAndRecovers(t *testing.T) {
	h := newHarness(t)
	ch := h.call(context.Background(), &Request{ID: mcp.ID(`1`), Method: "tools/call"})
	h.next()
	<-h.lis.states // ready, from the handshake
	h.mux.Lost(h.conn, errors.New("child exited"))
	if r := wait(t, ch); !errors.Is(r.err, ErrConnectionLost) {
		t.Fatalf("err = %v, want ErrConnectionLost", r.err)
	}
	if st := <-h.lis.states; st.State != StateRestarting || st.LastError != "child exited" {
		t.Errorf("state %+v", st)
	}
	_, err := h.mux.Call(context.Background(), &Request{ID: mcp.ID(`2`), Method: "ping"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "restarting") {
		t.Fatalf("err = %v, want ErrUnavailable (restarting)", err)
	}

	c2 := newPipe()
	go func() {
		b := <-c2.out
		m, _ := mcp.Decode(b)
		h.mux.Receive(c2, mcp.AppendResult(nil, m.ID, json.RawMessage(initResult)), nil)
		<-c2.out // initialized
	}()
	res, err := h.mux.Handshake(context.Background(), c2)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.mux.Attach(context.Background(), c2, res); err != nil {
		t.Fatal(err)
	}
	if st := h.mux.Status(); st.State != StateReady || st.Restarts != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestMuxCrashLoop(t *testing.T) {
	m := NewMux(MuxConfig{Name: "x"})
	for i := range crashLoopFailures {
		m.DialFailed(fmt.Errorf("exit %d", i))
	}
	st := m.Status()
	if !st.CrashLoop || st.State != StateDown {
		t.Errorf("status %+v, want crash loop and down", st)
	}
}

func TestMuxShutdown(t *testing.T) {
	h := newHarness(t)
	ch := h.call(context.Background(), &Request{ID: mcp.ID(`1`), Method: "tools/call"})
	h.next()
	h.mux.Shutdown(context.Background())
	if r := wait(t, ch); !errors.Is(r.err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", r.err)
	}
	if _, err := h.mux.Call(context.Background(), &Request{ID: mcp.ID(`2`), Method: "ping"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestMuxAnswersPing(t *testing.T) {
	h := newHarness(t)
	h.receive(`{"jsonrpc":"2.0","id":"p1","method":"ping"}`)
	if resp := h.next(); resp.ID.String() != `"p1"` || resp.Error != nil {
		t.Errorf("server got %+v", resp)
	}
}

func TestMemberSpan(t *testing.T) {
	tests := []struct {
		name, obj, key, want string
		ok                   bool
	}{
		{"simple", `{"a":1}`, "a", `1`, true},
		{"spaces", `{ "a" :  "x y" , "b":2}`, "a", `"x y"`, true},
		{"nested not top level", `{"x":{"a":1},"a":2}`, "a", `2`, true},
		{"object value", `{"a":{"b":[1,2]}}`, "a", `{"b":[1,2]}`, true},
		{"missing", `{"b":1}`, "a", ``, false},
		{"not an object", `[1]`, "a", ``, false},
		{"malformed", `{"a":`, "a", ``, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, e, ok := mcp.MemberSpan([]byte(tc.obj), tc.key)
			if ok != tc.ok || (ok && tc.obj[s:e] != tc.want) {
				t.Errorf("memberSpan = %v %q, want %v %q", ok, tc.obj[s:e], tc.ok, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 4 * time.Second, Stable: time.Minute}
	var got []time.Duration
	for range 4 {
		got = append(got, b.Next(0))
	}
	got = append(got, b.Next(2*time.Minute))
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", got, want)
	}
}

// echoServer answers every request on p with an empty result, from its own
// goroutine, as a real transport's reader would.
func echoServer(m *Mux, p *pipe, stop <-chan struct{}) {
	for {
		select {
		case b := <-p.out:
			msg, err := mcp.Decode(b)
			if err != nil || !msg.IsRequest() {
				continue
			}
			m.Receive(p, mcp.AppendResult(nil, msg.ID, json.RawMessage(`{"content":[]}`)), nil)
		case <-stop:
			return
		}
	}
}

func BenchmarkMuxCall(b *testing.B) {
	m := NewMux(MuxConfig{Name: "bench"})
	p := newPipe()
	stop := make(chan struct{})
	defer close(stop)
	go echoServer(m, p, stop)
	// Attach without the handshake round trip: the echo server ignores the
	// initialized notification.
	if err := m.Attach(context.Background(), p, &InitializeResult{ProtocolVersion: mcp.LatestVersion}); err != nil {
		b.Fatal(err)
	}
	peer := newTestPeer("s")
	for _, bc := range []struct {
		name   string
		params string
	}{
		{"plain", `{"name":"echo","arguments":{"message":"hello"}}`},
		{"progress", `{"name":"echo","arguments":{"message":"hello"},"_meta":{"progressToken":"t1"}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := &Request{ID: mcp.ID(`1`), Method: "tools/call", Params: json.RawMessage(bc.params), Peer: peer}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Call(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var mu sync.Mutex
		n := 0
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			n++
			p := newTestPeer(fmt.Sprint("s", n))
			mu.Unlock()
			req := &Request{ID: mcp.ID(`1`), Method: "tools/call", Params: json.RawMessage(`{"name":"echo"}`), Peer: p}
			for pb.Next() {
				if _, err := m.Call(context.Background(), req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
