package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/testenv"
)

// TestOpsDryRun: wrap --dry-run starts the real backend, lists its tools
// with the prices the flags and config give them, and exits without
// serving anything or creating a database.
func TestOpsDryRun(t *testing.T) {
	home := t.TempDir()
	cfg := filepath.Join(home, "paygate.json")
	if err := os.WriteFile(cfg, []byte(`{"toolPricing":{"test_simple_text":{"creditsPerCall":2,"creditsPerKbInput":1,"rateLimitPerMin":30}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	server := testenv.EverythingServer(t)
	state := filepath.Join(home, "state.db")
	args := []string{"wrap", "--server", server, "--config", cfg, "--price", "4", "--tool-price", "test_sampling:7",
		"--state-file", state, "--port", "1", "--dry-run"}

	r := paygateCLI(t, home, args...)
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	rows := map[string][]string{}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if !regexp.MustCompile(`^TOOL\s+CREDITS/CALL\s+PER KB INPUT\s+RATE LIMIT$`).MatchString(lines[0]) {
		t.Fatalf("header %q\n%s", lines[0], r.Stdout)
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) == 4 {
			rows[f[0]] = f[1:]
		}
	}
	want := map[string]string{"test_simple_text": "2 +1 30/min", "test_sampling": "7 - -"}
	for tool, w := range want {
		if got := strings.Join(rows[tool], " "); got != w {
			t.Errorf("%s: %q, want %q\n%s", tool, got, w, r.Stdout)
		}
	}
	if len(rows) < 3 {
		t.Fatalf("only %d tools listed:\n%s", len(rows), r.Stdout)
	}
	for tool, f := range rows {
		if _, ok := want[tool]; !ok && f[0] != "4" {
			t.Errorf("%s: %v, want the default price 4", tool, f)
		}
	}
	if !regexp.MustCompile(`\n\d+ tools discovered from .*dry run: nothing was started`).MatchString(r.Stdout) {
		t.Errorf("no summary line:\n%s", r.Stdout)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("dry run touched the state file: %v", err)
	}

	// --json: the same table for scripts.
	r = paygateCLI(t, home, append(args, "--json")...)
	if r.Code != 0 {
		t.Fatalf("--json: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	var out struct {
		Backend string `json:"backend"`
		Tools   []struct {
			Name    string `json:"name"`
			Pricing struct {
				CreditsPerCall    int64 `json:"creditsPerCall"`
				CreditsPerKbInput int64 `json:"creditsPerKbInput"`
			} `json:"pricing"`
		} `json:"tools"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.Stdout)
	}
	if len(out.Tools) != len(rows) || out.Backend == "" {
		t.Fatalf("--json: %d tools (table had %d), backend %q", len(out.Tools), len(rows), out.Backend)
	}
	for _, tl := range out.Tools {
		if tl.Name == "test_simple_text" && (tl.Pricing.CreditsPerCall != 2 || tl.Pricing.CreditsPerKbInput != 1) {
			t.Errorf("--json test_simple_text pricing %+v", tl.Pricing)
		}
	}
}
