package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/testenv"
)

var totalRe = regexp.MustCompile(`Total: (\d+) passed, (\d+) failed`)

// runConformance runs the official MCP conformance suite (server mode,
// spec 2025-11-25) against url and returns passed, failed and the output.
func runConformance(t *testing.T, url string) (int, int, string) {
	t.Helper()
	bin := testenv.NPMBin(t, "conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "server", "--url", url, "--spec-version", "2025-11-25")
	cmd.Env = testenv.NodeEnv(t)
	cmd.Dir = t.TempDir() // it writes result files into the working directory
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // exits non-zero when a scenario fails; the summary decides
	m := totalRe.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no conformance summary in output:\n%s", out.String())
	}
	p, _ := strconv.Atoi(m[1])
	f, _ := strconv.Atoi(m[2])
	return p, f, out.String()
}

// TestConformance: the MCP conformance suite passes as many scenarios
// through paygate as against the server directly, for an HTTP and a stdio
// backend, including the DNS-rebinding check (which paygate answers itself).
// Shadow mode lets the suite's keyless tool calls through; everything else
// is the production path.
func TestConformance(t *testing.T) {
	direct := startEverythingHTTP(t)
	wantPass, wantFail, out := runConformance(t, direct)
	if wantFail != 0 || wantPass == 0 {
		t.Fatalf("the everything server itself fails the suite (%d passed, %d failed):\n%s", wantPass, wantFail, out)
	}
	t.Logf("direct: %d passed", wantPass)
	for name, args := range map[string][]string{
		"http":  {"--remote-url", direct},
		"stdio": {"--server", everythingStdio(t)},
	} {
		t.Run(name, func(t *testing.T) {
			g := startGateway(t, append(args, "--shadow", "--rate-limit", "0", "--in-memory")...)
			pass, fail, out := runConformance(t, g.URL+"/mcp")
			t.Logf("through paygate (%s backend): %d passed, %d failed", name, pass, fail)
			if pass != wantPass || fail != 0 {
				t.Errorf("through paygate: %d passed, %d failed; direct: %d passed\n%s", pass, fail, wantPass, out)
			}
		})
	}
}
