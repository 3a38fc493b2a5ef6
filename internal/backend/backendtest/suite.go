// Package backendtest is the contract suite every backend transport runs
// against real MCP servers: handshake, tools, prompts and resources,
// progress routing, cancellation, sampling and elicitation round trips,
// many clients with colliding ids, and error pass-through.
package backendtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// Tapped is implemented by a backend under test that can show the bytes
// that reached its server (a recording proxy, a tee in front of the
// process). With it the suite also checks that cancellations reach the
// server; without it, it can only check the client side.
type Tapped interface {
	Upstream() []byte
}

// Tap wraps b so the suite can see its upstream traffic through upstream.
func Tap(b backend.Backend, upstream func() []byte) backend.Backend {
	return &tapped{Backend: b, upstream: upstream}
}

type tapped struct {
	backend.Backend
	upstream func() []byte
}

func (t *tapped) Upstream() []byte { return t.upstream() }

// Run runs the contract suite. newBackend returns a backend on a fresh
// server, not yet started; the suite sets its listener, starts it, and
// closes it (its last subtest checks Close). The subtests share it, so each
// also checks that the backend stays healthy after the previous one.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	b := newBackend(t)
	lis := &Listener{}
	b.SetListener(lis)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	s := &suite{b: b, lis: lis}
	list := s.call(t, context.Background(), `"tools"`, mcp.MethodToolsList, `{}`, nil)
	var err error
	if s.tools, err = parseCatalogue(list.Result); err != nil {
		t.Fatalf("tools/list result: %v", err)
	}

	t.Run("Initialize", s.testInitialize)
	t.Run("ToolsList", s.testToolsList)
	t.Run("ToolsCall", s.testToolsCall)
	t.Run("PromptsAndResources", s.testPromptsAndResources)
	t.Run("UnknownMethod", s.testUnknownMethod)
	t.Run("Progress", s.testProgress)
	t.Run("Sampling", s.testSampling)
	t.Run("Elicitation", s.testElicitation)
	t.Run("Cancel", s.testCancel)
	t.Run("ClientCancel", s.testClientCancel)
	t.Run("ConcurrentPeers", s.testConcurrentPeers)
	t.Run("ClientNotification", s.testClientNotification)
	t.Run("CloseDuringCall", s.testCloseDuringCall) // last: it ends the backend
}

type suite struct {
	b     backend.Backend
	lis   *Listener
	tools catalogue
}

