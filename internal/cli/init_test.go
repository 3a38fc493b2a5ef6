package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/config"
)

func TestParseInitArgs(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		err   string
		check func(t *testing.T, a initArgs)
	}{
		{"defaults", nil, "", func(t *testing.T, a initArgs) {
			if a.output != "paygate.json" || a.ans.port != 3402 || a.ans.price != 1 || a.ans.rateLimit != 60 || a.yes || a.force {
				t.Fatalf("%+v", a)
			}
		}},
		{"all flags", []string{"-o", "x.yaml", "--force", "-y", "--server=node s.js", "--port", "8080", "--price", "3",
			"--tool-price", "a:1,b:2", "--tool-price", "b:5,fs:read:9", "--rate-limit", "0", "--state-file", "/tmp/s.db"}, "",
			func(t *testing.T, a initArgs) {
				if a.output != "x.yaml" || !a.force || !a.yes || a.ans.server != "node s.js" || a.ans.port != 8080 || a.ans.price != 3 ||
					a.ans.rateLimit != 0 || a.ans.stateFile != "/tmp/s.db" || formatToolPrices(a.ans.toolPrices) != "a:1,b:5,fs:read:9" {
					t.Fatalf("%+v", a)
				}
			}},
		{"yes without backend", []string{"--yes"}, "--yes needs the backend", nil},
		{"both backends", []string{"--server", "x", "--remote-url", "https://a.b/mcp"}, "both set", nil},
		{"bad port", []string{"--port", "0"}, "--port: a port", nil},
		{"bad price", []string{"--price", "1.5"}, "--price: a price", nil},
		{"bad tool price", []string{"--tool-price", "search"}, "TOOL:CREDITS", nil},
		{"bad url", []string{"--remote-url", "ftp://x"}, "http:// or https://", nil},
		{"json state", []string{"--state-file", "paygate-state.json"}, "SQLite", nil},
		{"unbalanced quote", []string{"--server", `node "server.js`}, "--server", nil},
		{"unknown flag", []string{"--colour"}, "unknown flag --colour", nil},
		{"stray argument", []string{"out.json"}, "--output FILE", nil},
		{"missing value", []string{"--port"}, "--port needs a value", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseInitArgs(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, a)
		})
	}
}

// TestWizardReprompts drives the questions with typed answers, wrong ones
// included: each wrong answer is explained and asked again.
func TestWizardReprompts(t *testing.T) {
	in := strings.Join([]string{
		"3",          // backend: not a choice
		"2",          // remote
		"gopher://x", // bad URL
		"https://mcp.example.com/mcp",
		"99999", "8088", // port
		"-1", "", // price: bad, then the default
		"search:5,fetch", "search:5,fetch:2", // tool prices
		"fast", "120", // rate limit
		"state.json", "/var/lib/paygate/s.db", // state file
	}, "\n") + "\n"
	var out bytes.Buffer
	p := newPrompter(context.Background(), strings.NewReader(in), &out)
	ans, err := wizard(p, initAnswers{port: 3402, price: 1, rateLimit: 60}, "/home/u/.local/share/paygate/state.db")
	if err != nil {
		t.Fatalf("wizard: %v\n%s", err, out.String())
	}
	if ans.remoteURL != "https://mcp.example.com/mcp" || ans.server != "" || ans.port != 8088 || ans.price != 1 ||
		formatToolPrices(ans.toolPrices) != "search:5,fetch:2" || ans.rateLimit != 120 || ans.stateFile != "/var/lib/paygate/s.db" {
		t.Fatalf("answers %+v", ans)
	}
	o := out.String()
	for _, want := range []string{"Backend (1 or 2) [1]: ", "answer 1 (a local command) or 2", "http:// or https://",
		"Port paygate listens on [3402]: ", "from 1 to 65535", "in credits [1]: ", "TOOL:CREDITS", "calls per minute",
		"not JSON", "[/home/u/.local/share/paygate/state.db]: "} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
	if n := strings.Count(o, "try again"); n != 7 {
		t.Errorf("%d re-prompts, want 7:\n%s", n, o)
	}
}

