package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/testenv"
)

// TestBillingPrices: --price and --tool-price set what each call costs,
// X-Credits-Remaining reports the balance after it, and every charge is a
// ledger line of that amount for that tool.
func TestBillingPrices(t *testing.T) {
	g := startGateway(t, "--server", everythingStdio(t), "--rate-limit", "0", "--price", "3", "--tool-price", "test_simple_text:5,test_image_content:0")
	k := g.newBilledKey(20, nil)
	for _, c := range []struct {
		tool  string
		price int64
	}{{"test_simple_text", 5}, {"test_audio_content", 3}, {"test_image_content", 0}, {"test_simple_text", 5}, {"test_audio_content", 3}} {
		before := g.balance(k.Secret)
		r, hdr := g.billCall(k.Secret, c.tool, nil)
		billResult(t, c.tool, r)
		if got, want := hdr.Get("X-Credits-Remaining"), strconv.FormatInt(before-c.price, 10); got != want {
			t.Errorf("%s: X-Credits-Remaining %q, want %s", c.tool, got, want)
		}
	}
	h := g.billCheckLedger(k.ID)
	if h.CurrentBalance != 20-5-3-0-5-3 {
		t.Fatalf("balance %d", h.CurrentBalance)
	}
	// One charge line per call, newest first; a free call's is 0.
	want := []struct {
		tool   string
		amount int64
	}{{"test_audio_content", -3}, {"test_simple_text", -5}, {"test_image_content", 0}, {"test_audio_content", -3}, {"test_simple_text", -5}}
	var got []ledgerLine
	for _, e := range h.Entries {
		if e.Type == "deduction" {
			got = append(got, e)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("charges %+v", got)
	}
	for i, w := range want {
		if got[i].Tool != w.tool || got[i].Amount != w.amount || got[i].CallID == "" {
			t.Errorf("charge %d: %+v, want %s %d", i, got[i], w.tool, w.amount)
		}
	}
	// The insufficient-credits refusal names the tool's own price.
	r, hdr := g.billCall(k.Secret, "test_simple_text", nil)
	if d := billDenial(t, r); d.Reason != "insufficient_credits" || *d.CreditsRequired != 5 || *d.RemainingCredits != 4 {
		t.Errorf("denial %+v", d)
	}
	if hdr.Get("X-Credits-Remaining") != "4" {
		t.Errorf("X-Credits-Remaining %q on the refusal", hdr.Get("X-Credits-Remaining"))
	}
}

// TestBillingInputSizePricing: creditsPerKbInput from the config file adds
// ceil(argument bytes / 1024) × rate, with small inputs counted as 1 KB.
func TestBillingInputSizePricing(t *testing.T) {
	cfg := billConfig(t, map[string]any{
		"toolPricing": map[string]any{"echo": map[string]any{"creditsPerCall": 1, "creditsPerKbInput": 2}},
	})
	g := startGateway(t, "--server", billEcho(t), "--rate-limit", "0", "--config", cfg)
	k := g.newBilledKey(1000, nil)
	// {"p":"xx…"} is 8 bytes plus the padding.
	for _, c := range []struct {
		argBytes int
		price    int64
	}{{8, 3}, {1024, 3}, {1025, 5}, {2048, 5}, {2049, 7}, {10 * 1024, 21}} {
		args := map[string]any{"p": strings.Repeat("x", c.argBytes-8)}
		if b, _ := json.Marshal(args); len(b) != c.argBytes {
			t.Fatalf("arguments are %d bytes, want %d", len(b), c.argBytes)
		}
		before := g.balance(k.Secret)
		r, hdr := g.billCall(k.Secret, "echo", args)
		billResult(t, "echo", r)
		if got := before - g.balance(k.Secret); got != c.price {
			t.Errorf("%d argument bytes cost %d, want %d", c.argBytes, got, c.price)
		}
		if hdr.Get("X-Credits-Remaining") != strconv.FormatInt(before-c.price, 10) {
			t.Errorf("%d bytes: X-Credits-Remaining %q", c.argBytes, hdr.Get("X-Credits-Remaining"))
		}
	}
	g.billCheckLedger(k.ID)
}

// TestBillingRefundOnFailure: a tool answering isError is charged unless
// --refund-on-failure is set; with it the charge is refunded and the
// usage log says so.
func TestBillingRefundOnFailure(t *testing.T) {
	server := everythingStdio(t)
	for _, refund := range []bool{false, true} {
		t.Run("refund="+strconv.FormatBool(refund), func(t *testing.T) {
			args := []string{"--server", server, "--rate-limit", "0", "--price", "2"}
			if refund {
				args = append(args, "--refund-on-failure")
			}
			g := startGateway(t, args...)
			k := g.newBilledKey(10, nil)
			r, hdr := g.billCallH(k.Secret, "test_error_handling", nil, map[string]string{"X-Request-Id": "fail-1"})
			if r.Error != nil {
				t.Fatalf("error %+v", r.Error)
			}
			var res struct {
				IsError bool `json:"isError"`
			}
			if json.Unmarshal(r.Result, &res); !res.IsError {
				t.Fatalf("test_error_handling result %s is not an error", r.Result)
			}
			want := int64(8)
			if refund {
				want = 10
			}
			if got := hdr.Get("X-Credits-Remaining"); got != strconv.FormatInt(want, 10) {
				t.Errorf("X-Credits-Remaining %q, want %d", got, want)
			}
			h := g.billCheckLedger(k.ID)
			if h.CurrentBalance != want || h.count("deduction") != 1 || h.count("refund") != billBtoi(refund) {
				t.Fatalf("balance %d, ledger %+v", h.CurrentBalance, h.Entries)
			}
			for _, e := range h.Entries {
				if e.Type != "initial" && (e.RequestID != "fail-1" || e.Tool != "test_error_handling") {
					t.Errorf("entry %+v lacks the call's request id or tool", e)
				}
			}
			rec := g.billUsageOf("fail-1")
			if !rec.Allowed || rec.Refunded != refund || rec.Outcome != "tool_error" || rec.Credits != 10-want {
				t.Errorf("usage record %+v", rec)
			}
			// A refunded call gives its call quota back; a charged one
			// keeps it. With a daily quota of 2 calls, the key has 2 or 1
			// left; successful calls are charged either way.
			g.billAdmin("POST", "/keys/quota", map[string]any{"key": k.ID, "dailyCallLimit": 2}, nil)
			left := 2 - 1 + billBtoi(refund)
			for i := range left {
				r, _ = g.billCall(k.Secret, "test_simple_text", nil)
				billResult(t, "test_simple_text "+strconv.Itoa(i), r)
			}
			r, _ = g.billCall(k.Secret, "test_simple_text", nil)
			if d := billDenial(t, r); d.Reason != "quota_exceeded" {
				t.Errorf("call past the quota: %s", d.Reason)
			}
			if b := g.balance(k.Secret); b != want-int64(2*left) {
				t.Errorf("balance %d after %d successful calls, want %d", b, left, want-int64(2*left))
			}
		})
	}
}

func billBtoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestBillingBackendDown: a call the backend cannot answer is never
// billed: the gateway answers with a backend error and the balance does
// not move, whether the backend was never reachable or died after serving.
func TestBillingBackendDown(t *testing.T) {
	check := func(t *testing.T, g *gateway, k billedKey, wantBalance int64) {
		t.Helper()
		r, hdr := g.billCallH(k.Secret, "echo", map[string]any{"n": 1}, map[string]string{"X-Request-Id": "down-1"})
		if r.Error == nil || r.Error.Code == -32402 || !strings.Contains(r.Error.Message, "not billed") {
			t.Fatalf("want a backend error, got %+v %s", r.Error, r.Result)
		}
		if got := hdr.Get("X-Credits-Remaining"); got != "" && got != strconv.FormatInt(wantBalance, 10) {
			t.Errorf("X-Credits-Remaining %q, want %d", got, wantBalance)
		}
		// The call may have been charged and refunded, or not charged:
		// either way it nets to nothing.
		h := g.billCheckLedger(k.ID)
		var lines []ledgerLine
		for _, e := range h.Entries {
			if e.RequestID == "down-1" {
				lines = append(lines, e)
			}
		}
		paired := len(lines) == 2 && lines[0].Type == "refund" && lines[1].Type == "deduction" &&
			lines[0].Amount == -lines[1].Amount && lines[0].CallID == lines[1].CallID
		if h.CurrentBalance != wantBalance || (len(lines) != 0 && !paired) {
			t.Fatalf("balance %d (want %d), ledger %+v", h.CurrentBalance, wantBalance, h.Entries)
		}
		rec := g.billUsageOf("down-1")
		if rec.Credits != 0 || (rec.Allowed && rec.Outcome != "backend_down") {
			t.Errorf("usage record %+v", rec)
		}
	}
	t.Run("never_up", func(t *testing.T) {
		dead := "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) // nothing listens there + "/mcp"
		g := startBillGatewayUnready(t, "--remote-url", dead, "--rate-limit", "0")
		k := g.newBilledKey(10, nil)
		check(t, g, k, 10)
	})
	t.Run("died", func(t *testing.T) {
		url, kill := startBillEchoHTTP(t)
		g := startGateway(t, "--remote-url", url, "--rate-limit", "0", "--price", "2")
		k := g.newBilledKey(10, nil)
		r, _ := g.billCall(k.Secret, "echo", map[string]any{"n": 0})
		billResult(t, "echo while up", r)
		kill()
		check(t, g, k, 8)
	})
}

// TestBillingShadow: in shadow mode every call is served and nothing is
// charged; what enforcement would have refused is in the usage log as
// "shadow:<reason>".
func TestBillingShadow(t *testing.T) {
	g := startGateway(t, "--server", everythingStdio(t), "--rate-limit", "0", "--price", "5", "--shadow")
	poor := g.newBilledKey(1, nil)
	suspended := g.newBilledKey(50, nil)
	g.billAdmin("POST", "/keys/suspend", map[string]any{"key": suspended.ID}, nil)
	rich := g.newBilledKey(50, map[string]any{"deniedTools": []string{"test_simple_text"}})
	for _, c := range []struct {
		name, key, reason string
		k                 billedKey
	}{
		{"insufficient", poor.Secret, "shadow:insufficient_credits", poor},
		{"suspended", suspended.Secret, "shadow:key_suspended", suspended},
		{"acl", rich.Secret, "shadow:tool_not_allowed", rich},
		{"missing", "", "shadow:missing_api_key", billedKey{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := "shadow-" + c.name
			r, _ := g.billCallH(c.key, "test_simple_text", nil, map[string]string{"X-Request-Id": id})
			billResult(t, "shadowed call", r)
			rec := g.billUsageOf(id)
			if !rec.Allowed || rec.DenyReason != c.reason || rec.Credits != 0 {
				t.Errorf("usage record %+v, want allowed with %q and no charge", rec, c.reason)
			}
			if c.k.ID != "" {
				h := g.billCheckLedger(c.k.ID)
				if h.count("deduction") != 0 || len(h.Entries) != 1 {
					t.Errorf("shadow mode wrote ledger lines: %+v", h.Entries)
				}
			}
		})
	}
	// A call enforcement would allow is not charged either.
	r, _ := g.billCall(suspended.Secret, "test_image_content", nil)
	billResult(t, "shadow", r)
	if b := g.billCheckLedger(suspended.ID).CurrentBalance; b != 50 {
		t.Errorf("balance %d in shadow mode", b)
	}
}

// billBatchResult is the result of tools/call_batch.
type billBatchResult struct {
	Results []struct {
		Tool           string          `json:"tool"`
		Result         json.RawMessage `json:"result"`
		Error          json.RawMessage `json:"error"`
		CreditsCharged int64           `json:"creditsCharged"`
		Refunded       bool            `json:"refunded"`
	} `json:"results"`
	TotalCreditsCharged int64 `json:"totalCreditsCharged"`
	RemainingCredits    int64 `json:"remainingCredits"`
}

func billBatch(tools ...string) map[string]any {
	calls := make([]map[string]any, len(tools))
	for i, tl := range tools {
		calls[i] = map[string]any{"name": tl, "arguments": map[string]any{}}
	}
	return map[string]any{"calls": calls}
}

// TestBillingBatch: tools/call_batch is charged all or nothing: one
// refused item refuses the batch (with its failedIndex) and charges
// nothing; a served batch charges the sum of its items, one ledger line
// each under one call id.
func TestBillingBatch(t *testing.T) {
	g := startGateway(t, "--server", everythingStdio(t), "--rate-limit", "0", "--price", "2",
		"--tool-price", "test_image_content:3", "--refund-on-failure")
	k := g.newBilledKey(20, map[string]any{"deniedTools": []string{"test_audio_content"}})

	t.Run("one_item_denied", func(t *testing.T) {
		r, hdr := g.rpc(k.Secret, 1, "tools/call_batch", billBatch("test_simple_text", "test_image_content", "test_audio_content"))
		d := billDenial(t, r)
		if d.Reason != "tool_not_allowed" || d.FailedIndex == nil || *d.FailedIndex != 2 {
			t.Fatalf("denial %+v", d)
		}
		if hdr.Get("X-Credits-Remaining") != "20" {
			t.Errorf("X-Credits-Remaining %q", hdr.Get("X-Credits-Remaining"))
		}
		if h := g.billCheckLedger(k.ID); h.CurrentBalance != 20 || len(h.Entries) != 1 {
			t.Fatalf("a refused batch moved money: %+v", h.Entries)
		}
	})
	t.Run("insufficient", func(t *testing.T) {
		poor := g.newBilledKey(6, nil)
		r, _ := g.rpc(poor.Secret, 1, "tools/call_batch", billBatch("test_simple_text", "test_image_content", "test_simple_text"))
		d := billDenial(t, r)
		if d.Reason != "insufficient_credits" || *d.CreditsRequired != 7 || *d.RemainingCredits != 6 || d.FailedIndex == nil {
			t.Fatalf("denial %+v", d)
		}
		if h := g.billCheckLedger(poor.ID); h.CurrentBalance != 6 || len(h.Entries) != 1 {
			t.Fatalf("a refused batch moved money: %+v", h.Entries)
		}
	})
	t.Run("served", func(t *testing.T) {
		r, hdr := g.rpc(k.Secret, 1, "tools/call_batch", billBatch("test_simple_text", "test_image_content", "test_simple_text"))
		if r.Error != nil {
			t.Fatalf("batch: %+v", r.Error)
		}
		var res billBatchResult
		if err := json.Unmarshal(r.Result, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Results) != 3 || res.TotalCreditsCharged != 7 || res.RemainingCredits != 13 {
			t.Fatalf("result %s", r.Result)
		}
		for i, want := range []int64{2, 3, 2} {
			it := res.Results[i]
			if it.CreditsCharged != want || len(it.Result) == 0 || len(it.Error) != 0 {
				t.Errorf("item %d: %+v", i, it)
			}
		}
		if hdr.Get("X-Credits-Remaining") != "13" {
			t.Errorf("X-Credits-Remaining %q", hdr.Get("X-Credits-Remaining"))
		}
		h := g.billCheckLedger(k.ID)
		callIDs := map[string]int{}
		for _, e := range h.Entries {
			if e.Type == "deduction" {
				callIDs[e.CallID]++
			}
		}
		if h.CurrentBalance != 13 || h.count("deduction") != 3 || len(callIDs) != 1 {
			t.Fatalf("ledger %+v", h.Entries)
		}
	})
	t.Run("failed_item_refunded", func(t *testing.T) {
		other := g.newBilledKey(10, nil)
		r, _ := g.rpc(other.Secret, 1, "tools/call_batch", billBatch("test_simple_text", "test_error_handling"))
		var res billBatchResult
		if r.Error != nil || json.Unmarshal(r.Result, &res) != nil {
			t.Fatalf("batch: %+v %s", r.Error, r.Result)
		}
		if res.TotalCreditsCharged != 2 || res.RemainingCredits != 8 || !res.Results[1].Refunded || res.Results[1].CreditsCharged != 0 {
			t.Fatalf("result %s", r.Result)
		}
		h := g.billCheckLedger(other.ID)
		if h.CurrentBalance != 8 || h.count("deduction") != 2 || h.count("refund") != 1 {
			t.Fatalf("ledger %+v", h.Entries)
		}
	})
}
