package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/testenv"
)

// runPaygateCLI runs the paygate binary with args and returns its exit code
// and output.
func runPaygateCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(testenv.Paygate(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// TestImportStateThenWrap migrates a paygate-mcp state file with the real
// binary, refuses to import into a database a running gateway holds, and
// serves the imported keys: their plaintext secrets authenticate, their
// credits and counters carry on, and their states (suspended, inactive,
// expired, out of credits) are enforced.
func TestImportStateThenWrap(t *testing.T) {
	fixture := filepath.Join(testenv.RepoRoot(t), "internal", "store", "importstate", "testdata", "state.json")
	db := filepath.Join(t.TempDir(), "state.db")
	code, stdout, stderr := runPaygateCLI(t, "import-state", fixture, "--state-file", db, "--json")
	if code != 0 {
		t.Fatalf("import-state: exit %d\n%s%s", code, stdout, stderr)
	}
	var rep struct {
		Entries  int   `json:"entries"`
		Imported int   `json:"imported"`
		Credits  int64 `json:"credits"`
		Skipped  []struct {
			Index  int    `json:"index"`
			Reason string `json:"reason"`
		} `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if rep.Entries != 11 || rep.Imported != 5 || len(rep.Skipped) != 6 || rep.Credits != 1952 {
		t.Fatalf("report %s", stdout)
	}

	g := startGateway(t, "--server", billEcho(t), "--state-file", db, "--rate-limit", "0", "--price", "1")

	// The running gateway holds the database: a second import is refused.
	code, _, stderr = runPaygateCLI(t, "import-state", fixture, "--state-file", db)
	if code != 1 || !strings.Contains(stderr, "in use") {
		t.Errorf("import while the gateway runs: exit %d, stderr %q", code, stderr)
	}

	const v1 = "pg_v1formatv1formatv1formatv1formatv1formatv1forma"
	r, hdr := g.billCall(v1, "echo", map[string]any{"hello": "imported"})
	billResult(t, "imported key", r)
	if !strings.Contains(string(r.Result), "imported") || hdr.Get("X-Credits-Remaining") != "41" {
		t.Errorf("result %s, X-Credits-Remaining %q", r.Result, hdr.Get("X-Credits-Remaining"))
	}
	h := g.billCheckLedger(v1)
	if h.CurrentBalance != 41 || len(h.Entries) != 2 || h.Entries[1].Type != "initial" || h.Entries[1].Amount != 42 {
		t.Errorf("ledger %+v", h.Entries)
	}
	// Counters continue from paygate-mcp's totals (8 spent, 8 calls).
	var list []struct {
		KeyMasked  string `json:"keyMasked"`
		TotalSpent int64  `json:"totalSpent"`
		TotalCalls int64  `json:"totalCalls"`
	}
	g.billAdmin("GET", "/keys", nil, &list)
	found := false
	for _, k := range list {
		if k.KeyMasked == "pg_v1fo...orma" {
			found = true
			if k.TotalSpent != 9 || k.TotalCalls != 9 {
				t.Errorf("counters after one call: %+v", k)
			}
		}
	}
	if !found || len(list) != 5 {
		t.Errorf("GET /keys lists %d keys, v1 key found: %v", len(list), found)
	}

	// The states the file recorded are enforced.
	live := "ip_not_allowed" // allowlist 10.0.0.0/8 and 192.0.2.7; we call from 127.0.0.1
	if !time.Now().Before(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		live = "api_key_expired" // its expiresAt has passed, which the gate checks first
	}
	for secret, reason := range map[string]string{
		"pg_5u5pended5u5pended5u5pended5u5pended5u5pended5u":  "key_suspended",
		"pg_old0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee00":  "invalid_api_key",
		"pg_zer0zer0zer0zer0zer0zer0zer0zer0zer0zer0zer0zer0": "insufficient_credits",
		"pg_0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071": live,
		"pg_fract10na1fract10na1fract10na1fract10na1fract10":  "invalid_api_key", // skipped
	} {
		r, _ := g.billCall(secret, "echo", nil)
		if d := billDenial(t, r); d.Reason != reason {
			t.Errorf("%s…: %s, want %s", secret[:8], d.Reason, reason)
		}
	}
}
