package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/paygate/paygate/internal/backend/stdio"
	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/credits"
)

func initHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: paygate init [--output FILE] [--force] [--yes] [flags]

Create a config file for 'paygate wrap --config FILE' by answering a few
questions: how to reach the MCP server (a command to start, or a URL), the
port, the default price of a tool call, per-tool prices, the rate limit
per key and where to keep the state. Every answer has a default in
[brackets]; Enter accepts it. A wrong answer is explained and asked
again. Ctrl-C stops without writing anything.

The file is JSON, or YAML when FILE ends in .yaml or .yml, and is checked
exactly as 'paygate validate' would before it is written. An existing
file is never replaced without --force.

With --yes nothing is asked: the flags and the defaults make the file
(for scripts; --server or --remote-url is then required). Without --yes
the flags become the defaults of the questions.

Exits 0 when the file was written, 1 when it was not (it exists, the
answers were abandoned, or it could not be written), 2 when the command
line is wrong.

Examples:
  paygate init
  paygate init --output paygate.yaml
  paygate init --yes --server "npx -y @modelcontextprotocol/server-filesystem /tmp" --price 2
  paygate init --yes --remote-url https://mcp.example.com/mcp --rate-limit 120 --force

Flags:
  -o, --output FILE        the file to write (default paygate.json)
  --force                  replace FILE if it exists
  -y, --yes                ask nothing; use the flags and defaults
  --server CMD             stdio MCP server command line
  --remote-url URL         remote MCP server URL
  --port N                 HTTP port (default 3402)
  --price N                credits per tool call (default 1)
  --tool-price TOOL:N,...  per-tool prices (repeatable)
  --rate-limit N           tool calls per minute per key, 0 for none (default 60)
  --state-file PATH        the SQLite state database (default: the built-in location)
