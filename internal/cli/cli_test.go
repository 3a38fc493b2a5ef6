package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testEnv is a fixed environment, so output never depends on the machine.
var testEnv = []string{"HOME=/home/test"}

type result struct {
	code           int
	stdout, stderr string
	cfg            *config.Config // what run received, if it was called
}

// runMain runs Main with a run function that records its config and
// returns runErr.
func runMain(t *testing.T, env []string, runErr error, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	var r result
	run := func(_ context.Context, cfg *config.Config, io IO) error {
		r.cfg = cfg
		if io.Stdout == nil || io.Stderr == nil {
			t.Error("run got a nil writer")
		}
		return runErr
	}
	r.code = Main(context.Background(), args, env, strings.NewReader(""), &out, &errOut, run)
	r.stdout, r.stderr = out.String(), errOut.String()
	return r
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update if intended)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// TestGoldenOutput compares help and validate output with testdata/*.golden.
func TestGoldenOutput(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr bool // the golden text is on stderr
	}{
		{name: "overview", args: nil, code: ExitUsage, stderr: true},
		{name: "help", args: []string{"--help"}, code: ExitOK},
		{name: "help-wrap", args: []string{"wrap", "--help"}, code: ExitOK},
		{name: "help-validate", args: []string{"help", "validate"}, code: ExitOK},
		{name: "help-completions", args: []string{"completions", "-h"}, code: ExitOK},
		{name: "help-init", args: []string{"help", "init"}, code: ExitOK},
		{name: "validate-valid", args: []string{"validate", "--config", "testdata/valid.json"}, code: ExitOK},
		{name: "validate-valid-json", args: []string{"validate", "--config", "testdata/valid.json", "--json"}, code: ExitOK},
		{name: "validate-invalid", args: []string{"validate", "--config", "testdata/invalid.yaml"}, code: ExitError},
		{name: "validate-invalid-json", args: []string{"validate", "--json", "--config", "testdata/invalid.yaml"}, code: ExitError},
		{name: "validate-missing-json", args: []string{"validate", "--config", "testdata/nope.json", "--json"}, code: ExitError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, testEnv, nil, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			got, other := r.stdout, r.stderr
			if tc.stderr {
				got, other = other, got
			}
			if other != "" {
				t.Errorf("unexpected output on the other stream: %q", other)
			}
			checkGolden(t, tc.name, got)
		})
	}
}

