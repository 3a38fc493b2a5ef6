package e2e

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/paygate/paygate/internal/testenv"
)

// terminal runs a paygate command in a pseudo-terminal, as a person at a
// shell would: typed lines are echoed and Ctrl-C is a signal.
type terminal struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	out  *syncBuffer
	pos  int // expect searches the output after this offset
	done chan error
}

func startTerminal(t *testing.T, home string, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(testenv.Paygate(t), args...)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "TERM=dumb"}
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 200})
	if err != nil {
		t.Fatalf("start in a pty: %v", err)
	}
	term := &terminal{t: t, cmd: cmd, tty: tty, out: &syncBuffer{}, done: make(chan error, 1)}
	go func() { _, _ = io.Copy(term.out, tty) }() // ends with EIO when the process exits
	go func() { term.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = tty.Close()
	})
	return term
}

// expect waits until the output shows s after what earlier expects saw.
func (term *terminal) expect(s string) {
	term.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := term.out.String()
		if i := strings.Index(out[term.pos:], s); i >= 0 {
			term.pos += i + len(s)
			return
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("the terminal never showed %q; it shows:\n%s", s, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// typeLine types s and Enter.
func (term *terminal) typeLine(s string) {
	term.t.Helper()
	if _, err := term.tty.Write([]byte(s + "\r")); err != nil {
		term.t.Fatal(err)
	}
}

// exit waits for the process and returns its exit code.
func (term *terminal) exit() int {
	term.t.Helper()
	select {
	case err := <-term.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			term.t.Fatal(err)
		}
		return 0
	case <-time.After(15 * time.Second):
		term.t.Fatalf("paygate init did not exit; the terminal shows:\n%s", term.out.String())
		return -1
	}
}

// TestInitWizardInTerminal answers the wizard's questions in a real
// terminal, wrong answers included, and checks that the file it writes is
// what was answered and passes paygate validate.
func TestInitWizardInTerminal(t *testing.T) {
	home := t.TempDir()
	file := filepath.Join(home, "gate.yaml")
	term := startTerminal(t, home, "init", "--output", file)
	term.expect("Ctrl-C stops without writing anything")
	term.expect("Backend (1 or 2) [1]: ")
	term.typeLine("3")
	term.expect("answer 1 (a local command) or 2 (a remote URL); try again.")
	term.expect("Backend (1 or 2) [1]: ")
	term.typeLine("") // the default: a local command
	term.expect("Server command (for example: npx -y @modelcontextprotocol/server-filesystem /tmp): ")
	term.typeLine("")
	term.expect("the command is required")
	term.expect("Server command")
	term.typeLine(`node "unclosed`)
	term.expect("try again.")
	term.typeLine("npx -y @modelcontextprotocol/server-everything")
	term.expect("Port paygate listens on [3402]: ")
	term.typeLine("70000")
	term.expect("a port is a whole number from 1 to 65535; try again.")
	term.typeLine("8123")
	term.expect("Default price of a tool call, in credits [1]: ")
	term.typeLine("2")
	term.expect("Per-tool prices, as tool:credits,... (none: Enter): ")
	term.typeLine("search:5,fetch")
	term.expect("is not TOOL:CREDITS")
	term.typeLine("search:5,fetch:1")
	term.expect("Rate limit, tool calls per minute per key (0: no limit) [60]: ")
	term.typeLine("")
	term.expect("[" + filepath.Join(home, ".local", "share", "paygate", "state.db") + "]: ")
	term.typeLine("state.json")
	term.expect("not JSON")
	term.typeLine(filepath.Join(home, "paygate.db"))
	term.expect(file + " will contain:")
	term.expect("Write " + file + "? (y/n) [y]: ")
	term.typeLine("y")
	term.expect("Wrote " + file + ".")
	if code := term.exit(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, term.out.String())
	}

	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"serverCommand: npx -y @modelcontextprotocol/server-everything", "port: 8123",
		"defaultCreditsPerCall: 2", "search:\n        creditsPerCall: 5", "globalRateLimitPerMin: 60", "stateFile: " + filepath.Join(home, "paygate.db")} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the file lacks %q:\n%s", want, b)
		}
	}
	if r := paygateCLI(t, home, "validate", "--config", file); r.Code != 0 || !strings.Contains(r.Stdout, "valid") {
		t.Fatalf("paygate validate: %+v", r)
	}
}

