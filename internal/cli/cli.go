// Package cli is paygate's command line: it parses the subcommand, loads
// the configuration through package config and hands it to the run function
// of package app. It holds no gateway logic; cmd/paygate is a page that
// calls Main.
//
// Exit codes: 0 success, 1 runtime or configuration error, 2 usage error.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/paygate/paygate/internal/config"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the configuration is invalid or the gateway failed
	ExitUsage = 2 // the command line is wrong
)

// IO is where a command reads and writes.
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// RunFunc runs the gateway with a loaded, valid configuration until ctx is
// done (app.Run). A nil error, or ctx's own error after ctx is done, means
// a clean stop.
type RunFunc func(ctx context.Context, cfg *config.Config, io IO) error

// invocation is what every command gets.
type invocation struct {
	env []string
	io  IO
	run RunFunc
}

func (inv *invocation) errorf(format string, args ...any) {
	fmt.Fprintf(inv.io.Stderr, "paygate: "+format+"\n", args...)
}

// command is one entry of the subcommand table. Adding a command is adding
// one entry to commands.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	// help prints the command's full help; nil prints the synopsis and
	// summary.
	help func(w io.Writer)
	run  func(ctx context.Context, inv *invocation, args []string) int
	soon bool // reserved: registered, not implemented yet
}

// commands is the subcommand table, in the order help shows it.
func commands() []command {
	return []command{
		{name: "wrap", args: "[flags] [-- CMD ARGS...]", summary: "put a paying gate in front of an MCP server", help: wrapHelp, run: runWrap},
		{name: "validate", args: "--config FILE [--json] [flags]", summary: "check a configuration without starting", help: validateHelp, run: runValidate},
		{name: "version", args: "[--json]", summary: "print the version", run: runVersion},
		{name: "completions", args: "bash|zsh|fish", summary: "print a shell completion script", help: completionsHelp, run: runCompletions},
		{name: "help", args: "[COMMAND]", summary: "show help for paygate or a command", run: runHelp},
		{name: "init", args: "[--output FILE] [--force] [--yes] [flags]", summary: "create a config file interactively", help: initHelp, run: runInit},
		{name: "import-state", args: "FILE [--state-file DB] [--json]", summary: "import a paygate-mcp state file", help: importStateHelp, run: runImportState},
		{name: "backup", args: "[--state-file DB] [-o FILE]", summary: "write a backup of keys, balances and the ledger", help: backupHelp, run: runBackup},
		{name: "restore", args: "[--state-file DB] --mode M FILE", summary: "restore state from a backup", help: restoreHelp, run: runRestore},
	}
}

func reserved(name, args, summary string) command {
	return command{name: name, args: args, summary: summary, soon: true,
		run: func(_ context.Context, inv *invocation, _ []string) int {
			inv.errorf("%s is coming soon; it is not available in this version", name)
			return ExitUsage
		}}
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return names
}

// Main runs the paygate command line with args (os.Args[1:]) and env
// (os.Environ()) and returns the exit code. run starts the gateway; it is a
// parameter so the CLI does not depend on the app package.
func Main(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer, run RunFunc) int {
	inv := &invocation{env: env, io: IO{Stdin: stdin, Stdout: stdout, Stderr: stderr}, run: run}
	if len(args) == 0 {
		overview(stderr)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help":
		overview(stdout)
		return ExitOK
	case "-v", "--version", "-version":
		return runVersion(ctx, inv, args[1:])
	}
	cmd, ok := findCommand(args[0])
	if !ok {
		msg := fmt.Sprintf("unknown command %q", args[0])
		if strings.HasPrefix(args[0], "-") {
			msg = fmt.Sprintf("unknown flag %s before the command", args[0])
		}
		if s := suggestWord(strings.TrimLeft(args[0], "-"), commandNames()); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		inv.errorf("%s\nRun 'paygate --help' for the list of commands.", msg)
		return ExitUsage
	}
	return cmd.run(ctx, inv, args[1:])
}

// wantsHelp reports whether args ask for help (before any "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help", "-help":
			return true
		}
	}
	return false
}

// usage prints a usage error with a pointer to the command's help.
func (inv *invocation) usage(cmd string, err error) int {
	fmt.Fprintf(inv.io.Stderr, "paygate %s: %v\n", cmd, err)
	if !strings.Contains(err.Error(), "--help") {
		fmt.Fprintf(inv.io.Stderr, "Run 'paygate %s --help' for usage.\n", cmd)
	}
	return ExitUsage
}

// suggestWord returns the candidate closest to w, if one is close enough.
func suggestWord(w string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if strings.HasPrefix(c, w) && len(w) >= 2 {
			return c
		}
		if d := distance(w, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the edit distance of two short words.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// isCanceled reports whether err is only the context ending.
func isCanceled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
