package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestOpsLogsHaveNoSecrets runs the binary with debug logging, in text and
// in JSON, through everything that handles a secret — key import, key
// creation and rotation, admin key creation, calls with good, exhausted
// and unknown keys (X-API-Key and Bearer), wrong admin keys, an MCP
// session — and then looks for every secret in the whole output.
func TestOpsLogsHaveNoSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			imported := "pg_e2e_import_" + randomHex(t, 20)
			g := startGateway(t, "--server", echoServer(t, 0), "--log-format", format, "--log-level", "debug",
				"--import-key", imported+":50", "--rate-limit", "0")
			secrets := map[string]string{"admin key (flag)": testAdminKey, "imported key": imported}

			created := g.createKey(3, nil)
			secrets["created key"] = created
			var rotated struct {
				NewKey string `json:"newKey"`
			}
			other := g.createKey(3, nil)
			if code := g.admin("POST", "/keys/rotate", map[string]any{"key": other}, &rotated); code != 200 || rotated.NewKey == "" {
				t.Fatalf("rotate: %d", code)
			}
			secrets["rotated (old)"], secrets["rotated (new)"] = other, rotated.NewKey
			adminKey := g.createAdminKey("admin")
			secrets["created admin key"] = adminKey
			unknownAPI := "pg_" + randomHex(t, 24)
			wrongAdmin := "ak_" + randomHex(t, 24)
			secrets["unknown API key"], secrets["wrong admin key"] = unknownAPI, wrongAdmin

			client := &http.Client{}
			for range 5 { // the last two are refused: 3 credits
				_, _, _, _ = callTool(client, g.URL, created, "echo", map[string]any{"q": "x"})
			}
			_, _, _, _ = callTool(client, g.URL, imported, "echo", nil)
			_, _, _, _ = callTool(client, g.URL, unknownAPI, "echo", nil)
			_, _, _, _ = callTool(client, g.URL, other, "echo", nil) // rotated away
			bearer := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`
			g.raw("POST", "/mcp", map[string]string{"Authorization": "Bearer " + rotated.NewKey, "Accept": "application/json"}, bearer)
			g.raw("POST", "/mcp", map[string]string{"Authorization": "Bearer " + unknownAPI, "Accept": "application/json"}, bearer)
			g.raw("GET", "/balance", map[string]string{"X-API-Key": unknownAPI}, "")
			g.raw("GET", "/balance", map[string]string{"X-API-Key": created}, "")
			for _, k := range []string{wrongAdmin, adminKey, testAdminKey + "x"} {
				g.raw("GET", "/keys", map[string]string{"X-Admin-Key": k}, "")
				g.raw("POST", "/maintenance", map[string]string{"X-Admin-Key": k}, `{"enabled":false}`)
			}
			g.raw("POST", "/config/reload", map[string]string{"X-Admin-Key": adminKey}, "")

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cs := g.connect(ctx, imported, nil)
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"a": 1}}); err != nil {
				t.Fatalf("session call: %v", err)
			}
			_ = cs.Close()
			g.stop() // flush everything the process logs on the way out

			out := g.out.String()
			if !strings.Contains(out, "http request") || strings.Count(out, "\n") < 30 {
				t.Fatalf("the debug log is missing; the test would prove nothing:\n%s", out)
			}
			if format == "json" && !strings.Contains(out, `"msg":"http request"`) {
				t.Fatalf("not JSON logs:\n%s", out)
			}
			for what, s := range secrets {
				// The whole secret, and its middle (masks keep only the
				// first 7 and last 4 characters).
				if strings.Contains(out, s) || strings.Contains(out, s[8:len(s)-5]) {
					t.Errorf("the %s appears in the output", what)
				}
			}
		})
	}
}