func TestWizardDefaultsAndEndOfInput(t *testing.T) {
	var out bytes.Buffer
	// stdio with the flag's command as default; every other default.
	p := newPrompter(context.Background(), strings.NewReader(strings.Repeat("\n", 7)), &out)
	ans, err := wizard(p, initAnswers{server: "node s.js", port: 3402, price: 1, rateLimit: 60}, "/d/state.db")
	if err != nil {
		t.Fatal(err)
	}
	if ans.server != "node s.js" || ans.stateFile != "" || ans.toolPrices != nil {
		t.Fatalf("answers %+v", ans)
	}
	// Input ends mid-way: stop.
	p = newPrompter(context.Background(), strings.NewReader("1\n"), &out)
	if _, err := wizard(p, initAnswers{port: 3402}, "/d/state.db"); err != errAborted {
		t.Fatalf("end of input: %v", err)
	}
	// Ctrl-C: the context ends while a question waits.
	ctx, cancel := context.WithCancel(context.Background())
	r, w, _ := os.Pipe()
	defer w.Close()
	defer r.Close()
	p = newPrompter(ctx, r, &out)
	done := make(chan error, 1)
	go func() { _, err := wizard(p, initAnswers{port: 3402}, "/d/state.db"); done <- err }()
	cancel()
	if err := <-done; err != errAborted {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestInitNonInteractive(t *testing.T) {
	dir := t.TempDir()
	env := []string{"HOME=" + dir}
	json := filepath.Join(dir, "paygate.json")
	r := runMain(t, env, nil, "init", "--yes", "--output", json, "--server", "npx -y @modelcontextprotocol/server-everything",
		"--price", "2", "--tool-price", "search:5", "--rate-limit", "30", "--port", "8090")
	if r.code != ExitOK || !strings.Contains(r.stdout, "paygate wrap --config "+json) {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	cfg, diags, err := config.Load(config.LoadOptions{ConfigPath: json, Env: env})
	if err != nil || config.HasErrors(diags) {
		t.Fatalf("written file does not validate: %v %v", err, diags)
	}
	if cfg.Port != 8090 || cfg.DefaultCreditsPerCall != 2 || cfg.GlobalRateLimitPerMin != 30 ||
		*cfg.ToolPricing["search"].CreditsPerCall != 5 || cfg.ServerCommand == "" {
		t.Fatalf("loaded %+v", cfg)
	}

	// An existing file is refused without --force, and left alone.
	before, _ := os.ReadFile(json)
	r = runMain(t, env, nil, "init", "--yes", "--output", json, "--remote-url", "https://mcp.example.com/mcp")
	if r.code != ExitError || !strings.Contains(r.stderr, "already exists; pass --force") {
		t.Fatalf("overwrite: exit %d %s", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(json); !bytes.Equal(before, after) {
		t.Fatal("the existing file changed")
	}
	r = runMain(t, env, nil, "init", "--yes", "--force", "--output", json, "--remote-url", "https://mcp.example.com/mcp")
	if r.code != ExitOK {
		t.Fatalf("--force: exit %d %s", r.code, r.stderr)
	}
	if cfg, _, _ := config.Load(config.LoadOptions{ConfigPath: json, Env: env}); cfg.RemoteURL != "https://mcp.example.com/mcp" || cfg.ServerCommand != "" {
		t.Fatalf("after --force: %+v", cfg)
	}

	// YAML by extension.
	yml := filepath.Join(dir, "paygate.yaml")
	r = runMain(t, env, nil, "init", "-y", "-o", yml, "--server", "node server.js", "--state-file", filepath.Join(dir, "s.db"))
	if r.code != ExitOK {
		t.Fatalf("yaml: exit %d %s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(yml)
	if !strings.Contains(string(b), "serverCommand: node server.js") || strings.Contains(string(b), "{") {
		t.Fatalf("yaml file:\n%s", b)
	}
	if _, diags, err := config.Load(config.LoadOptions{ConfigPath: yml, Env: env}); err != nil || len(diags) != 0 {
		t.Fatalf("yaml does not validate cleanly: %v %v", err, diags)
	}

	// Without a terminal and without --yes there is nobody to ask.
	r = runMain(t, env, nil, "init", "-o", filepath.Join(dir, "other.json"))
	if r.code != ExitUsage || !strings.Contains(r.stderr, "need a terminal") {
		t.Fatalf("no terminal: exit %d %s", r.code, r.stderr)
	}
	// No HOME: the state file must be given.
	r = runMain(t, nil, nil, "init", "-y", "-o", filepath.Join(dir, "nohome.json"), "--server", "x")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--state-file") {
		t.Fatalf("no HOME: exit %d %s", r.code, r.stderr)
	}
}
