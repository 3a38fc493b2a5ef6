package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/paygate/paygate/internal/config"
)

func overview(w io.Writer) {
	fmt.Fprint(w, `paygate charges AI agents credits for the MCP tools they call. It sits in
front of any MCP server, stdio or remote, and adds API keys, per-tool prices,
rate limits, quotas and a ledger of every credit.

Usage: paygate <command> [arguments]

Commands:
`)
	for _, c := range commands() {
		s := c.summary
		if c.soon {
			s += " (coming soon)"
		}
		fmt.Fprintf(w, "  %-13s %s\n", c.name, s)
	}
	fmt.Fprint(w, `
Start here:
  paygate wrap --server "npx -y @modelcontextprotocol/server-filesystem /tmp"

Run 'paygate help <command>' or 'paygate <command> --help' for details.
`)
}

func runHelp(_ context.Context, inv *invocation, args []string) int {
	if len(args) == 0 {
		overview(inv.io.Stdout)
		return ExitOK
	}
	cmd, ok := findCommand(args[0])
	if !ok {
		msg := fmt.Sprintf("no help for unknown command %q", args[0])
		if s := suggestWord(args[0], commandNames()); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		inv.errorf("%s", msg)
		return ExitUsage
	}
	if cmd.help != nil {
		cmd.help(inv.io.Stdout)
		return ExitOK
	}
	fmt.Fprintf(inv.io.Stdout, "Usage: paygate %s %s\n\n%s.\n", cmd.name, cmd.args, upperFirst(cmd.summary))
	if cmd.soon {
		fmt.Fprintln(inv.io.Stdout, "\nThis command is coming soon; it is not available in this version.")
	}
	return ExitOK
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func wrapHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: paygate wrap [flags] [-- CMD ARGS...]

Put a paying gate in front of an MCP server. Agents connect to paygate's
/mcp endpoint with an API key; each tool call is charged in credits and
forwarded to the server; the admin API creates keys and adds credits.

Examples:
  # Wrap a stdio server from npm
  paygate wrap --server "npx -y @modelcontextprotocol/server-filesystem /tmp"

  # The same without quoting: everything after -- is the server's argv
  paygate wrap -- npx -y @modelcontextprotocol/server-filesystem /tmp

  # Gate a remote server that wants a bearer token
  paygate wrap --remote-url https://mcp.example.com/mcp \
    --remote-header "Authorization: Bearer $MCP_TOKEN"

  # 1 credit per call, 5 for generate, 20 for premium_analyze
  paygate wrap --server "node server.js" --price 1 --tool-price generate:5,premium_analyze:20

  # Give an agent a key with 100 credits (the admin key is printed at startup)
  curl -X POST http://127.0.0.1:3402/keys -H "X-Admin-Key: $ADMIN_KEY" \
    -H "Content-Type: application/json" -d '{"name": "my-agent", "credits": 100}'

  # Shadow mode: log what each call would cost, charge nothing
  paygate wrap --server "node server.js" --shadow

  # Everything from a config file (paygate-mcp's JSON keys work, YAML too)
  paygate wrap --config paygate.json
`)
	groups := map[string][]*config.Flag{}
	var compat []string
	for _, f := range config.Flags() {
		if f.Compat {
			compat = append(compat, "--"+f.Name)
			continue
		}
		groups[f.Group] = append(groups[f.Group], f)
	}
	for _, g := range config.Groups {
		fmt.Fprintf(w, "\n%s:\n", g)
		for _, f := range groups[g] {
			writeFlag(w, f)
		}
	}
	fmt.Fprintf(w, `
Settings are taken from flags, then PAYGATE_* variables, then the config
file, then the defaults. PAYGATE_DEFAULT_CREDITS is another name for
PAYGATE_PRICE. Durations are written like 30s, 5m or 1h.

Accepted for paygate-mcp compatibility but not supported yet (a warning is
printed): %s.
`, strings.Join(compat, ", "))
}

// writeFlag prints a flag on one line and its default, allowed values and
// variable on the next.
func writeFlag(w io.Writer, f *config.Flag) {
	head := "--" + f.Name
	if f.Arg != "" {
		head += " " + f.Arg
	}
	if len(head) > 26 {
		fmt.Fprintf(w, "  %s\n  %-26s %s\n", head, "", f.Usage)
	} else {
		fmt.Fprintf(w, "  %-26s %s\n", head, f.Usage)
	}
	var notes []string
	if len(f.Values) > 0 {
		notes = append(notes, "one of "+strings.Join(f.Values, ", "))
	}
	if f.Default != "" {
		notes = append(notes, "default "+f.Default)
	}
	if f.Env != "" {
		notes = append(notes, "env "+f.Env)
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "  %-26s %s\n", "", strings.Join(notes, "; "))
	}
}

func completionsHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: paygate completions bash|zsh|fish

Print a completion script for subcommands, flags and flag values.

Install:
  # bash
  paygate completions bash > ~/.local/share/bash-completion/completions/paygate
  # zsh (then in .zshrc: fpath=(~/.zfunc $fpath); autoload -U compinit && compinit)
  paygate completions zsh > ~/.zfunc/_paygate
  # fish
  paygate completions fish > ~/.config/fish/completions/paygate.fish
`)
}
