package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestOpsUsageRetention: with usageMaxRecords set (300 here; the
// default is 10 million), a restart trims the
// usage log to the newest records, and the money (balance and ledger) is
// untouched.
func TestOpsUsageRetention(t *testing.T) {
	url, _ := startBillEchoHTTP(t)
	cfg := filepath.Join(t.TempDir(), "paygate.json")
	writeConfigJSON(t, cfg, map[string]any{"usageMaxRecords": 300})
	g := startGateway(t, "--remote-url", url, "--rate-limit", "0", "--config", cfg)
	k := g.newBilledKey(1000, nil)
	const calls = 400
	for i := range calls {
		r, _ := g.billCall(k.Secret, "echo", map[string]any{"n": i})
		billResult(t, "echo", r)
	}
	type usageEvent struct {
		Seq  int64  `json:"seq"`
		Tool string `json:"tool"`
	}
	usage := func() []usageEvent {
		var out struct {
			Events []usageEvent `json:"events"`
		}
		if code := g.admin("GET", "/usage?limit=100000", nil, &out); code != 200 {
			t.Fatalf("GET /usage: %d", code)
		}
		return out.Events
	}
	var before []usageEvent
	waitFor(t, func() bool { before = usage(); return len(before) >= calls }, "every call in the usage log")
	ledger := func() int {
		var out struct {
			Entries []any `json:"entries"`
		}
		if code := g.admin("GET", "/keys/credit-history?key="+k.ID+"&limit=1000", nil, &out); code != 200 {
			t.Fatalf("GET /keys/credit-history: %d", code)
		}
		return len(out.Entries)
	}
	lines := ledger()
	if lines < calls {
		t.Fatalf("%d ledger lines for %d charged calls", lines, calls)
	}

	g.stop()
	g.restart() // retention runs at start (then hourly)
	var after []usageEvent
	waitFor(t, func() bool { after = usage(); return len(after) == 300 }, "the usage log trimmed to 300 records")
	if after[len(after)-1].Seq != before[len(before)-1].Seq || after[0].Seq != before[len(before)-300].Seq {
		t.Fatalf("kept seqs %d…%d, want the newest 300 (%d…%d)", after[0].Seq, after[len(after)-1].Seq,
			before[len(before)-300].Seq, before[len(before)-1].Seq)
	}
	if got := g.balance(k.Secret); got != 1000-calls {
		t.Fatalf("balance %d after retention, want %d", got, 1000-calls)
	}
	if got := ledger(); got != lines {
		t.Fatalf("%d ledger lines after retention, want %d (the ledger is never pruned)", got, lines)
	}
	if out := g.out.String(); !strings.Contains(out, "usage retention") || !strings.Contains(out, "deleted=") {
		t.Fatalf("no retention log line:\n%s", out)
	}
}
