package admin

import (
	"fmt"
	"strings"
	"testing"
)

func TestKeyConfig(t *testing.T) {
	f := newFixture(t)
	id, _ := f.newKey(`{"name":"cfg","credits":10,"allowedTools":["a"],"quota":{"dailyCallLimit":5},"tags":{"keep":"1","drop":"2"}}`)
	f.newKey(`{"name":"other","alias":"taken"}`)
	key := `"key":"` + id + `"`
	tests := []struct {
		name, path, body string
		check            map[string]string // response member -> fmt.Sprint of the value
		event            string
	}{
		{"acl both", "/keys/acl", `{` + key + `,"allowedTools":["search","fs:*"],"deniedTools":["rm"]}`,
			map[string]string{"allowedTools": "[search fs:*]", "deniedTools": "[rm]"}, "key.acl_updated"},
		{"acl keeps absent list", "/keys/acl", `{` + key + `,"deniedTools":[]}`,
			map[string]string{"allowedTools": "[search fs:*]", "deniedTools": "[]"}, "key.acl_updated"},
		{"acl null clears", "/keys/acl", `{` + key + `,"allowedTools":null}`,
			map[string]string{"allowedTools": "[]"}, "key.acl_updated"},
		{"expiry in", "/keys/expiry", `{` + key + `,"expiresIn":86400}`,
			map[string]string{"expiresAt": "2026-03-15T12:00:00.000Z"}, "key.expiry_updated"},
		{"expiry at", "/keys/expiry", `{` + key + `,"expiresAt":"2027-01-01T00:00:00Z"}`,
			map[string]string{"expiresAt": "2027-01-01T00:00:00.000Z"}, "key.expiry_updated"},
		{"expiry removed by null", "/keys/expiry", `{` + key + `,"expiresAt":null}`,
			map[string]string{"expiresAt": "<nil>"}, "key.expiry_updated"},
		{"quota merge", "/keys/quota", `{` + key + `,"dailyCreditLimit":50}`,
			map[string]string{"quota": "map[dailyCallLimit:5 dailyCreditLimit:50 monthlyCallLimit:0 monthlyCreditLimit:0]"}, "key.quota_updated"},
		{"quota remove", "/keys/quota", `{` + key + `,"remove":true}`,
			map[string]string{"quota": "<nil>"}, "key.quota_updated"},
		{"spending limit", "/limits", `{` + key + `,"spendingLimit":500}`,
			map[string]string{"spendingLimit": "500", "remainingBudget": "500"}, "key.limit_updated"},
		{"spending limit off", "/limits", `{` + key + `,"spendingLimit":0}`,
			map[string]string{"spendingLimit": "0", "remainingBudget": "<nil>"}, "key.limit_updated"},
		{"tags merge", "/keys/tags", `{` + key + `,"tags":{"drop":null,"new":"x","keep":"1b"}}`,
			map[string]string{"tags": "map[keep:1b new:x]"}, "key.tags_updated"},
		{"ip", "/keys/ip", `{` + key + `,"ipAllowlist":["192.168.0.0/16","::1"]}`,
			map[string]string{"ipAllowlist": "[192.168.0.0/16 ::1]"}, "key.ip_updated"},
		{"ip clear", "/keys/ip", `{` + key + `,"ipAllowlist":[]}`,
			map[string]string{"ipAllowlist": "[]"}, "key.ip_updated"},
		{"alias set", "/keys/alias", `{` + key + `,"alias":"prod-backend"}`,
			map[string]string{"alias": "prod-backend"}, "key.alias_updated"},
		{"alias used", "/keys/tags", `{"key":"prod-backend","tags":{"via":"alias"}}`,
			map[string]string{"tags": "map[keep:1b new:x via:alias]"}, "key.tags_updated"},
		{"alias clear", "/keys/alias", `{"key":"prod-backend","alias":null}`,
			map[string]string{"alias": "<nil>"}, "key.alias_updated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := len(f.audit(tc.event))
			m := mustStatus(t, f.post(tc.path, tc.body), 200)
			for k, want := range tc.check {
				if got := fmt.Sprint(m[k]); got != want {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
			if m["id"] != id || m["message"] == "" {
				t.Errorf("response = %v", m)
			}
			if len(f.audit(tc.event)) != n+1 {
				t.Errorf("no %s event", tc.event)
			}
		})
	}
}

func TestKeyConfigRefusals(t *testing.T) {
	f := newFixture(t)
	id, _ := f.newKey(`{"name":"cfg","credits":10,"tags":{` + manyTags(50) + `}}`)
	f.newKey(`{"name":"other","alias":"taken"}`)
	key := `"key":"` + id + `"`
	tests := []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"acl nothing", "/keys/acl", `{` + key + `}`, 400, ""},
		{"acl bad pattern", "/keys/acl", `{` + key + `,"allowedTools":["*x"]}`, 400, "allowedTools[0]"},
		{"acl wrong type", "/keys/acl", `{` + key + `,"deniedTools":[1]}`, 400, "deniedTools"},
		{"expiry nothing", "/keys/expiry", `{` + key + `}`, 400, ""},
		{"expiry zero", "/keys/expiry", `{` + key + `,"expiresIn":0}`, 400, "expiresIn"},
		{"expiry fraction", "/keys/expiry", `{` + key + `,"expiresIn":1.5}`, 400, "expiresIn"},
		{"expiry past", "/keys/expiry", `{` + key + `,"expiresAt":"2020-01-01T00:00:00Z"}`, 400, "expiresAt"},
		{"expiry remove and set", "/keys/expiry", `{` + key + `,"remove":true,"expiresIn":5}`, 400, ""},
		{"quota nothing", "/keys/quota", `{` + key + `}`, 400, ""},
		{"quota negative", "/keys/quota", `{` + key + `,"monthlyCallLimit":-3}`, 400, "monthlyCallLimit"},
		{"quota string", "/keys/quota", `{` + key + `,"dailyCreditLimit":"5"}`, 400, "dailyCreditLimit"},
		{"quota remove and set", "/keys/quota", `{` + key + `,"remove":true,"dailyCallLimit":1}`, 400, ""},
		{"quota remove not bool", "/keys/quota", `{` + key + `,"remove":"yes"}`, 400, "remove"},
		{"limit missing", "/limits", `{` + key + `}`, 400, "spendingLimit"},
		{"limit negative", "/limits", `{` + key + `,"spendingLimit":-1}`, 400, "spendingLimit"},
		{"tags missing", "/keys/tags", `{` + key + `}`, 400, "tags"},
		{"tags overflow", "/keys/tags", `{` + key + `,"tags":{"one-more":"x"}}`, 400, "tags"},
		{"tag value too long", "/keys/tags", `{` + key + `,"tags":{"a":"` + strings.Repeat("v", 501) + `"}}`, 400, "tags.a"},
		{"ip missing", "/keys/ip", `{` + key + `}`, 400, "ipAllowlist"},
		{"ip bad", "/keys/ip", `{` + key + `,"ipAllowlist":["1.2.3.4","nope"]}`, 400, "ipAllowlist[1]"},
		{"ip zone", "/keys/ip", `{` + key + `,"ipAllowlist":["fe80::1%eth0"]}`, 400, "ipAllowlist[0]"},
		{"alias missing", "/keys/alias", `{` + key + `}`, 400, "alias"},
		{"alias conflict", "/keys/alias", `{` + key + `,"alias":"taken"}`, 409, "alias"},
		{"alias bad", "/keys/alias", `{` + key + `,"alias":"a/b"}`, 400, "alias"},
		{"alias reserved", "/keys/alias", `{` + key + `,"alias":"pg_x"}`, 400, "alias"},
		{"unknown key", "/keys/acl", `{"key":"ghost","allowedTools":[]}`, 404, "key"},
		{"unknown field", "/keys/tags", `{` + key + `,"tags":{},"label":"x"}`, 400, "label"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			r := f.post(tc.path, tc.body)
			code := map[int]string{400: CodeBadRequest, 404: CodeNotFound, 409: CodeConflict}[tc.status]
			errBody(t, r, tc.status, code, tc.field)
			f.unchanged(before)
		})
	}
}