// call makes a request that must succeed at the transport level and come
// back with its id restored byte for byte.
func (s *suite) call(t testing.TB, ctx context.Context, id, method, params string, peer backend.Peer) *mcp.Message {
	t.Helper()
	m, err := s.try(ctx, id, method, params, peer)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// try is call for goroutines other than the test's, which must not Fatal.
func (s *suite) try(ctx context.Context, id, method, params string, peer backend.Peer) (*mcp.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	req := &backend.Request{ID: mcp.ID(id), Method: method, Params: json.RawMessage(params)}
	if peer != nil {
		req.Peer = peer
	}
	m, err := s.b.Call(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	if string(m.ID) != id {
		return nil, fmt.Errorf("%s: response id %s, want %s", method, m.ID, id)
	}
	return m, nil
}

func (s *suite) need(t *testing.T, what string, tools []tool) tool {
	t.Helper()
	tl, ok := s.tools.pick(tools)
	if !ok {
		t.Skipf("server offers no %s tool", what)
	}
	return tl
}

func (s *suite) testInitialize(t *testing.T) {
	init := s.b.Initialize()
	if init == nil {
		t.Fatal("Initialize() is nil after Start")
	}
	if !mcp.IsSupportedVersion(init.ProtocolVersion) {
		t.Errorf("protocol version %q", init.ProtocolVersion)
	}
	var info struct{ Name string }
	if err := json.Unmarshal(init.ServerInfo, &info); err != nil || info.Name == "" {
		t.Errorf("serverInfo %s", init.ServerInfo)
	}
	if len(init.Capabilities) == 0 {
		t.Error("no capabilities")
	}
	st := s.b.Status()
	if st.State != backend.StateReady || st.Name != s.b.Name() || st.Transport == "" {
		t.Errorf("status %+v", st)
	}
}

func (s *suite) testToolsList(t *testing.T) {
	m := s.call(t, context.Background(), `7`, mcp.MethodToolsList, `{}`, nil)
	c, err := parseCatalogue(m.Result)
	if err != nil || len(c) == 0 {
		t.Fatalf("tools/list: %s (%v)", m.Result, err)
	}
}

func (s *suite) testToolsCall(t *testing.T) {
	tl := s.need(t, "simple", simpleTools)
	// An escaped string id must come back exactly as sent.
	m := s.call(t, context.Background(), `"caf\u00e9-1"`, mcp.MethodToolsCall, string(callParams(tl, "", "")), nil)
	if m.Error != nil || mcp.ToolResultIsError(m.Result) || len(m.Result) < 2 {
		t.Fatalf("tools/call %s: %+v %s", tl.name, m.Error, m.Result)
	}
}

func (s *suite) testPromptsAndResources(t *testing.T) {
	caps := string(s.b.Initialize().Capabilities)
	ran := false
	if strings.Contains(caps, `"prompts"`) {
		ran = true
		m := s.call(t, context.Background(), `1`, mcp.MethodPromptsList, `{}`, nil)
		var list struct {
			Prompts []struct {
				Name      string `json:"name"`
				Arguments []struct {
					Required bool `json:"required"`
				} `json:"arguments"`
			} `json:"prompts"`
		}
		if err := json.Unmarshal(m.Result, &list); err != nil || len(list.Prompts) == 0 {
			t.Fatalf("prompts/list: %s", m.Result)
		}
		// A prompt without required arguments, preferably a plain one:
		// some prompts ask the client for input first.
		name := ""
		for _, p := range list.Prompts {
			req := false
			for _, a := range p.Arguments {
				req = req || a.Required
			}
			if !req && (name == "" || strings.Contains(p.Name, "simple")) {
				name = p.Name
			}
		}
		if name != "" {
			m := s.call(t, context.Background(), `2`, mcp.MethodPromptsGet, fmt.Sprintf(`{"name":%q}`, name), nil)
			if m.Error != nil || !bytes.Contains(m.Result, []byte(`"messages"`)) {
				t.Errorf("prompts/get %s: %+v %s", name, m.Error, m.Result)
			}
		}
	}
	if strings.Contains(caps, `"resources"`) {
		ran = true
		m := s.call(t, context.Background(), `3`, mcp.MethodResourcesList, `{}`, nil)
		var list struct {
			Resources []struct {
				URI string `json:"uri"`
			} `json:"resources"`
		}
		if err := json.Unmarshal(m.Result, &list); err != nil || len(list.Resources) == 0 {
			t.Fatalf("resources/list: %s", m.Result)
		}
		uri := list.Resources[0].URI
		m = s.call(t, context.Background(), `4`, mcp.MethodResourcesRead, fmt.Sprintf(`{"uri":%q}`, uri), nil)
		if m.Error != nil || !bytes.Contains(m.Result, []byte(`"contents"`)) {
			t.Errorf("resources/read %s: %+v %s", uri, m.Error, m.Result)
		}
	}
	if !ran {
		t.Skip("server offers neither prompts nor resources")
	}
}

func (s *suite) testUnknownMethod(t *testing.T) {
	m := s.call(t, context.Background(), `"u1"`, "paygate/no-such-method", `{}`, nil)
	switch {
	case m.Error == nil:
		t.Fatalf("got result %s, want an error", m.Result)
	case m.Error.Code == mcp.CodeMethodNotFound:
	case m.Error.Code == mcp.CodeInvalidRequest && strings.Contains(m.Error.Message, "HTTP 400"):
		// Streamable HTTP servers may refuse a request they cannot route
		// with a bare 400, which the backend reports as invalid request.
	default:
		t.Fatalf("got %+v, want the server's -32601", m.Error)
	}
}

// progressTokens returns the tokens of the progress notifications p got.
func progressTokens(p *Peer) []string {
	var toks []string
	for _, m := range p.Messages() {
		if m.Method != mcp.NotificationProgress {
			continue
		}
		var params struct {
			Token json.RawMessage `json:"progressToken"`
		}
		_ = json.Unmarshal(m.Params, &params)
		toks = append(toks, string(params.Token))
	}
	return toks
}

func (s *suite) testProgress(t *testing.T) {
	tl := s.need(t, "progress", progressTools)
	peers := []*Peer{NewPeer("progress-A"), NewPeer("progress-B")}
	tokens := []string{`"tok-A"`, `17`}
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			if _, err := s.try(context.Background(), `1`, mcp.MethodToolsCall, string(callParams(tl, "", tokens[i])), p); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, p := range peers {
		got := progressTokens(p)
		if len(got) == 0 {
			t.Errorf("peer %d got no progress", i)
		}
		for _, tok := range got {
			if tok != tokens[i] {
				t.Errorf("peer %d got progress for token %s, want %s", i, tok, tokens[i])
			}
		}
	}
}

func samplingAnswer(req *mcp.Message) *mcp.Message {
	return &mcp.Message{Result: json.RawMessage(`{"role":"assistant","content":{"type":"text","text":"pong-42"},"model":"paygate-test","stopReason":"endTurn"}`)}
}

// elicitationAnswer accepts, filling every plain string field with "alice".
func elicitationAnswer(req *mcp.Message) *mcp.Message {
	var p struct {
		Schema struct {
			Properties map[string]struct {
				Type   string `json:"type"`
				Format string `json:"format"`
			} `json:"properties"`
		} `json:"requestedSchema"`
	}
	_ = json.Unmarshal(req.Params, &p)
	content := map[string]any{}
	for k, v := range p.Schema.Properties {
		if v.Type == "string" && v.Format == "" {
			content[k] = "alice"
		}
	}
	b, _ := json.Marshal(map[string]any{"action": "accept", "content": content})
	return &mcp.Message{Result: b}
}

func (s *suite) testSampling(t *testing.T) {
	tl := s.need(t, "sampling", samplingTools)
	p := NewPeer("sampling", mcp.MethodSamplingCreateMessage)
	p.AnswerWith(s.b, samplingAnswer)
	m := s.call(t, context.Background(), `1`, mcp.MethodToolsCall, string(callParams(tl, "ping", "")), p)
	if m.Error != nil || !strings.Contains(toolText(m.Result), "pong-42") {
		t.Fatalf("tools/call %s: %+v %s", tl.name, m.Error, m.Result)
	}
	req := p.Next(t, mcp.MethodSamplingCreateMessage)
	if !req.IsRequest() || req.ID[0] != '"' {
		t.Errorf("delivered %+v, want a request with a gateway string id", req)
	}
}

func (s *suite) testElicitation(t *testing.T) {
	tl := s.need(t, "elicitation", elicitationTools)
	p := NewPeer("elicitation", mcp.MethodElicitationCreate)
	p.AnswerWith(s.b, elicitationAnswer)
	m := s.call(t, context.Background(), `1`, mcp.MethodToolsCall, string(callParams(tl, "who are you?", "")), p)
	if m.Error != nil || !strings.Contains(toolText(m.Result), "alice") {
		t.Fatalf("tools/call %s: %+v %s", tl.name, m.Error, m.Result)
	}
}

// cancelsUpstream counts notifications/cancelled that reached the server,
// or returns -1 when the backend cannot show it.
func (s *suite) cancelsUpstream() int {
	tb, ok := s.b.(Tapped)
	if !ok {
		return -1
	}
	return bytes.Count(tb.Upstream(), []byte(`"notifications/cancelled"`))
}

// blockedCall starts a call that stays in flight until cancelled: the
// server waits for a sampling answer the peer never gives.
func (s *suite) blockedCall(t *testing.T, ctx context.Context, id string, p *Peer) (<-chan error, *mcp.Message) {
	tl := s.need(t, "sampling", samplingTools)
	errc := make(chan error, 1)
	go func() {
		_, err := s.b.Call(ctx, &backend.Request{ID: mcp.ID(id), Method: mcp.MethodToolsCall, Params: callParams(tl, "never answered", ""), Peer: p})
		errc <- err
	}()
	return errc, p.Next(t, mcp.MethodSamplingCreateMessage)
}

func waitErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(waitLong):
		t.Fatal("cancelled call did not return")
		return nil
	}
}

