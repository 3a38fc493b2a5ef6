package admin

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

func TestTopUp(t *testing.T) {
	f := newFixture(t)
	id, _ := f.newKey(`{"name":"t","credits":100}`)
	m := mustStatus(t, f.post("/topup", `{"key":"`+id+`","credits":500,"memo":"march"}`), 200)
	if m["newBalance"] != 600.0 || m["creditsAdded"] != 500.0 || m["credits"] != 600.0 {
		t.Fatalf("topup = %v", m)
	}
	ev := f.audit("key.topup")
	if len(ev) != 1 || ev[0].Metadata["newBalance"] != 600.0 || ev[0].Metadata["creditsAdded"] != 500.0 {
		t.Fatalf("audit = %+v", ev)
	}
	tests := []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"zero", `{"key":"` + id + `","credits":0}`, 400, CodeBadRequest, "credits"},
		{"missing credits", `{"key":"` + id + `"}`, 400, CodeBadRequest, "credits"},
		{"negative", `{"key":"` + id + `","credits":-10}`, 400, CodeBadRequest, "credits"},
		{"fractional", `{"key":"` + id + `","credits":2.5}`, 400, CodeBadRequest, "credits"},
		{"string", `{"key":"` + id + `","credits":"100"}`, 400, CodeBadRequest, "credits"},
		{"exponent fraction", `{"key":"` + id + `","credits":1e-1}`, 400, CodeBadRequest, "credits"},
		{"over max", fmt.Sprintf(`{"key":"%s","credits":%d}`, id, credits.Max+1), 400, CodeBadRequest, "credits"},
		{"balance overflow", fmt.Sprintf(`{"key":"%s","credits":%d}`, id, credits.Max), 400, CodeBadRequest, "credits"},
		{"unknown key", `{"key":"key_ffffffffffffffff","credits":1}`, 404, CodeNotFound, "key"},
		{"key not a string", `{"key":7,"credits":1}`, 400, CodeBadRequest, "key"},
		{"unknown field", `{"key":"` + id + `","credits":1,"bonus":2}`, 400, CodeBadRequest, "bonus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			errBody(t, f.post("/topup", tc.body), tc.status, tc.code, tc.field)
			f.unchanged(before)
		})
	}
	// 1e3 is a whole number.
	mustStatus(t, f.post("/topup", `{"key":"`+id+`","credits":1e3}`), 200)
}

func TestTransfer(t *testing.T) {
	f := newFixture(t)
	a, _ := f.newKey(`{"name":"a","credits":1000,"alias":"src"}`)
	b, _ := f.newKey(`{"name":"b","credits":200}`)
	m := mustStatus(t, f.post("/keys/transfer", `{"from":"src","to":"`+b+`","credits":500,"memo":"Monthly allocation"}`), 200)
	from, to := m["from"].(map[string]any), m["to"].(map[string]any)
	if m["transferred"] != 500.0 || from["balance"] != 500.0 || to["balance"] != 700.0 || m["memo"] != "Monthly allocation" ||
		from["keyMasked"] == "" || m["message"] != "Transferred 500 credits" {
		t.Fatalf("transfer = %v", m)
	}
	es, _ := f.st.Entries(context.Background(), store.LedgerFilter{Kinds: []store.EntryKind{store.EntryTransferIn, store.EntryTransferOut}})
	if len(es) != 2 || es[0].Note != "Monthly allocation" || es[0].Actor == "" {
		t.Fatalf("ledger = %+v", es)
	}
	if ev := f.audit("credit.transfer"); len(ev) != 1 || ev[0].Metadata["toKeyId"] != b {
		t.Fatalf("audit = %+v", ev)
	}
	rev, _ := f.newKey(`{"name":"rev","credits":5}`)
	mustStatus(t, f.post("/keys/revoke", `{"key":"`+rev+`"}`), 200)
	exp, _ := f.newKey(`{"name":"exp","credits":5,"expiresIn":1}`)
	f.clock.Add(2 * time.Second)
	tests := []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"insufficient", `{"from":"` + a + `","to":"` + b + `","credits":501}`, 400, CodeBadRequest, "credits"},
		{"self", `{"from":"` + a + `","to":"src","credits":1}`, 400, CodeBadRequest, "to"},
		{"zero", `{"from":"` + a + `","to":"` + b + `","credits":0}`, 400, CodeBadRequest, "credits"},
		{"fraction", `{"from":"` + a + `","to":"` + b + `","credits":0.5}`, 400, CodeBadRequest, "credits"},
		{"unknown from", `{"from":"ghost","to":"` + b + `","credits":1}`, 404, CodeNotFound, "from"},
		{"unknown to", `{"from":"` + a + `","to":"ghost","credits":1}`, 404, CodeNotFound, "to"},
		{"missing to", `{"from":"` + a + `","credits":1}`, 400, CodeBadRequest, "to"},
		{"revoked to", `{"from":"` + a + `","to":"` + rev + `","credits":1}`, 409, CodeConflict, "to"},
		{"expired from", `{"from":"` + exp + `","to":"` + b + `","credits":1}`, 409, CodeConflict, "from"},
		{"memo too long", `{"from":"` + a + `","to":"` + b + `","credits":1,"memo":"` + longText(501) + `"}`, 400, CodeBadRequest, "memo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			errBody(t, f.post("/keys/transfer", tc.body), tc.status, tc.code, tc.field)
			f.unchanged(before)
		})
	}
}

