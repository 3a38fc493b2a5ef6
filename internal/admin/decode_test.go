package admin

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/credits"
)

type decodeTarget struct {
	Name    string             `json:"name"`
	Credits credits.Amount     `json:"credits"`
	Count   *count             `json:"count"`
	List    []string           `json:"list"`
	Tags    map[string]*string `json:"tags"`
	On      bool               `json:"on"`
	Quota   *quotaSpec         `json:"quota"`
	Items   []decodeItem       `json:"items"`
	Set     fieldSet           `json:"-"`
}

type decodeItem struct {
	N count `json:"n"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, in    string
		field, msg  string // expected error; "" for success
		check       func(*decodeTarget) string
		wantIgnored string
	}{
		{name: "empty body is an empty object", in: ``},
		{name: "ignored fields", in: `{"autoTopup":{},"quota":{"teamId":"t"}}`, wantIgnored: "[autoTopup quota.teamId]"},
		{name: "syntax", in: `{"name":"a",}`, msg: "invalid JSON"},
		{name: "not an object", in: `"x"`, msg: "must be a JSON object"},
		{name: "unknown", in: `{"nam":"a"}`, field: "nam", msg: "unknown field"},
		{name: "string for number", in: `{"credits":"1"}`, field: "credits", msg: "must be a whole number"},
		{name: "negative", in: `{"count":-2}`, field: "count", msg: "must not be negative"},
		{name: "fraction", in: `{"credits":0.25}`, field: "credits", msg: "must be a whole number"},
		{name: "too large", in: `{"credits":1e300}`, field: "credits", msg: "must be at most"},
		{name: "number for string", in: `{"name":1}`, field: "name", msg: "must be a string"},
		{name: "bool", in: `{"on":"true"}`, field: "on", msg: "must be a boolean"},
		{name: "list element", in: `{"list":["a",2]}`, field: "list", msg: "must be an array of strings"},
		{name: "map member", in: `{"tags":{"env":[]}}`, field: "tags.env", msg: "must be a string"},
		{name: "nested", in: `{"quota":{"dailyCallLimit":"x"}}`, field: "quota.dailyCallLimit", msg: "whole number"},
		{name: "nested unknown", in: `{"quota":{"x":1}}`, field: "quota.x", msg: "unknown field"},
		{name: "array of objects", in: `{"items":[{"n":1},{"n":-1}]}`, field: "items[1].n", msg: "negative"},
		{name: "array of objects wrong", in: `{"items":{}}`, field: "items", msg: "array of objects"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d decodeTarget
			ignored, err := decodeJSON([]byte(tc.in), &d, "")
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				if tc.wantIgnored != "" && fmt.Sprint(ignored) != tc.wantIgnored {
					t.Fatalf("ignored = %v", ignored)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadRequest || e.Field != tc.field || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("error = %#v, want field %q message containing %q", err, tc.field, tc.msg)
			}
			if tc.field != "" && !strings.HasPrefix(e.Message, tc.field+": ") {
				t.Fatalf("message %q does not name the field", e.Message)
			}
		})
	}
	var d decodeTarget
	if _, err := decodeJSON([]byte(`{"credits":1e3,"count":2.0}`), &d, ""); err != nil || d.Credits != 1000 || *d.Count != 2 {
		t.Fatalf("whole numbers: %v %v", d, err)
	}
	d = decodeTarget{}
	if _, err := decodeJSON([]byte(`{"name":null,"tags":{"a":null,"b":"x"}}`), &d, ""); err != nil ||
		!d.Set.has("name") || !d.Set.null("name") || d.Set.has("list") || d.Tags["a"] != nil || *d.Tags["b"] != "x" {
		t.Fatalf("presence: %+v %v", d, err)
	}
}

func TestCSVText(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+x": "'+x", "-2": "'-2", "@SUM": "'@SUM", "\tx": "'\tx", "ok": "ok", "": ""} {
		if got := csvText(in); got != want {
			t.Errorf("csvText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCloneName(t *testing.T) {
	if got := cloneName(strings.Repeat("é", 200)); len([]rune(got)) != 200 || !strings.HasSuffix(got, "-clone") {
		t.Fatalf("cloneName = %q", got)
	}
	if cloneName("") != "clone" || cloneName("a") != "a-clone" {
		t.Fatal("cloneName short")
	}
}
