package gate

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/store"
)

func TestReasonTable(t *testing.T) {
	tests := []struct {
		reason Reason
		code   int64
		status int
	}{
		{MissingAPIKey, -32402, 401},
		{InvalidAPIKey, -32402, 401},
		{APIKeyExpired, -32402, 401},
		{KeySuspended, -32402, 403},
		{IPNotAllowed, -32402, 403},
		{ToolNotAllowed, -32402, 403},
		{RateLimited, -32402, 429},
		{ToolRateLimited, -32402, 429},
		{ConcurrencyLimited, mcp.CodeConcurrencyLimited, 429},
		{SpendingLimitExceeded, -32402, 402},
		{QuotaExceeded, -32402, 402},
		{InsufficientCredits, -32402, 402},
		{MaintenanceMode, -32402, 503},
		{StoreUnavailable, mcp.CodeServiceUnavailable, 503},
	}
	var want []Reason
	for _, tc := range tests {
		want = append(want, tc.reason)
		t.Run(string(tc.reason), func(t *testing.T) {
			if got := tc.reason.RPCCode(); got != tc.code {
				t.Errorf("RPCCode = %d, want %d", got, tc.code)
			}
			if got := tc.reason.HTTPStatus(); got != tc.status {
				t.Errorf("HTTPStatus = %d, want %d", got, tc.status)
			}
			if got := tc.reason.MetricLabel(); got != string(tc.reason) {
				t.Errorf("MetricLabel = %q", got)
			}
		})
	}
	if got := Reasons(); !slices.Equal(got, want) {
		t.Fatalf("Reasons() = %v\nwant %v", got, want)
	}
	t.Run("unknown", func(t *testing.T) {
		r := Reason("bogus")
		if r.RPCCode() != mcp.CodeInternalError || r.HTTPStatus() != 500 || r.MetricLabel() != "unknown" {
			t.Fatal("unknown reason not mapped to an internal error")
		}
	})
}