func longText(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'm'
	}
	return string(b)
}

// TestTransferConcurrent moves credits back and forth from many
// goroutines: no transfer overdraws, and the total is conserved.
func TestTransferConcurrent(t *testing.T) {
	f := newFixture(t)
	a, _ := f.newKey(`{"name":"a","credits":100}`)
	b, _ := f.newKey(`{"name":"b","credits":100}`)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := a, b
			if i%2 == 1 {
				from, to = b, a
			}
			for range 10 {
				r := f.post("/keys/transfer", `{"from":"`+from+`","to":"`+to+`","credits":30}`)
				if r.status != 200 && r.status != 400 {
					t.Errorf("transfer: %d %s", r.status, r.body)
				}
			}
		}()
	}
	wg.Wait()
	ctx := context.Background()
	aa, _ := f.st.Account(ctx, a)
	ab, _ := f.st.Account(ctx, b)
	if aa.Balance+ab.Balance != 200 || aa.Balance < 0 || ab.Balance < 0 {
		t.Fatalf("balances %d + %d", aa.Balance, ab.Balance)
	}
}

func TestCreditHistory(t *testing.T) {
	f := newFixture(t)
	a, _ := f.newKey(`{"name":"h","credits":500}`)
	b, _ := f.newKey(`{"name":"other","credits":0}`)
	f.clock.Add(time.Minute)
	mustStatus(t, f.post("/topup", `{"key":"`+a+`","credits":200}`), 200)
	f.clock.Add(time.Minute)
	mustStatus(t, f.post("/keys/transfer", `{"from":"`+a+`","to":"`+b+`","credits":100,"memo":"share"}`), 200)
	if _, err := f.st.Reserve(context.Background(), store.Reservation{KeyID: a, CallID: "call-1",
		Items: []store.Item{{Tool: "search", Amount: 7}}, Now: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	m := mustStatus(t, f.get("/keys/credit-history?key="+a), 200)
	if m["currentBalance"] != 593.0 || m["totalEntries"] != 4.0 {
		t.Fatalf("history = %v", m)
	}
	es := m["entries"].([]any)
	var types []string
	for _, e := range es {
		em := e.(map[string]any)
		types = append(types, em["type"].(string))
		if em["balanceAfter"].(float64)-em["balanceBefore"].(float64) != em["amount"].(float64) {
			t.Errorf("entry arithmetic: %v", em)
		}
	}
	if fmt.Sprint(types) != "[deduction transfer_out topup initial]" {
		t.Fatalf("types newest first = %v", types)
	}
	if e := es[1].(map[string]any); e["memo"] != "share" || e["counterparty"] != b || e["amount"] != -100.0 {
		t.Fatalf("transfer entry = %v", e)
	}
	m = mustStatus(t, f.get("/keys/credit-history?key="+a+"&type=topup"), 200)
	if m["totalEntries"] != 1.0 {
		t.Fatalf("type filter = %v", m)
	}
	m = mustStatus(t, f.get("/keys/credit-history?key="+a+"&limit=2"), 200)
	if m["totalEntries"] != 2.0 {
		t.Fatalf("limit = %v", m)
	}
	m = mustStatus(t, f.get("/keys/credit-history?key="+a+"&since=2026-03-14T12:01:30Z"), 200)
	if m["totalEntries"] != 2.0 {
		t.Fatalf("since = %v", m)
	}
	errBody(t, f.get("/keys/credit-history?key="+a+"&type=gift"), 400, CodeBadRequest, "type")
	errBody(t, f.get("/keys/credit-history?key="+a+"&limit=0"), 400, CodeBadRequest, "limit")
	errBody(t, f.get("/keys/credit-history?key="+a+"&since=yesterday"), 400, CodeBadRequest, "since")
	errBody(t, f.get("/keys/credit-history?key=ghost"), 404, CodeNotFound, "key")
}