func (s *suite) testCancel(t *testing.T) {
	before := s.cancelsUpstream()
	p := NewPeer("cancel", mcp.MethodSamplingCreateMessage)
	ctx, cancel := context.WithCancel(context.Background())
	errc, req := s.blockedCall(t, ctx, `1`, p)
	cancel()
	if err := waitErr(t, errc); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if before >= 0 {
		Eventually(t, "notifications/cancelled to reach the server", func() bool { return s.cancelsUpstream() > before })
	}
	// The client answering late is harmless.
	if err := s.b.Reply(context.Background(), &mcp.Message{ID: req.ID, Result: samplingAnswer(req).Result}, p); err != nil {
		t.Errorf("late reply: %v", err)
	}
	s.call(t, context.Background(), `2`, mcp.MethodToolsList, `{}`, nil)
	if n := s.b.Status().InFlight; n != 0 {
		t.Errorf("%d calls still in flight", n)
	}
}

func (s *suite) testClientCancel(t *testing.T) {
	before := s.cancelsUpstream()
	p := NewPeer("client-cancel", mcp.MethodSamplingCreateMessage)
	errc, _ := s.blockedCall(t, context.Background(), `5`, p)
	// The gateway may notify through another handle on the same session.
	n := &mcp.Message{Method: mcp.NotificationCancelled, Params: json.RawMessage(`{"requestId":5,"reason":"stop"}`)}
	if err := s.b.Notify(context.Background(), n, NewPeer("client-cancel")); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, errc); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if before >= 0 {
		Eventually(t, "notifications/cancelled to reach the server", func() bool { return s.cancelsUpstream() > before })
	}
}

