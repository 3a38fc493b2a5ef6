package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/bench/loadgen"
	"github.com/paygate/paygate/internal/testenv"
)

// TestSixtyFourClientsOneStdioBackend: 64 concurrent MCP sessions, each
// numbering its requests 1, 2, 3 … (so every id collides across clients),
// share one stdio backend through paygate. Every reply must carry its
// request's id and echo its request's nonce: zero wrong deliveries, zero
// timeouts, zero errors — the failure paygate-mcp showed (replies matched
// by the client's own id crossed between clients). Sessions and SSE
// replies, as real clients use them, and plain JSON both.
func TestSixtyFourClientsOneStdioBackend(t *testing.T) {
	echo := testenv.BuildGo(t, "github.com/paygate/paygate/bench/echo")
	g := startGateway(t, "--server", echo+" --stdio", "--rate-limit", "0", "--import-key", proxyKey+":100000000")
	for _, accept := range []loadgen.Accept{loadgen.AcceptBoth, loadgen.AcceptJSON} {
		t.Run(string(accept), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := loadgen.Run(ctx, loadgen.Config{
				URL:         g.URL + "/mcp",
				Concurrency: 64,
				Requests:    64 * 50,
				Accept:      accept,
				Keys:        []string{proxyKey},
				Timeout:     30 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != res.Requests || res.Errors.Total() != 0 {
				t.Fatalf("%d of %d calls OK; errors %s (first: %s)", res.OK, res.Requests, res.Errors.String(), res.FirstError)
			}
			if res.Errors.Mismatches != 0 || res.Errors.Timeouts != 0 {
				t.Fatalf("wrong deliveries %d, timeouts %d", res.Errors.Mismatches, res.Errors.Timeouts)
			}
			t.Logf("%d calls from 64 sessions, all delivered to their caller (%.0f calls/s)", res.OK, res.CallsPerSec)
		})
	}
	// Every call was charged exactly once.
	if got, want := g.balance(proxyKey), int64(100000000-2*64*50); got != want {
		t.Fatalf("balance %d, want %d", got, want)
	}
}
