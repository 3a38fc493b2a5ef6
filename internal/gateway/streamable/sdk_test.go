package streamable

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/paygate/paygate/internal/mcp"
)

// miniServer is a small MCP server on the Handler interface: it answers
// initialize, tools/list and tools/call, and refuses server/discover as
// paygate does, so a 2026-07-28 client falls back to initialize. Its one
// tool asks the client for its roots (a server-to-client request on the
// POST's stream) and returns them.
type miniServer struct {
	discovered chan bool // one per server/discover: whether it came without a session
	closed     chan *Session

	mu      sync.Mutex
	next    int
	waiting map[string]chan *mcp.Message // server request id → the client's answer
}

func (m *miniServer) HandleRequest(ctx context.Context, ex *Exchange) {
	switch ex.Msg.Method {
	case mcp.MethodServerDiscover:
		m.discovered <- ex.Session == nil
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeMethodNotFound, Message: "method not found"})
	case mcp.MethodInitialize:
		ex.ReplyResult(json.RawMessage(fmt.Sprintf(`{"protocolVersion":%q,"capabilities":{"tools":{"listChanged":true}},`+
			`"serverInfo":{"name":"paygate-test","version":"1.0.0"}}`, ex.Session.ProtocolVersion())))
	case mcp.MethodToolsList:
		ex.ReplyResult(json.RawMessage(`{"tools":[{"name":"roots","description":"the client's roots","inputSchema":{"type":"object"}}]}`))
	case mcp.MethodToolsCall:
		m.callRoots(ctx, ex)
	case mcp.MethodPing:
		ex.ReplyResult(nil)
	default:
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeMethodNotFound, Message: "method not found"})
	}
}

func (m *miniServer) callRoots(ctx context.Context, ex *Exchange) {
	if !ex.Supports(mcp.MethodRootsList) {
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInvalidRequest, Message: "client has no roots capability"})
		return
	}
	m.mu.Lock()
	m.next++
	id := mcp.StringID(fmt.Sprintf("srv-%d", m.next))
	answer := make(chan *mcp.Message, 1)
	m.waiting[string(id)] = answer
	m.mu.Unlock()
	if err := ex.Deliver(mcp.AppendRequest(nil, id, mcp.MethodRootsList, nil)); err != nil {
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInternalError, Message: err.Error()})
		return
	}
	select {
	case resp := <-answer:
		var res struct {
			Roots []struct {
				URI string `json:"uri"`
			} `json:"roots"`
		}
		if err := json.Unmarshal(resp.Result, &res); err != nil {
			ex.ReplyError(&mcp.WireError{Code: mcp.CodeInternalError, Message: err.Error()})
			return
		}
		var uris []string
		for _, r := range res.Roots {
			uris = append(uris, r.URI)
		}
		text, _ := json.Marshal(strings.Join(uris, ","))
		ex.ReplyResult(json.RawMessage(`{"content":[{"type":"text","text":` + string(text) + `}]}`))
	case <-ctx.Done():
		ex.ReplyError(&mcp.WireError{Code: mcp.CodeInternalError, Message: "cancelled"})
	}
}

func (m *miniServer) HandleNotification(context.Context, *Session, *http.Request, *mcp.Message) {}

func (m *miniServer) HandleResponse(_ context.Context, _ *Session, _ *http.Request, msg *mcp.Message) {
	m.mu.Lock()
	c := m.waiting[string(msg.ID)]
	delete(m.waiting, string(msg.ID))
	m.mu.Unlock()
	if c != nil {
		c <- msg
	}
}

func (m *miniServer) SessionClosed(sess *Session) { m.closed <- sess }

// The official go-sdk client against the Server: server/discover is
// refused and the client falls back to initialize at 2025-11-25; then
// tools/list, a tools/call during which the server asks the client for its
// roots on the call's own SSE stream, an unrelated notification on the
// GET stream, and DELETE on close.
func TestGoSDKClient(t *testing.T) {
	h := &miniServer{discovered: make(chan bool, 4), closed: make(chan *Session, 4), waiting: map[string]chan *mcp.Message{}}
	srv := New(h, Options{})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	listChanged := make(chan struct{}, 1)
	client := sdk.NewClient(&sdk.Implementation{Name: "e2e", Version: "1.0.0"}, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { listChanged <- struct{}{} },
	})
	client.AddRoots(&sdk.Root{URI: "file:///work/a", Name: "a"}, &sdk.Root{URI: "file:///work/b", Name: "b"})
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: ts.URL + "/mcp", HTTPClient: ts.Client()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stateless := recv(t, h.discovered, "server/discover"); !stateless {
		t.Error("server/discover arrived with a session")
	}
	if v := cs.InitializeResult().ProtocolVersion; v != mcp.Version20251125 {
		t.Fatalf("negotiated %q", v)
	}
	sess := srv.session(cs.ID())
	if sess == nil {
		t.Fatalf("no session %q on the server", cs.ID())
	}

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "roots" {
		t.Fatalf("tools %+v", tools.Tools)
	}

	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "roots", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("result %+v", res)
	}
	if text := res.Content[0].(*sdk.TextContent).Text; text != "file:///work/a,file:///work/b" {
		t.Fatalf("roots %q", text)
	}
	st, _ := sess.getStream()
	st.mu.Lock()
	if st.last != 0 {
		t.Errorf("the roots request went to the GET stream (%d events)", st.last)
	}
	st.mu.Unlock()

	if err := sess.Deliver(mcp.AppendRequest(nil, nil, mcp.NotificationToolsListChanged, nil)); err != nil {
		t.Fatal(err)
	}
	recv(t, listChanged, "tools/list_changed on the GET stream")

	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, h.closed, "SessionClosed after DELETE"); got != sess {
		t.Fatalf("closed %s", got.ID())
	}
}
