package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGateDenials drives every gate check through the real binary and the
// go-sdk conformance server: each refusal is a -32402 in paygate-mcp's
// shape, carries the key's balance in X-Credits-Remaining, is recorded in
// the usage log with its reason, and leaves the balance and the ledger
// untouched. Where a check is reversible, undoing it lets the key call
// again.
func TestGateDenials(t *testing.T) {
	g := startGateway(t, "--server", everythingStdio(t), "--rate-limit", "0", "--price", "2")
	const tool = "test_simple_text"

	// refused calls tool by key (a secret, "" for none) and checks the
	// denial: reason, shape, headers, nothing charged, usage recorded.
	refused := func(t *testing.T, key, tool, reason string) denialInfo {
		t.Helper()
		var before ledgerView
		if strings.HasPrefix(key, "pg_") && g.billKeyExists(key) {
			before = g.billLedger(key)
		}
		reqID := fmt.Sprintf("deny-%s-%d", reason, time.Now().UnixNano())
		r, hdr := g.billCallH(key, tool, nil, map[string]string{"X-Request-Id": reqID})
		d := billDenial(t, r)
		if d.Reason != reason {
			t.Fatalf("reason %q (%s), want %q", d.Reason, r.Error.Message, reason)
		}
		if d.FailedIndex != nil {
			t.Errorf("a single call's denial has failedIndex %d", *d.FailedIndex)
		}
		if *d.PricingURL == "" {
			t.Errorf("pricingUrl is empty")
		}
		// Every refusal is in the usage log, attributed to the key when the
		// key was identified.
		rec := g.billUsageOf(reqID)
		if rec.Allowed || rec.DenyReason != reason || rec.Credits != 0 || rec.Tool != tool {
			t.Errorf("usage record %+v, want a denial %s of %s", rec, reason, tool)
		}
		if identified := reason != "missing_api_key" && reason != "invalid_api_key"; identified != (rec.KeyID != "") {
			t.Errorf("usage record of %s has key id %q", reason, rec.KeyID)
		}
		// The balance is reported whenever the key was identified.
		wantHdr := ""
		if before.ID != "" && reason != "invalid_api_key" {
			wantHdr = strconv.FormatInt(before.CurrentBalance, 10)
		}
		if h := hdr.Get("X-Credits-Remaining"); h != wantHdr {
			t.Errorf("X-Credits-Remaining %q, want %q", h, wantHdr)
		}
		if before.ID == "" {
			return d
		}
		after := g.billLedger(key)
		if after.CurrentBalance != before.CurrentBalance || len(after.Entries) != len(before.Entries) {
			t.Errorf("a refused call moved money: balance %d → %d, ledger %d → %d entries",
				before.CurrentBalance, after.CurrentBalance, len(before.Entries), len(after.Entries))
		}
		return d
	}
	// served calls tool by key and checks the charge and its header.
	served := func(t *testing.T, key, tool string, price int64) {
		t.Helper()
		before := g.balance(key)
		r, hdr := g.billCall(key, tool, nil)
		billResult(t, tool, r)
		if got := hdr.Get("X-Credits-Remaining"); got != strconv.FormatInt(before-price, 10) {
			t.Errorf("X-Credits-Remaining %q after a call of %d from %d", got, price, before)
		}
		if after := g.balance(key); after != before-price {
			t.Errorf("balance %d → %d, want a charge of %d", before, after, price)
		}
	}

	t.Run("missing_api_key", func(t *testing.T) {
		d := refused(t, "", tool, "missing_api_key")
		if *d.CreditsRequired != 0 || *d.RemainingCredits != 0 {
			t.Errorf("data %+v", d)
		}
	})
	t.Run("invalid_api_key/unknown", func(t *testing.T) {
		refused(t, "pg_"+strings.Repeat("0", 48), tool, "invalid_api_key")
	})
	t.Run("invalid_api_key/revoked", func(t *testing.T) {
		k := g.newBilledKey(10, nil)
		served(t, k.Secret, tool, 2)
		g.billAdmin("POST", "/keys/revoke", map[string]any{"key": k.ID}, nil)
		refused(t, k.Secret, tool, "invalid_api_key")
		g.billCheckLedger(k.ID)
	})
	t.Run("api_key_expired", func(t *testing.T) {
		k := g.newBilledKey(10, map[string]any{"expiresIn": 1})
		exp, err := time.Parse(time.RFC3339Nano, k.ExpiresAt)
		if err != nil {
			t.Fatalf("expiresAt %q: %v", k.ExpiresAt, err)
		}
		time.Sleep(time.Until(exp) + 50*time.Millisecond)
		refused(t, k.Secret, tool, "api_key_expired")
		// Extending the expiry brings it back.
		g.billAdmin("POST", "/keys/expiry", map[string]any{"key": k.ID, "expiresIn": 3600}, nil)
		served(t, k.Secret, tool, 2)
	})
	t.Run("key_suspended", func(t *testing.T) {
		k := g.newBilledKey(10, nil)
		g.billAdmin("POST", "/keys/suspend", map[string]any{"key": k.ID}, nil)
		d := refused(t, k.Secret, tool, "key_suspended")
		if *d.RemainingCredits != 10 {
			t.Errorf("remainingCredits %d, want 10", *d.RemainingCredits)
		}
		g.billAdmin("POST", "/keys/resume", map[string]any{"key": k.ID}, nil)
		served(t, k.Secret, tool, 2)
	})
	t.Run("ip_not_allowed", func(t *testing.T) {
		k := g.newBilledKey(10, map[string]any{"ipAllowlist": []string{"10.0.0.0/8"}})
		refused(t, k.Secret, tool, "ip_not_allowed")
		g.billAdmin("POST", "/keys/ip", map[string]any{"key": k.ID, "ipAllowlist": []string{"10.0.0.0/8", "127.0.0.1/32"}}, nil)
		served(t, k.Secret, tool, 2)
		g.billAdmin("POST", "/keys/ip", map[string]any{"key": k.ID, "ipAllowlist": []string{"192.168.1.1"}}, nil)
		refused(t, k.Secret, tool, "ip_not_allowed")
	})
	t.Run("tool_not_allowed/allowedTools", func(t *testing.T) {
		k := g.newBilledKey(10, map[string]any{"allowedTools": []string{tool}})
		refused(t, k.Secret, "test_error_handling", "tool_not_allowed")
		served(t, k.Secret, tool, 2)
		if names := g.billToolNames(k.Secret); len(names) != 1 || names[0] != tool {
			t.Errorf("tools/list for a key allowed only %s: %v", tool, names)
		}
	})
	t.Run("tool_not_allowed/deniedTools", func(t *testing.T) {
		k := g.newBilledKey(10, nil)
		g.billAdmin("POST", "/keys/acl", map[string]any{"key": k.ID, "deniedTools": []string{"test_error_*"}}, nil)
		refused(t, k.Secret, "test_error_handling", "tool_not_allowed")
		served(t, k.Secret, tool, 2)
		// tools/list hides the denied tool from this key only.
		mine, all := g.billToolNames(k.Secret), g.billToolNames("")
		if slices.Contains(mine, "test_error_handling") || !slices.Contains(mine, tool) {
			t.Errorf("tools/list for the key shows %v", mine)
		}
		if !slices.Contains(all, "test_error_handling") || len(all) != len(mine)+1 {
			t.Errorf("tools/list without a key: %d tools, with the key %d", len(all), len(mine))
		}
	})
	t.Run("spending_limit_exceeded", func(t *testing.T) {
		k := g.newBilledKey(100, nil)
		g.billAdmin("POST", "/limits", map[string]any{"key": k.ID, "spendingLimit": 5}, nil)
		served(t, k.Secret, tool, 2)
		served(t, k.Secret, tool, 2) // spent 4 of 5
		d := refused(t, k.Secret, tool, "spending_limit_exceeded")
		if *d.CreditsRequired != 2 || *d.RemainingCredits != 96 {
			t.Errorf("data: creditsRequired %d remainingCredits %d, want 2 and 96", *d.CreditsRequired, *d.RemainingCredits)
		}
		g.billAdmin("POST", "/limits", map[string]any{"key": k.ID, "spendingLimit": 0}, nil)
		served(t, k.Secret, tool, 2)
	})
	t.Run("quota_exceeded/key", func(t *testing.T) {
		k := g.newBilledKey(100, nil)
		g.billAdmin("POST", "/keys/quota", map[string]any{"key": k.ID, "dailyCallLimit": 2}, nil)
		served(t, k.Secret, tool, 2)
		served(t, k.Secret, tool, 2)
		d := refused(t, k.Secret, tool, "quota_exceeded")
		if d.RetryAfter == nil || *d.RetryAfter < 1 || *d.RetryAfter > 86400 {
			t.Errorf("retryAfter %v, want the seconds until the UTC day ends", d.RetryAfter)
		}
		g.billAdmin("POST", "/keys/quota", map[string]any{"key": k.ID, "dailyCallLimit": 3}, nil)
		served(t, k.Secret, tool, 2)
	})
	t.Run("insufficient_credits", func(t *testing.T) {
		k := g.newBilledKey(3, nil)
		served(t, k.Secret, tool, 2)
		r, _ := g.billCall(k.Secret, tool, nil)
		d := refused(t, k.Secret, tool, "insufficient_credits")
		if *d.CreditsRequired != 2 || *d.RemainingCredits != 1 {
			t.Errorf("data: creditsRequired %d remainingCredits %d, want 2 and 1", *d.CreditsRequired, *d.RemainingCredits)
		}
		if want := "Payment required: insufficient_credits: need 2, have 1"; r.Error == nil || r.Error.Message != want {
			t.Errorf("message %+v, want %q", r.Error, want)
		}
		g.billAdmin("POST", "/topup", map[string]any{"key": k.ID, "credits": 1}, nil)
		served(t, k.Secret, tool, 2)
		if b := g.balance(k.Secret); b != 0 {
			t.Errorf("balance %d after spending the last credits", b)
		}
		h := g.billCheckLedger(k.ID)
		if h.count("deduction") != 2 || h.count("initial") != 1 || h.count("topup") != 1 {
			t.Errorf("ledger %+v", h.Entries)
		}
	})
}

