package sqlite

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/paygate/paygate/internal/store"
)

// usageRec is the JSON document in a usage row's rec column: everything
// but the indexed time and key id. Short names keep rows small; empty
// members are left out.
type usageRec struct {
	KeyMask   string `json:"mask,omitempty"`
	Namespace string `json:"ns,omitempty"`
	Method    string `json:"m,omitempty"`
	Tool      string `json:"tool,omitempty"`
	Allowed   bool   `json:"ok"`
	Reason    string `json:"reason,omitempty"`
	Credits   int64  `json:"cr,omitempty"`
	Refunded  bool   `json:"ref,omitempty"`
	Outcome   string `json:"out,omitempty"`
	Duration  int64  `json:"dur,omitempty"` // nanoseconds
	RequestID string `json:"req,omitempty"`
	CallID    string `json:"call,omitempty"`
	ClientIP  string `json:"ip,omitempty"`
}

// appendUsageRec appends u's rec document to b. It is written by hand
// (this runs for every gate decision) and read back with encoding/json.
func appendUsageRec(b []byte, u *store.UsageRecord) []byte {
	b = append(b, '{')
	b = appendStr(b, "mask", u.KeyMask)
	b = appendStr(b, "ns", u.Namespace)
	b = appendStr(b, "m", u.Method)
	b = appendStr(b, "tool", u.Tool)
	b = append(b, `"ok":`...)
	b = strconv.AppendBool(b, u.Allowed)
	b = append(b, ',')
	b = appendStr(b, "reason", u.Reason)
	if u.Credits != 0 {
		b = append(b, `"cr":`...)
		b = strconv.AppendInt(b, u.Credits, 10)
		b = append(b, ',')
	}
	if u.Refunded {
		b = append(b, `"ref":true,`...)
	}
	b = appendStr(b, "out", u.Outcome)
	if u.Duration != 0 {
		b = append(b, `"dur":`...)
		b = strconv.AppendInt(b, int64(u.Duration), 10)
		b = append(b, ',')
	}
	b = appendStr(b, "req", u.RequestID)
	b = appendStr(b, "call", u.CallID)
	b = appendStr(b, "ip", u.ClientIP)
	b[len(b)-1] = '}' // the last member's comma ("ok" is always there)
	return b
}

// appendStr appends "name":"value", (nothing for an empty value).
func appendStr(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":`...)
	b = appendJSONString(b, v)
	return append(b, ',')
}

// appendJSONString appends v as a JSON string. Plain ASCII (ids, tool
// names, addresses) is copied; anything else goes through encoding/json,
// which also replaces invalid UTF-8.
func appendJSONString(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(v)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

// decodeUsageRec fills u from a rec document.
func decodeUsageRec(rec []byte, u *store.UsageRecord) error {
	var r usageRec
	if err := json.Unmarshal(rec, &r); err != nil {
		return err
	}
	u.KeyMask, u.Namespace, u.Method, u.Tool = r.KeyMask, r.Namespace, r.Method, r.Tool
	u.Allowed, u.Reason, u.Credits, u.Refunded, u.Outcome = r.Allowed, r.Reason, r.Credits, r.Refunded, r.Outcome
	u.Duration, u.RequestID, u.CallID, u.ClientIP = time.Duration(r.Duration), r.RequestID, r.CallID, r.ClientIP
	return nil
}
