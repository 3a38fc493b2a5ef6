package sqlite

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
)

func TestUsageRecRoundTrip(t *testing.T) {
	for _, u := range []store.UsageRecord{
		{Allowed: true},
		{KeyMask: "pg_abcd...wxyz", Namespace: "acme", Method: "tools/call", Tool: `we"ird\tool`, Allowed: false,
			Reason: "insufficient_credits", Credits: 42, Refunded: true, Outcome: "ok", Duration: 1500 * time.Microsecond,
			RequestID: "req_0123", CallID: "call_x", ClientIP: "::1"},
		{Tool: "héllo ✓", Reason: "shadow:\x01ctl", RequestID: "bad\xffutf8"},
		{Credits: -5, Duration: -1},
	} {
		b := appendUsageRec(nil, &u)
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %s", b)
		}
		var got store.UsageRecord
		if err := decodeUsageRec(b, &got); err != nil {
			t.Fatal(err)
		}
		want := u
		if want.RequestID == "bad\xffutf8" {
			want.RequestID = "bad\ufffdutf8" // invalid UTF-8 is replaced, as encoding/json does
		}
		if got != want {
			t.Fatalf("round trip of %s:\n got %+v\nwant %+v", b, got, want)
		}
	}
}

func BenchmarkAppendUsageRec(b *testing.B) {
	u := store.UsageRecord{KeyMask: "pg_abcd...wxyz", Namespace: "default", Method: "tools/call", Tool: "echo", Allowed: true,
		Credits: 1, Outcome: "ok", Duration: time.Millisecond, RequestID: "req_0123456789abcdef", CallID: "call_0123456789abcdef_1", ClientIP: "127.0.0.1"}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendUsageRec(buf[:0], &u)
	}
}