`)
}

// initAnswers is what the wizard collects; the flags prefill it.
type initAnswers struct {
	server, remoteURL string
	port              int
	price             credits.Credits
	toolPrices        []toolPrice
	rateLimit         int64
	stateFile         string // "": paygate's default location
}

type toolPrice struct {
	tool  string
	price credits.Credits
}

type initArgs struct {
	output     string
	force, yes bool
	ans        initAnswers
}

func parseInitArgs(args []string) (initArgs, error) {
	a := initArgs{output: "paygate.json", ans: initAnswers{port: config.DefaultPort, price: config.DefaultPrice,
		rateLimit: config.DefaultRateLimit}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, inline, hasInline := strings.Cut(arg, "=")
		value := func() (string, error) {
			if hasInline {
				return inline, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var v string
		var err error
		switch name {
		case "--force", "--yes", "-y":
			if hasInline {
				return a, fmt.Errorf("%s takes no value", name)
			}
			if name == "--force" {
				a.force = true
			} else {
				a.yes = true
			}
			continue
		case "-o", "--output", "--server", "--remote-url", "--port", "--price", "--tool-price", "--rate-limit", "--state-file":
			if v, err = value(); err != nil {
				return a, err
			}
		default:
			if strings.HasPrefix(arg, "-") {
				return a, fmt.Errorf("unknown flag %s", arg)
			}
			return a, fmt.Errorf("unexpected argument %q (the file to write is --output FILE)", arg)
		}
		switch name {
		case "-o", "--output":
			if strings.TrimSpace(v) == "" {
				return a, errors.New("--output needs a file name")
			}
			a.output = v
		case "--server":
			a.ans.server, err = checkCommand(v)
		case "--remote-url":
			a.ans.remoteURL, err = checkRemoteURL(v)
		case "--port":
			a.ans.port, err = checkPort(v)
		case "--price":
			a.ans.price, err = checkPrice(v)
		case "--tool-price":
			var more []toolPrice
			if more, err = parseToolPrices(v); err == nil {
				a.ans.toolPrices = mergeToolPrices(a.ans.toolPrices, more)
			}
		case "--rate-limit":
			a.ans.rateLimit, err = checkRateLimit(v)
		case "--state-file":
			a.ans.stateFile, err = checkStateFile(v, true)
		}
		if err != nil {
			return a, fmt.Errorf("%s: %w", name, err)
		}
	}
	if a.ans.server != "" && a.ans.remoteURL != "" {
		return a, errors.New("--server and --remote-url are both set; a gateway wraps one backend")
	}
	if a.yes && a.ans.server == "" && a.ans.remoteURL == "" {
		return a, errors.New("--yes needs the backend: --server CMD or --remote-url URL")
	}
	return a, nil
}

// ── answer checks: each returns the normalized answer or why it is wrong ──

func checkCommand(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("the command is required, like: node server.js")
	}
	argv, err := stdio.SplitCommand(s)
	if err != nil {
		return "", err
	}
	if len(argv) == 0 {
		return "", errors.New("the command is required, like: node server.js")
	}
	return s, nil
}

func checkRemoteURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("the URL is required, like https://mcp.example.com/mcp")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", errors.New("not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("it must start with http:// or https://")
	case u.Host == "":
		return "", errors.New("it has no host, like https://mcp.example.com/mcp")
	}
	return s, nil
}

func checkPort(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, errors.New("a port is a whole number from 1 to 65535")
	}
	return n, nil
}

func checkPrice(s string) (credits.Credits, error) {
	n, err := credits.Parse([]byte(strings.TrimSpace(s)))
	if err != nil {
		return 0, fmt.Errorf("a price is a whole number of credits from 0 to %d (%v)", credits.Max, err)
	}
	return n, nil
}

func checkRateLimit(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("the rate limit is a whole number of calls per minute, 0 for none")
	}
	return n, nil
}

func checkStateFile(s string, required bool) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" && required:
		return "", errors.New("give a path for the SQLite database, like /var/lib/paygate/state.db")
	case strings.EqualFold(filepath.Ext(s), ".json"):
		return "", errors.New("paygate keeps its state in SQLite, not JSON; use a name like state.db (import a paygate-mcp JSON state file with paygate import-state)")
	}
	return s, nil
}

// parseToolPrices reads "search:5,generate:10". The last colon separates
// the price, so tool names with a server prefix ("fs:read") work.
func parseToolPrices(s string) ([]toolPrice, error) {
	var out []toolPrice
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i := strings.LastIndex(part, ":")
		if i <= 0 {
			return nil, fmt.Errorf("%q is not TOOL:CREDITS, like search:5", part)
		}
		tool := strings.TrimSpace(part[:i])
		if strings.ContainsAny(tool, " \t") {
			return nil, fmt.Errorf("tool name %q has spaces", tool)
		}
		p, err := checkPrice(part[i+1:])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tool, err)
		}
		out = mergeToolPrices(out, []toolPrice{{tool, p}})
	}
	return out, nil
}

func mergeToolPrices(have, more []toolPrice) []toolPrice {
	for _, m := range more {
		if i := slices.IndexFunc(have, func(t toolPrice) bool { return t.tool == m.tool }); i >= 0 {
			have[i] = m
		} else {
			have = append(have, m)
		}
	}
	return have
}

func formatToolPrices(tps []toolPrice) string {
	parts := make([]string, len(tps))
	for i, t := range tps {
		parts[i] = fmt.Sprintf("%s:%d", t.tool, t.price)
	}
	return strings.Join(parts, ",")
}

// ── the wizard ───────────────────────────────────────────────────────────

// errAborted ends the wizard without writing: Ctrl-C, end of input, or a
// "no" at the end.
var errAborted = errors.New("aborted")

// prompter asks questions on out and reads answers, one per line, from a
// reader goroutine, so Ctrl-C (ctx) interrupts a question at once.
type prompter struct {
	ctx   context.Context
	out   io.Writer
	lines chan string // closed at end of input
}

func newPrompter(ctx context.Context, in io.Reader, out io.Writer) *prompter {
	p := &prompter{ctx: ctx, out: out, lines: make(chan string)}
	go func() {
		defer close(p.lines)
		r := bufio.NewReader(in)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				select {
				case p.lines <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return p
}

// ask prints question (with def in brackets) and returns the first answer
// check accepts; Enter means def.
func (p *prompter) ask(question, def string, check func(string) error) (string, error) {
	for {
		if def != "" {
			fmt.Fprintf(p.out, "%s [%s]: ", question, def)
		} else {
			fmt.Fprintf(p.out, "%s: ", question)
		}
		var line string
		select {
		case <-p.ctx.Done():
			return "", errAborted
		case l, ok := <-p.lines:
			if !ok {
				fmt.Fprintln(p.out)
				return "", errAborted
			}
			line = l
		}
		if strings.ContainsRune(line, 0x03) { // a Ctrl-C the terminal did not turn into a signal
			return "", errAborted
		}
		ans := strings.TrimSpace(line)
		if ans == "" {
			ans = def
		}
		if err := check(ans); err != nil {
			fmt.Fprintf(p.out, "  ! %v; try again.\n", err)
			continue
		}
		return ans, nil
	}
}

// wizard asks every question, with the flags' values as defaults.
func wizard(p *prompter, ans initAnswers, defaultState string) (initAnswers, error) {
	fmt.Fprint(p.out, `paygate init: create a configuration file for 'paygate wrap --config FILE'.