// TestInitCtrlCWritesNothing: Ctrl-C in the middle of the questions ends
// the wizard at once, and no file is written.
func TestInitCtrlCWritesNothing(t *testing.T) {
	home := t.TempDir()
	file := filepath.Join(home, "paygate.json")
	term := startTerminal(t, home, "init", "-o", file)
	term.expect("Backend (1 or 2) [1]: ")
	term.typeLine("2")
	term.expect("Remote MCP server URL")
	term.typeLine("https://mcp.example.com/mcp")
	term.expect("Port paygate listens on [3402]: ")
	if _, err := term.tty.Write([]byte{0x03}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	term.expect("stopped; nothing was written")
	if code := term.exit(); code != 1 {
		t.Fatalf("exit %d after Ctrl-C", code)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Ctrl-C left a file: %v", err)
	}
}

// TestInitFlagsAndOverwrite: the non-interactive mode for scripts, and
// that an existing file is only replaced with --force.
func TestInitFlagsAndOverwrite(t *testing.T) {
	home := t.TempDir()
	file := filepath.Join(home, "paygate.json")
	r := paygateCLI(t, home, "init", "--yes", "--output", file, "--server", "node server.js", "--price", "3",
		"--tool-price", "search:7", "--rate-limit", "10", "--port", "9001")
	if r.Code != 0 || !strings.Contains(r.Stdout, "paygate wrap --config "+file) {
		t.Fatalf("init --yes: %+v", r)
	}
	if v := paygateCLI(t, home, "validate", "--config", file, "--json"); v.Code != 0 || !strings.Contains(v.Stdout, `"valid": true`) {
		t.Fatalf("validate: %+v", v)
	}
	first, _ := os.ReadFile(file)
	if !strings.Contains(string(first), `"defaultCreditsPerCall": 3`) || !strings.Contains(string(first), `"port": 9001`) {
		t.Fatalf("file:\n%s", first)
	}

	r = paygateCLI(t, home, "init", "--yes", "--output", file, "--remote-url", "https://mcp.example.com/mcp")
	if r.Code != 1 || !strings.Contains(r.Stderr, "already exists; pass --force") {
		t.Fatalf("overwrite without --force: %+v", r)
	}
	if now, _ := os.ReadFile(file); string(now) != string(first) {
		t.Fatal("the file changed without --force")
	}
	r = paygateCLI(t, home, "init", "--yes", "--force", "--output", file, "--remote-url", "https://mcp.example.com/mcp")
	if r.Code != 0 {
		t.Fatalf("--force: %+v", r)
	}
	if now, _ := os.ReadFile(file); !strings.Contains(string(now), `"remoteUrl": "https://mcp.example.com/mcp"`) {
		t.Fatalf("after --force:\n%s", now)
	}
	if v := paygateCLI(t, home, "validate", "--config", file); v.Code != 0 {
		t.Fatalf("validate after --force: %+v", v)
	}

	// No terminal and no --yes: nobody to ask.
	if r = paygateCLI(t, home, "init", "--output", filepath.Join(home, "x.json")); r.Code != 2 || !strings.Contains(r.Stderr, "--yes") {
		t.Fatalf("without a terminal: %+v", r)
	}
	if r = paygateCLI(t, home, "init", "--yes", "--output", filepath.Join(home, "y.json")); r.Code != 2 || !strings.Contains(r.Stderr, "--server CMD or --remote-url URL") {
		t.Fatalf("--yes without a backend: %+v", r)
	}
}