// testConcurrentPeers: many clients, all numbering their requests 1, 2,
// 3, over one backend. Every response must reach its own caller and every
// progress notification its own peer.
func (s *suite) testConcurrentPeers(t *testing.T) {
	const peers = 64
	echo, hasEcho := s.tools.pick(echoTools)
	simple, hasSimple := s.tools.pick(simpleTools)
	progress, hasProgress := s.tools.pick(progressTools)
	var wg sync.WaitGroup
	ps := make([]*Peer, peers)
	for i := range peers {
		ps[i] = NewPeer(fmt.Sprintf("peer-%d", i))
		wg.Go(func() {
			if err := s.peerCalls(ps[i], i, echo, hasEcho, simple, hasSimple, progress, hasProgress); err != nil {
				t.Errorf("peer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i, p := range ps {
		want := fmt.Sprintf(`"p%d"`, i)
		for _, m := range p.Messages() {
			if m.Method != mcp.NotificationProgress {
				t.Errorf("peer %d got unexpected %s", i, mcp.Encode(m))
			}
		}
		toks := progressTokens(p)
		if hasProgress && len(toks) == 0 {
			t.Errorf("peer %d got no progress", i)
		}
		for _, tok := range toks {
			if tok != want {
				t.Errorf("peer %d got progress for %s", i, tok)
			}
		}
	}
}

// peerCalls is one client's share of testConcurrentPeers: requests 1, 2, 3.
func (s *suite) peerCalls(p *Peer, i int, echo tool, hasEcho bool, simple tool, hasSimple bool, progress tool, hasProgress bool) error {
	ctx := context.Background()
	var m *mcp.Message
	var err error
	marker := fmt.Sprintf("peer-%d-call-1", i)
	switch {
	case hasEcho:
		if m, err = s.try(ctx, `1`, mcp.MethodToolsCall, string(callParams(echo, marker, "")), p); err == nil && !strings.Contains(toolText(m.Result), marker) {
			err = fmt.Errorf("got someone else's result: %s", m.Result)
		}
	case hasSimple:
		_, err = s.try(ctx, `1`, mcp.MethodToolsCall, string(callParams(simple, "", "")), p)
	default:
		_, err = s.try(ctx, `1`, mcp.MethodPing, `{}`, p)
	}
	if err != nil {
		return err
	}
	if hasProgress {
		_, err = s.try(ctx, `2`, mcp.MethodToolsCall, string(callParams(progress, "", fmt.Sprintf(`"p%d"`, i))), p)
	} else {
		_, err = s.try(ctx, `2`, mcp.MethodToolsList, `{}`, p)
	}
	if err != nil {
		return err
	}
	_, err = s.try(ctx, `3`, mcp.MethodToolsList, `{}`, p)
	return err
}

func (s *suite) testClientNotification(t *testing.T) {
	n := &mcp.Message{Method: mcp.NotificationRootsListChanged}
	if err := s.b.Notify(context.Background(), n, NewPeer("notify")); err != nil {
		t.Fatalf("notify: %v", err)
	}
	s.call(t, context.Background(), `1`, mcp.MethodPing, `{}`, nil)
}

// testCloseDuringCall: Close fails what is in flight at once with
// ErrClosed, and everything after it too.
func (s *suite) testCloseDuringCall(t *testing.T) {
	var errc <-chan error
	p := NewPeer("closing", mcp.MethodSamplingCreateMessage)
	if _, ok := s.tools.pick(samplingTools); ok {
		errc, _ = s.blockedCall(t, context.Background(), `1`, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.b.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	if errc != nil {
		if err := waitErr(t, errc); !errors.Is(err, backend.ErrClosed) {
			t.Errorf("in-flight call: %v, want ErrClosed", err)
		}
	}
	if _, err := s.try(context.Background(), `2`, mcp.MethodPing, `{}`, nil); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("call after close: %v, want ErrClosed", err)
	}
	if st := s.b.Status(); st.State != backend.StateClosed || st.InFlight != 0 {
		t.Errorf("status after close %+v", st)
	}
	if err := s.b.Close(ctx); err != nil {
		t.Errorf("second close: %v", err)
	}
}
