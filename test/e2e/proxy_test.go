package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const proxyKey = "pg_e2e_proxy_0123456789abcdef0123456789abcdef01234"

// backends returns the --server/--remote-url arguments for the go-sdk
// conformance server over stdio and over Streamable HTTP.
func backends(t *testing.T) map[string][]string {
	return map[string][]string{
		"stdio": {"--server", everythingStdio(t)},
		"http":  {"--remote-url", startEverythingHTTP(t)},
	}
}

// TestGoSDKClientThroughGateway: the official go-sdk client talks to the
// go-sdk conformance server through paygate without noticing it is there:
// tools, prompts, resources, sampling and elicitation round trips,
// progress, logging and cancellation.
func TestGoSDKClientThroughGateway(t *testing.T) {
	for name, args := range backends(t) {
		t.Run(name, func(t *testing.T) {
			g := startGateway(t, append(args, "--import-key", proxyKey+":1000000", "--rate-limit", "0")...)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			var sampled, elicited atomic.Int32
			var progress atomic.Int32
			var logs atomic.Int32
			block := make(chan struct{})
			opts := &mcp.ClientOptions{
				CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
					sampled.Add(1)
					return &mcp.CreateMessageResult{Model: "test-model", Role: "assistant", Content: &mcp.TextContent{Text: "sampled answer"}}, nil
				},
				ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					if strings.Contains(req.Params.Message, "BLOCK") {
						select {
						case <-block:
						case <-ctx.Done():
						}
					}
					elicited.Add(1)
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"username": "e2e", "email": "e2e@example.com"}}, nil
				},
				ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
					progress.Add(1)
				},
				LoggingMessageHandler: func(ctx context.Context, req *mcp.LoggingMessageRequest) {
					logs.Add(1)
				},
			}
			cs := g.connect(ctx, proxyKey, opts)
			if v := cs.InitializeResult().ProtocolVersion; v != "2025-11-25" {
				t.Errorf("negotiated %q, want 2025-11-25", v)
			}
			if n := cs.InitializeResult().ServerInfo.Name; n != "mcp-conformance-test-server" {
				t.Errorf("serverInfo.name = %q; the backend's name should pass through", n)
			}

			tools, err := cs.ListTools(ctx, nil)
			if err != nil || len(tools.Tools) < 10 {
				t.Fatalf("ListTools: %v (%d tools)", err, len(tools.Tools))
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"})
			if err != nil || res.IsError || !strings.Contains(textOf(t, res), "simple text") {
				t.Fatalf("test_simple_text: %v %+v", err, res)
			}

			prompts, err := cs.ListPrompts(ctx, nil)
			if err != nil || len(prompts.Prompts) == 0 {
				t.Fatalf("ListPrompts: %v", err)
			}
			gp, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "test_prompt_with_arguments", Arguments: map[string]string{"arg1": "a", "arg2": "b"}})
			if err != nil || len(gp.Messages) == 0 {
				t.Fatalf("GetPrompt: %v", err)
			}
			rs, err := cs.ListResources(ctx, nil)
			if err != nil || len(rs.Resources) == 0 {
				t.Fatalf("ListResources: %v", err)
			}
			rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://static-text"})
			if err != nil || len(rr.Contents) == 0 {
				t.Fatalf("ReadResource: %v", err)
			}

			// Sampling: the server asks this client for a completion mid-call.
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_sampling", Arguments: map[string]any{"prompt": "hi"}})
			if err != nil || res.IsError || sampled.Load() != 1 || !strings.Contains(textOf(t, res), "sampled answer") {
				t.Fatalf("test_sampling: err=%v sampled=%d res=%s", err, sampled.Load(), textOf(t, res))
			}
			// Elicitation round trip.
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_elicitation", Arguments: map[string]any{"message": "who are you?"}})
			if err != nil || res.IsError || elicited.Load() != 1 {
				t.Fatalf("test_elicitation: err=%v elicited=%d", err, elicited.Load())
			}
			// Progress notifications reach the caller with its own token.
			params := &mcp.CallToolParams{Name: "test_tool_with_progress"}
			params.SetProgressToken("tok-1")
			if res, err = cs.CallTool(ctx, params); err != nil || res.IsError {
				t.Fatalf("test_tool_with_progress: %v", err)
			}
			if progress.Load() == 0 {
				t.Error("no progress notifications reached the client")
			}
			// Logging during a call.
			if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
				t.Fatalf("SetLoggingLevel: %v", err)
			}
			if res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_tool_with_logging"}); err != nil || res.IsError {
				t.Fatalf("test_tool_with_logging: %v", err)
			}
			waitFor(t, func() bool { return logs.Load() > 0 }, "log notifications")

			// Cancellation: the call blocks in the client's elicitation
			// handler until the caller gives up; the call is refunded.
			before := g.balance(proxyKey)
			cctx, ccancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "test_elicitation", Arguments: map[string]any{"message": "BLOCK"}})
				errc <- err
			}()
			time.Sleep(200 * time.Millisecond)
			ccancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled call returned %v", err)
			}
			close(block)
			waitFor(t, func() bool { return g.balance(proxyKey) == before }, "refund of the cancelled call")
			// The session still works afterwards.
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"}); err != nil {
				t.Fatalf("call after cancel: %v", err)
			}
		})
	}
}

// TestToolsListPricing: tools/list is free, carries _pricing per tool, and
// hides tools a key's ACL denies.
func TestToolsListPricing(t *testing.T) {
	g := startGateway(t, "--server", everythingStdio(t), "--tool-price", "test_simple_text:7")
	r, _ := g.rpc("", 1, "tools/list", nil)
	if r.Error != nil {
		t.Fatalf("tools/list without key: %+v", r.Error)
	}
	var list struct {
		Tools []struct {
			Name    string         `json:"name"`
			Pricing map[string]any `json:"_pricing"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(r.Result, &list); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tl := range list.Tools {
		if tl.Pricing == nil {
			t.Fatalf("tool %s has no _pricing", tl.Name)
		}
		if tl.Name == "test_simple_text" {
			found = true
			if tl.Pricing["creditsPerCall"] != float64(7) {
				t.Errorf("test_simple_text pricing %v", tl.Pricing)
			}
		}
	}
	if !found {
		t.Fatal("test_simple_text not listed")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