func TestValidateJSONShape(t *testing.T) {
	r := runMain(t, testEnv, nil, "validate", "--config", "testdata/invalid.yaml", "--json")
	var rep struct {
		Valid       bool                `json:"valid"`
		Diagnostics []config.Diagnostic `json:"diagnostics"`
		Errors      int                 `json:"errors"`
		Warnings    int                 `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if rep.Valid || rep.Errors == 0 || rep.Errors+rep.Warnings != len(rep.Diagnostics) {
		t.Errorf("report %+v", rep)
	}
	paths := map[string]bool{}
	for _, d := range rep.Diagnostics {
		paths[d.Path] = true
	}
	for _, p := range []string{"port", "defaultCreditsPerCall", "toolPricing.search.creditsPerCall", "servers", "prot", "redisUrl"} {
		if !paths[p] {
			t.Errorf("no diagnostic for %s", p)
		}
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		runErr error
		args   []string
		code   int
		stderr string // substring
		ran    bool
	}{
		{name: "unknown command", args: []string{"wrp"}, code: ExitUsage, stderr: `did you mean "wrap"?`},
		{name: "unknown flag", args: []string{"wrap", "--prot", "1"}, code: ExitUsage, stderr: "did you mean --port?"},
		{name: "bogus flag", args: []string{"wrap", "--bogus"}, code: ExitUsage, stderr: "paygate wrap --help"},
		{name: "bad flag value", args: []string{"wrap", "--server", "x", "--port", "x"}, code: ExitUsage, stderr: "Run 'paygate wrap --help'"},
		{name: "bad env value", env: []string{"PAYGATE_PORT=x"}, args: []string{"wrap", "--server", "x"}, code: ExitError, stderr: "PAYGATE_PORT"},
		{name: "invalid config", args: []string{"wrap", "--server", "x", "--port", "70000"}, code: ExitError, stderr: "port: must be between 0 and 65535"},
		{name: "missing file", args: []string{"wrap", "--config", "testdata/nope.json"}, code: ExitError, stderr: "no such file"},
		{name: "runs", args: []string{"wrap", "--server", "x", "--in-memory"}, code: ExitOK, ran: true},
		{name: "runs argv", args: []string{"wrap", "--in-memory", "--", "node", "--help"}, code: ExitOK, ran: true},
		{name: "warnings still run", args: []string{"wrap", "--server", "x", "--in-memory", "--shadow"}, code: ExitOK, stderr: "warning: shadowMode", ran: true},
		{name: "run fails", runErr: errors.New("backend exited: status 1"), args: []string{"wrap", "--server", "x", "--in-memory"}, code: ExitError, stderr: "paygate: backend exited", ran: true},
		{name: "version", args: []string{"version"}, code: ExitOK},
		{name: "version flag", args: []string{"--version"}, code: ExitOK},
		{name: "version extra", args: []string{"version", "--short"}, code: ExitUsage, stderr: "only flag is --json"},
		{name: "completions shell", args: []string{"completions", "powershell"}, code: ExitUsage, stderr: "bash, zsh or fish"},
		{name: "backup without a database", args: []string{"backup"}, code: ExitError, stderr: "no database at"},
		{name: "validate nothing", args: []string{"validate"}, code: ExitUsage, stderr: "paygate validate --config"},
		{name: "validate env file", env: []string{"PAYGATE_CONFIG=testdata/valid.json"}, args: []string{"validate"}, code: ExitOK},
		{name: "help unknown", args: []string{"help", "wrapp"}, code: ExitUsage, stderr: `did you mean "wrap"?`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, append([]string{"HOME=/home/test"}, tc.env...), tc.runErr, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstderr: %s", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.stderr)
			}
			if (r.cfg != nil) != tc.ran {
				t.Errorf("run called: %v, want %v", r.cfg != nil, tc.ran)
			}
		})
	}
}

func TestWrapPassesConfig(t *testing.T) {
	r := runMain(t, []string{"HOME=/home/test", "PAYGATE_PRICE=3"}, nil,
		"wrap", "--in-memory", "--tool-price", "search:5", "--json", "--", "npx", "-y", "server")
	if r.code != ExitOK || r.cfg == nil {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	c := r.cfg
	if c.DefaultCreditsPerCall != 3 || *c.ToolPricing["search"].CreditsPerCall != 5 || !c.JSONOutput || !c.InMemory {
		t.Errorf("config %+v", c)
	}
	argv, err := c.StdioArgv(func(s string) ([]string, error) { return strings.Fields(s), nil })
	if err != nil || strings.Join(argv, " ") != "npx -y server" {
		t.Errorf("argv %q, %v", argv, err)
	}
	// With --json, warnings are JSON lines.
	r = runMain(t, testEnv, nil, "wrap", "--server", "x", "--in-memory", "--json")
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var d config.Diagnostic
		if err := json.Unmarshal([]byte(line), &d); err != nil || d.Level == "" {
			t.Errorf("not a JSON diagnostic: %q", line)
		}
	}
}

func TestCanceledRunIsClean(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	code := Main(ctx, []string{"wrap", "--server", "x", "--in-memory"}, testEnv, nil, &out, &errOut,
		func(ctx context.Context, _ *config.Config, _ IO) error { return ctx.Err() })
	if code != ExitOK {
		t.Errorf("exit %d after a signal, want 0: %s", code, errOut.String())
	}
}

// TestCommandTable: every command has a summary and runs, and reserved
// ones say so.
func TestCommandTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands() {
		if seen[c.name] || c.summary == "" || c.run == nil {
			t.Errorf("bad entry %q", c.name)
		}
		seen[c.name] = true
	}
	for _, name := range []string{"wrap", "validate", "version", "completions", "help", "init", "import-state", "backup", "restore"} {
		if !seen[name] {
			t.Errorf("%s is not registered", name)
		}
	}
}

// TestHelpListsEveryFlag: wrap --help shows every flag with its variable.
func TestHelpListsEveryFlag(t *testing.T) {
	r := runMain(t, testEnv, nil, "wrap", "--help")
	for _, f := range config.Flags() {
		if !strings.Contains(r.stdout, "--"+f.Name) {
			t.Errorf("--help lacks --%s", f.Name)
		}
		if f.Env != "" && !f.Compat && !strings.Contains(r.stdout, f.Env) {
			t.Errorf("--help lacks %s", f.Env)
		}
	}
}