Press Enter to accept the [default]. Ctrl-C stops without writing anything.

How does paygate reach your MCP server?
  1) it starts a local command and talks to it over stdio
  2) it connects to a remote URL (Streamable HTTP or SSE)
`)
	def := "1"
	if ans.remoteURL != "" {
		def = "2"
	}
	choice, err := p.ask("Backend (1 or 2)", def, func(s string) error {
		switch strings.ToLower(s) {
		case "1", "2", "stdio", "remote", "url":
			return nil
		}
		return errors.New("answer 1 (a local command) or 2 (a remote URL)")
	})
	if err != nil {
		return ans, err
	}
	if c := strings.ToLower(choice); c == "1" || c == "stdio" {
		ans.remoteURL = ""
		ans.server, err = p.ask("Server command (for example: npx -y @modelcontextprotocol/server-filesystem /tmp)", ans.server,
			func(s string) error { _, err := checkCommand(s); return err })
	} else {
		ans.server = ""
		ans.remoteURL, err = p.ask("Remote MCP server URL (for example: https://mcp.example.com/mcp)", ans.remoteURL,
			func(s string) error { _, err := checkRemoteURL(s); return err })
	}
	if err != nil {
		return ans, err
	}
	port, err := p.ask("Port paygate listens on", strconv.Itoa(ans.port), func(s string) error { _, err := checkPort(s); return err })
	if err != nil {
		return ans, err
	}
	ans.port, _ = checkPort(port)
	price, err := p.ask("Default price of a tool call, in credits", strconv.FormatInt(ans.price, 10),
		func(s string) error { _, err := checkPrice(s); return err })
	if err != nil {
		return ans, err
	}
	ans.price, _ = checkPrice(price)
	tps, err := p.ask("Per-tool prices, as tool:credits,... (none: Enter)", formatToolPrices(ans.toolPrices), func(s string) error {
		if strings.EqualFold(s, "none") {
			return nil
		}
		_, err := parseToolPrices(s)
		return err
	})
	if err != nil {
		return ans, err
	}
	ans.toolPrices = nil
	if !strings.EqualFold(tps, "none") {
		ans.toolPrices, _ = parseToolPrices(tps)
	}
	rate, err := p.ask("Rate limit, tool calls per minute per key (0: no limit)", strconv.FormatInt(ans.rateLimit, 10),
		func(s string) error { _, err := checkRateLimit(s); return err })
	if err != nil {
		return ans, err
	}
	ans.rateLimit, _ = checkRateLimit(rate)
	stateDef := ans.stateFile
	if stateDef == "" {
		stateDef = defaultState
	}
	state, err := p.ask("State file (the SQLite database for keys, balances and the ledger)", stateDef,
		func(s string) error { _, err := checkStateFile(s, true); return err })
	if err != nil {
		return ans, err
	}
	ans.stateFile = state
	if state == defaultState {
		ans.stateFile = "" // the built-in default: leave it out of the file
	}
	return ans, nil
}

// initConfig is the file the wizard writes, in this key order.
type initConfig struct {
	ServerCommand         string                   `json:"serverCommand,omitempty" yaml:"serverCommand,omitempty"`
	RemoteURL             string                   `json:"remoteUrl,omitempty" yaml:"remoteUrl,omitempty"`
	Port                  int                      `json:"port" yaml:"port"`
	DefaultCreditsPerCall credits.Credits          `json:"defaultCreditsPerCall" yaml:"defaultCreditsPerCall"`
	ToolPricing           map[string]initToolPrice `json:"toolPricing,omitempty" yaml:"toolPricing,omitempty"`
	GlobalRateLimitPerMin int64                    `json:"globalRateLimitPerMin" yaml:"globalRateLimitPerMin"`
	StateFile             string                   `json:"stateFile,omitempty" yaml:"stateFile,omitempty"`
}

type initToolPrice struct {
	CreditsPerCall credits.Credits `json:"creditsPerCall" yaml:"creditsPerCall"`
}

// render returns the file's content, YAML for .yaml/.yml, else JSON.
func (ans initAnswers) render(path string) ([]byte, error) {
	c := initConfig{ServerCommand: ans.server, RemoteURL: ans.remoteURL, Port: ans.port, DefaultCreditsPerCall: ans.price,
		GlobalRateLimitPerMin: ans.rateLimit, StateFile: ans.stateFile}
	if len(ans.toolPrices) > 0 {
		c.ToolPricing = map[string]initToolPrice{}
		for _, t := range ans.toolPrices {
			c.ToolPricing[t.tool] = initToolPrice{t.price}
		}
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		b, err := yaml.Marshal(c)
		if err != nil {
			return nil, err
		}
		return append([]byte("# paygate configuration, written by paygate init. Run: paygate wrap --config "+path+"\n"), b...), nil
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func runInit(ctx context.Context, inv *invocation, args []string) int {
	if wantsHelp(args) {
		initHelp(inv.io.Stdout)
		return ExitOK
	}
	a, err := parseInitArgs(args)
	if err != nil {
		return inv.usage("init", err)
	}
	fail := func(err error) int {
		fmt.Fprintf(inv.io.Stderr, "paygate init: %v\n", err)
		return ExitError
	}
	if _, err := os.Stat(a.output); err == nil && !a.force {
		return fail(fmt.Errorf("%s already exists; pass --force to replace it, or --output to write another file", a.output))
	}
	defaultState := config.DefaultStateFile(func(k string) string { return envValue(inv.env, k) })
	ans := a.ans
	if !a.yes {
		if !isTerminal(inv.io.Stdin) {
			return inv.usage("init", errors.New("the questions need a terminal; to run without one, pass --yes with --server CMD or --remote-url URL"))
		}
		p := newPrompter(ctx, inv.io.Stdin, inv.io.Stdout)
		if ans, err = wizard(p, ans, defaultState); err == nil {
			err = confirm(p, ans, a.output)
		}
		if errors.Is(err, errAborted) {
			fmt.Fprintln(inv.io.Stdout)
			return fail(errors.New("stopped; nothing was written"))
		}
		if err != nil {
			return fail(err)
		}
	} else if ans.stateFile == "" && defaultState == "" {
		return inv.usage("init", errors.New("no default state location (HOME is not set); pass --state-file PATH"))
	}
	data, err := ans.render(a.output)
	if err != nil {
		return fail(err)
	}
	// Check the file as 'paygate validate' will, before it exists.
	_, diags, err := config.Load(config.LoadOptions{ConfigPath: a.output, Env: inv.env,
		ReadFile: func(string) ([]byte, error) { return data, nil }})
	if err == nil && config.HasErrors(diags) {
		printDiagnostics(inv.io.Stderr, diags, false)
		err = errors.New("the configuration would not be valid; nothing was written")
	}
	if err != nil {
		return fail(err)
	}
	if err := writeConfig(a.output, data, a.force); err != nil {
		return fail(err)
	}
	printDiagnostics(inv.io.Stdout, diags, false) // warnings, if any
	fmt.Fprintf(inv.io.Stdout, "Wrote %s.\n\nNext:\n  paygate validate --config %s\n  paygate wrap --config %s\n", a.output, a.output, a.output)
	return ExitOK
}

// confirm shows the file and asks before writing it.
func confirm(p *prompter, ans initAnswers, path string) error {
	data, err := ans.render(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(p.out, "\n%s will contain:\n\n%s\n", path, data)
	yes, err := p.ask("Write "+path+"? (y/n)", "y", func(s string) error {
		switch strings.ToLower(s) {
		case "y", "yes", "n", "no":
			return nil
		}
		return errors.New("answer y or n")
	})
	if err != nil {
		return err
	}
	if s := strings.ToLower(yes); s == "n" || s == "no" {
		return errAborted
	}
	return nil
}

// writeConfig writes the file: never over an existing one unless force
// (O_EXCL closes the gap between the first check and now), and through a
// temporary file when replacing, so a failure leaves the old file.
func writeConfig(path string, data []byte, force bool) error {
	if force {
		return writeFileAtomic(path, 0o644, func(w io.Writer) error { _, err := w.Write(data); return err })
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; pass --force to replace it", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