func TestErrorFor(t *testing.T) {
	tests := []struct {
		name     string
		d        *Denial
		pricing  string
		wantCode int64
		wantMsg  string
		wantData string
	}{
		{"insufficient credits",
			&Denial{Reason: InsufficientCredits, Detail: "need 5, have 2", Required: 5, Remaining: 2},
			"/pricing", -32402, "Payment required: insufficient_credits: need 5, have 2",
			`{"reason":"insufficient_credits","creditsRequired":5,"remainingCredits":2,"pricingUrl":"/pricing"}`},
		{"no detail",
			&Denial{Reason: MissingAPIKey},
			"/pricing", -32402, "Payment required: missing_api_key",
			`{"reason":"missing_api_key","creditsRequired":0,"remainingCredits":0,"pricingUrl":"/pricing"}`},
		{"rate limit rounds retryAfter up",
			&Denial{Reason: RateLimited, Detail: "60 calls/min", Required: 1, Remaining: 50, RetryAfter: 1200 * time.Millisecond},
			"https://gw.example/pricing", -32402, "Payment required: rate_limited: 60 calls/min",
			`{"reason":"rate_limited","creditsRequired":1,"remainingCredits":50,"pricingUrl":"https://gw.example/pricing","retryAfter":2}`},
		{"quota whole seconds",
			&Denial{Reason: QuotaExceeded, RetryAfter: 12 * time.Hour},
			"/pricing", -32402, "Payment required: quota_exceeded",
			`{"reason":"quota_exceeded","creditsRequired":0,"remainingCredits":0,"pricingUrl":"/pricing","retryAfter":43200}`},
		{"batch item",
			&Denial{Reason: ToolNotAllowed, Detail: "x is in the key's deniedTools", Batch: true, Index: 3},
			"/pricing", -32402, "Payment required: tool_not_allowed: x is in the key's deniedTools",
			`{"reason":"tool_not_allowed","creditsRequired":0,"remainingCredits":0,"pricingUrl":"/pricing","failedIndex":3}`},
		{"batch-wide check reports index 0",
			&Denial{Reason: InsufficientCredits, Detail: "need 10, have 9", Required: 10, Remaining: 9, Batch: true},
			"/pricing", -32402, "Payment required: insufficient_credits: need 10, have 9",
			`{"reason":"insufficient_credits","creditsRequired":10,"remainingCredits":9,"pricingUrl":"/pricing","failedIndex":0}`},
		{"no pricing url",
			&Denial{Reason: KeySuspended},
			"", -32402, "Payment required: key_suspended",
			`{"reason":"key_suspended","creditsRequired":0,"remainingCredits":0}`},
		{"store unavailable",
			&Denial{Reason: StoreUnavailable, Detail: "retry later", RetryAfter: time.Second},
			"/pricing", mcp.CodeServiceUnavailable, "Service unavailable: store_unavailable: retry later",
			`{"reason":"store_unavailable","creditsRequired":0,"remainingCredits":0,"pricingUrl":"/pricing","retryAfter":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			we := ErrorFor(tc.d, tc.pricing)
			if we.Code != tc.wantCode || we.Message != tc.wantMsg || string(we.Data) != tc.wantData {
				t.Fatalf("ErrorFor =\n %d %q %s\nwant\n %d %q %s", we.Code, we.Message, we.Data, tc.wantCode, tc.wantMsg, tc.wantData)
			}
			// It encodes as a valid JSON-RPC error response.
			var resp struct {
				Error struct {
					Code int64           `json:"code"`
					Data json.RawMessage `json:"data"`
				} `json:"error"`
			}
			if err := json.Unmarshal(mcp.AppendError(nil, mcp.Int64ID(1), we), &resp); err != nil || resp.Error.Code != tc.wantCode {
				t.Fatalf("encoded response: %v %+v", err, resp)
			}
		})
	}
	if we := ErrorFor(nil, "/pricing"); we.Code != mcp.CodeInternalError {
		t.Fatalf("nil denial: %+v", we)
	}
}

func TestFromLimitError(t *testing.T) {
	tests := []struct {
		name string
		e    *store.LimitError
		want *Denial
	}{
		{"insufficient", &store.LimitError{Kind: store.ErrInsufficientCredits, Need: 5, Have: 2},
			&Denial{Reason: InsufficientCredits, Detail: "need 5, have 2", Required: 5, Remaining: 2, Check: "reserve"}},
		{"spending", &store.LimitError{Kind: store.ErrSpendingLimit, Need: 5, Have: 3, Detail: "limit 100, spent 97"},
			&Denial{Reason: SpendingLimitExceeded, Detail: "limit 100, spent 97", Required: 5, Check: "reserve"}},
		{"quota", &store.LimitError{Kind: store.ErrQuotaExceeded, Need: 1, Detail: "daily call quota 10 reached"},
			&Denial{Reason: QuotaExceeded, Detail: "daily call quota 10 reached", Required: 1, Check: "reserve"}},
		{"unknown kind", &store.LimitError{Kind: store.ErrConflict}, nil},
		{"nil", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FromLimitError(tc.e)
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("FromLimitError = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestPrecheckAndReserveAgree checks that a denial from the pre-check and
// the same refusal from the store read alike to the client.
func TestPrecheckAndReserveAgree(t *testing.T) {
	pre := &Denial{Reason: InsufficientCredits, Detail: insufficientDetail(5, 2), Required: 5, Remaining: 2}
	post := FromLimitError(&store.LimitError{Kind: store.ErrInsufficientCredits, Need: 5, Have: 2})
	a, b := ErrorFor(pre, "/pricing"), ErrorFor(post, "/pricing")
	if a.Message != b.Message || string(a.Data) != string(b.Data) {
		t.Fatalf("pre-check %q %s\nreserve   %q %s", a.Message, a.Data, b.Message, b.Data)
	}
}
