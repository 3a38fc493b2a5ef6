package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"text/tabwriter"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/policy"
)

type bannerInfo struct {
	addr      string
	backend   string
	state     backend.Status
	tools     int
	adminKey  string
	adminNote string
	store     string
	imported  int
}

// printBanner tells the operator where everything is. It goes to stdout;
// logs go to stderr.
func (a *App) printBanner(b bannerInfo) {
	host, port, _ := net.SplitHostPort(b.addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	w := a.io.Stdout
	fmt.Fprintf(w, "\npaygate %s — pay-per-call gateway for MCP servers\n\n", a.version)
	fmt.Fprintf(w, "  MCP endpoint   %s/mcp\n", base)
	tools := "tools unknown until it is ready"
	if b.tools >= 0 {
		tools = fmt.Sprintf("%d tools", b.tools)
	}
	fmt.Fprintf(w, "  Backend        %s  [%s, %s]\n", b.backend, b.state.State, tools)
	fmt.Fprintf(w, "  Admin API      %s/keys  (header X-Admin-Key)\n", base)
	if b.adminKey != "" {
		fmt.Fprintf(w, "  Admin key      %s\n                 (%s)\n", b.adminKey, b.adminNote)
	} else {
		fmt.Fprintf(w, "  Admin key      %s\n", b.adminNote)
	}
	fmt.Fprintf(w, "  Health         %s/health   Metrics %s/metrics\n", base, base)
	fmt.Fprintf(w, "  State          %s\n", b.store)
	if b.imported > 0 {
		fmt.Fprintf(w, "  Imported keys  %d\n", b.imported)
	}
	if a.cfg.ShadowMode {
		fmt.Fprintf(w, "  Mode           SHADOW: calls are checked and recorded but never blocked or charged\n")
	}
	if ip := net.ParseIP(a.cfg.Host); ip != nil && ip.IsLoopback() || a.cfg.Host == "localhost" {
		fmt.Fprintf(w, "\n  Listening on %s only. To accept other machines use --host 0.0.0.0 and\n  list the origins/hosts you serve with --allowed-origins / --allowed-hosts.\n", a.cfg.Host)
	}
	key := b.adminKey
	if key == "" {
		key = "$ADMIN_KEY"
	}
	fmt.Fprintf(w, "\n  Create an API key:\n    curl -s -X POST %s/keys -H 'X-Admin-Key: %s' \\\n      -H 'Content-Type: application/json' -d '{\"name\":\"agent\",\"credits\":100}'\n\n", base, key)
}

// listTools pages through the backend's tools/list.
func (a *App) listTools(ctx context.Context) ([]json.RawMessage, error) {
	var all []json.RawMessage
	cursor := ""
	for page := 0; page < 100; page++ {
		params := json.RawMessage(`{}`)
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		resp, err := a.backend.Call(ctx, &backend.Request{ID: mcp.StringID("paygate-discovery"), Method: mcp.MethodToolsList, Params: params})
		if err != nil {
			return nil, err
		}
		if resp.Error != nil {
			return nil, resp.Error
		}
		var r struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(resp.Result, &r); err != nil {
			return nil, fmt.Errorf("tools/list result: %w", err)
		}
		all = append(all, r.Tools...)
		if r.NextCursor == "" {
			break
		}
		cursor = r.NextCursor
	}
	return all, nil
}

// countTools fills the tool cache for the banner and /pricing.
func (a *App) countTools(ctx context.Context) int {
	n, err := a.tools.refresh(ctx)
	if err != nil {
		a.log.Warn("tool discovery failed", "err", err)
	}
	return n
}

// dryRun starts the backend, prints the tools with their prices, and exits.
func (a *App) dryRun(ctx context.Context, desc string) error {
	fmt.Fprintf(a.io.Stderr, "Starting %s to discover its tools…\n", desc)
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	defer func() {
		cctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = a.backend.Close(cctx)
	}()
	if err := a.backend.Start(startCtx); err != nil {
		return fmt.Errorf("backend did not start: %w", err)
	}
	tools, err := a.listTools(startCtx)
	if err != nil {
		return fmt.Errorf("tools/list: %w", err)
	}
	pol := a.gw.Rules().Policy
	type row struct {
		Name    string          `json:"name"`
		Pricing policy.ToolInfo `json:"pricing"`
	}
	var rows []row
	for _, t := range tools {
		var h struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(t, &h)
		rows = append(rows, row{h.Name, pol.ToolInfo(h.Name)})
	}
	if a.cfg.JSONOutput {
		b, _ := json.MarshalIndent(map[string]any{"backend": desc, "tools": rows}, "", "  ")
		fmt.Fprintln(a.io.Stdout, string(b))
		return nil
	}
	tw := tabwriter.NewWriter(a.io.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TOOL\tCREDITS/CALL\tPER KB INPUT\tRATE LIMIT\n")
	for _, r := range rows {
		perKB, limit := "-", "-"
		if r.Pricing.CreditsPerKbInput > 0 {
			perKB = fmt.Sprintf("+%d", r.Pricing.CreditsPerKbInput)
		}
		if r.Pricing.RateLimitPerMin > 0 {
			limit = fmt.Sprintf("%d/min", r.Pricing.RateLimitPerMin)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Name, r.Pricing.CreditsPerCall, perKB, limit)
	}
	tw.Flush()
	fmt.Fprintf(a.io.Stdout, "\n%d tools discovered from %s (dry run: nothing was started)\n", len(rows), desc)
	return nil
}