// billKeyExists reports whether the admin API knows the secret.
func (g *gateway) billKeyExists(secret string) bool {
	g.t.Helper()
	var raw json.RawMessage
	return g.admin("GET", "/keys/credit-history?limit=1&key="+secret, nil, &raw) == 200
}

// billToolNames returns the tool names tools/list shows to key ("" for none).
func (g *gateway) billToolNames(key string) []string {
	g.t.Helper()
	r, _ := g.rpc(key, 1, "tools/list", nil)
	if r.Error != nil {
		g.t.Fatalf("tools/list: %+v", r.Error)
	}
	var list struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(r.Result, &list); err != nil {
		g.t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// TestGateRateLimits: the key's global rate limit counts every call and
// answers with exact X-RateLimit-* headers; the per-tool limit of the
// config file refuses only its tool; neither refusal charges anything.
func TestGateRateLimits(t *testing.T) {
	cfg := billConfig(t, map[string]any{
		"toolPricing": map[string]any{"test_simple_text": map[string]any{"rateLimitPerMin": 2}},
	})
	g := startGateway(t, "--server", everythingStdio(t), "--rate-limit", "3", "--config", cfg)

	t.Run("rate_limited", func(t *testing.T) {
		k := g.newBilledKey(100, nil)
		var first time.Time
		for i := 1; i <= 4; i++ {
			r, hdr := g.billCall(k.Secret, "test_image_content", nil)
			if i == 1 {
				first = time.Now()
			}
			if got := hdr.Get("X-RateLimit-Limit"); got != "3" {
				t.Errorf("call %d: X-RateLimit-Limit %q", i, got)
			}
			wantRemaining := max(3-i, 0)
			if got := hdr.Get("X-RateLimit-Remaining"); got != strconv.Itoa(wantRemaining) {
				t.Errorf("call %d: X-RateLimit-Remaining %q, want %d", i, got, wantRemaining)
			}
			reset, err := strconv.Atoi(hdr.Get("X-RateLimit-Reset"))
			// The window frees its first slot 60 s after the first call;
			// the header is the whole seconds until then, rounded up.
			elapsed := int(time.Since(first) / time.Second)
			if err != nil || reset > 60 || reset < 59-elapsed || (i == 1 && reset != 60) {
				t.Errorf("call %d: X-RateLimit-Reset %q", i, hdr.Get("X-RateLimit-Reset"))
			}
			if i <= 3 {
				billResult(t, "call "+strconv.Itoa(i), r)
				continue
			}
			d := billDenial(t, r)
			if d.Reason != "rate_limited" || d.RetryAfter == nil || *d.RetryAfter < 1 || *d.RetryAfter > 60 {
				t.Errorf("4th call: %+v", d)
			}
			if got := hdr.Get("X-Credits-Remaining"); got != "97" {
				t.Errorf("X-Credits-Remaining %q on the refusal, want 97", got)
			}
		}
		h := g.billCheckLedger(k.ID)
		if h.CurrentBalance != 97 || h.count("deduction") != 3 {
			t.Errorf("balance %d with %d charges, want 97 and 3", h.CurrentBalance, h.count("deduction"))
		}
		// Another key has its own window.
		other := g.newBilledKey(10, nil)
		r, hdr := g.billCall(other.Secret, "test_image_content", nil)
		billResult(t, "other key", r)
		if hdr.Get("X-RateLimit-Remaining") != "2" {
			t.Errorf("other key: X-RateLimit-Remaining %q", hdr.Get("X-RateLimit-Remaining"))
		}
	})
	t.Run("tool_rate_limited", func(t *testing.T) {
		k := g.newBilledKey(100, map[string]any{"rateLimitPerMin": 0})
		for i := range 2 {
			r, _ := g.billCall(k.Secret, "test_simple_text", nil)
			billResult(t, "call "+strconv.Itoa(i+1), r)
		}
		r, _ := g.billCall(k.Secret, "test_simple_text", nil)
		d := billDenial(t, r)
		if d.Reason != "tool_rate_limited" || d.RetryAfter == nil || *d.RemainingCredits != 98 {
			t.Errorf("3rd call: %+v (%s)", d, r.Error.Message)
		}
		// Other tools are not limited by it.
		for i := range 3 {
			r, _ := g.billCall(k.Secret, "test_image_content", nil)
			billResult(t, "other tool "+strconv.Itoa(i+1), r)
		}
		h := g.billCheckLedger(k.ID)
		if h.CurrentBalance != 95 || h.count("deduction") != 5 {
			t.Errorf("balance %d with %d charges, want 95 and 5", h.CurrentBalance, h.count("deduction"))
		}
	})
}

// TestGateGlobalQuota: globalQuota in the config file applies to keys
// without their own quota; a key's own quota replaces it.
func TestGateGlobalQuota(t *testing.T) {
	cfg := billConfig(t, map[string]any{"globalQuota": map[string]any{"dailyCallLimit": 2}})
	g := startGateway(t, "--server", everythingStdio(t), "--rate-limit", "0", "--config", cfg)
	k := g.newBilledKey(100, nil)
	for i := range 2 {
		r, _ := g.billCall(k.Secret, "test_simple_text", nil)
		billResult(t, "call "+strconv.Itoa(i+1), r)
	}
	r, _ := g.billCall(k.Secret, "test_simple_text", nil)
	if d := billDenial(t, r); d.Reason != "quota_exceeded" || !strings.Contains(r.Error.Message, "daily call limit 2") {
		t.Fatalf("3rd call: %+v %s", d, r.Error.Message)
	}
	// The key's own quota replaces the global one.
	g.billAdmin("POST", "/keys/quota", map[string]any{"key": k.ID, "dailyCallLimit": 3}, nil)
	r, _ = g.billCall(k.Secret, "test_simple_text", nil)
	billResult(t, "with the key's own quota", r)
	h := g.billCheckLedger(k.ID)
	if h.CurrentBalance != 97 || h.count("deduction") != 3 {
		t.Errorf("balance %d with %d charges", h.CurrentBalance, h.count("deduction"))
	}
}
