package admin

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/store"
)

func TestBulk(t *testing.T) {
	f := newFixture(t)
	existing, _ := f.newKey(`{"name":"existing","credits":500}`)
	old, _ := f.newKey(`{"name":"old","credits":1}`)
	susp, _ := f.newKey(`{"name":"susp"}`)
	mustStatus(t, f.post("/keys/suspend", `{"key":"`+susp+`"}`), 200)
	body := `{"operations":[
		{"action":"create","name":"api-key-1","credits":500,"tags":{"env":"prod"}},
		{"action":"create","name":"api-key-2","credits":-1},
		{"action":"topup","key":"` + existing + `","credits":1000},
		{"action":"revoke","key":"` + old + `"},
		{"action":"explode","key":"` + old + `"},
		{"action":"topup","key":"ghost","credits":1},
		{"action":"resume","key":"` + susp + `"},
		{"action":"suspend","key":"` + existing + `","reason":"bulk"},
		{"action":"revoke","key":"` + old + `"},
		{"action":"topup","key":"` + existing + `","credits":1,"name":"x"},
		{"action":"create","name":"api-key-3","autoTopup":{"threshold":1}}
	]}`
	m := mustStatus(t, f.post("/keys/bulk", body), 200)
	if m["total"] != 11.0 || m["succeeded"] != 6.0 || m["failed"] != 5.0 {
		t.Fatalf("bulk = %v", m)
	}
	results := m["results"].([]any)
	wantOK := []bool{true, false, true, true, false, false, true, true, false, false, true}
	wantField := map[int]string{1: "operations[1].credits", 4: "operations[4].action", 5: "operations[5].key",
		8: "operations[8].key", 9: "operations[9].name"}
	for i, r := range results {
		rm := r.(map[string]any)
		if rm["index"] != float64(i) || rm["success"] != wantOK[i] {
			t.Errorf("result %d = %v", i, rm)
		}
		if f, ok := wantField[i]; ok && rm["field"] != f {
			t.Errorf("result %d field = %v, want %s", i, rm["field"], f)
		}
	}
	created := results[0].(map[string]any)["result"].(map[string]any)
	if !secretRE.MatchString(created["key"].(string)) || created["credits"] != 500.0 {
		t.Fatalf("create result = %v", created)
	}
	if top := results[2].(map[string]any)["result"].(map[string]any); top["newBalance"] != 1500.0 || top["creditsAdded"] != 1000.0 {
		t.Fatalf("topup result = %v", top)
	}
	if fmt.Sprint(m["ignored"]) != "[operations[10].autoTopup]" {
		t.Fatalf("ignored = %v", m["ignored"])
	}
	// The failed operations left nothing behind: 3 keys before, plus 2 created.
	vs, _, _ := f.st.ListKeys(context.Background(), store.KeyFilter{})
	if len(vs) != 5 {
		t.Fatalf("%d keys", len(vs))
	}
	acct, _ := f.st.Account(context.Background(), existing)
	if acct.Balance != 1500 {
		t.Fatalf("existing balance %d (the topup with a stray field must not run)", acct.Balance)
	}
	for _, ev := range f.audit("key.created") {
		if ev.Metadata["name"] == "api-key-1" && ev.Metadata["bulk"] != true {
			t.Errorf("bulk create not marked: %+v", ev)
		}
	}
	if ev := f.audit("key.topup"); len(ev) != 1 || ev[0].Metadata["bulk"] != true {
		t.Errorf("topup audit = %+v", ev)
	}
}

func TestBulkRefusals(t *testing.T) {
	f := newFixture(t)
	id, _ := f.newKey(`{"name":"k","credits":1}`)
	ops := make([]string, 101)
	for i := range ops {
		ops[i] = `{"action":"topup","key":"` + id + `","credits":1}`
	}
	tests := []struct {
		name, body string
		field      string
	}{
		{"too many", `{"operations":[` + strings.Join(ops, ",") + `]}`, "operations"},
		{"empty", `{"operations":[]}`, "operations"},
		{"missing", `{}`, "operations"},
		{"not an array", `{"operations":{}}`, "operations"},
		{"unknown field", `{"operations":[],"dryRun":true}`, "dryRun"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			errBody(t, f.post("/keys/bulk", tc.body), 400, CodeBadRequest, tc.field)
			f.unchanged(before)
		})
	}
	// Exactly 100 is fine.
	m := mustStatus(t, f.post("/keys/bulk", `{"operations":[`+strings.Join(ops[:100], ",")+`]}`), 200)
	if m["succeeded"] != 100.0 {
		t.Fatalf("bulk of 100 = %v", m["succeeded"])
	}
	acct, _ := f.st.Account(context.Background(), id)
	if acct.Balance != 101 {
		t.Fatalf("balance %d", acct.Balance)
	}
}
