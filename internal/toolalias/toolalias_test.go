package toolalias

import (
	"errors"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		list []Alias
		want error // nil, a sentinel, or errAny
	}{
		{"empty set", nil, nil},
		{"one alias", []Alias{{From: "old", To: "new"}}, nil},
		{"two aliases to one tool", []Alias{{From: "a", To: "new"}, {From: "b", To: "new"}}, nil},
		{"empty from", []Alias{{From: " ", To: "new"}}, ErrEmpty},
		{"empty to", []Alias{{From: "old"}}, ErrEmpty},
		{"to itself", []Alias{{From: "old", To: "old"}}, ErrChain},
		{"chain", []Alias{{From: "a", To: "b"}, {From: "b", To: "c"}}, ErrChain},
		{"chain listed backwards", []Alias{{From: "b", To: "c"}, {From: "a", To: "b"}}, ErrChain},
		{"loop", []Alias{{From: "a", To: "b"}, {From: "b", To: "a"}}, ErrChain},
		{"duplicate", []Alias{{From: "a", To: "b"}, {From: "a", To: "c"}}, errAny},
		{"bad link", []Alias{{From: "a", To: "b", Link: "ftp://x"}}, ErrLink},
		{"good link", []Alias{{From: "a", To: "b", Link: "https://docs.example.com/deprecations"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.list)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("Validate = %v", err)
			case tc.want == errAny && err == nil:
				t.Fatal("Validate accepted it")
			case tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestTable(t *testing.T) {
	var tab Table
	if tab.Active() || tab.Resolve("old") != nil || len(tab.List()) != 0 {
		t.Fatal("the zero table has aliases")
	}
	sunset := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := tab.Replace([]Alias{{From: "old", To: "new", Sunset: sunset}}); err != nil {
		t.Fatal(err)
	}
	e := tab.Resolve("old")
	if e == nil || e.To != "new" || e.SunsetHeader != "Fri, 01 Jan 2027 00:00:00 GMT" {
		t.Fatalf("resolved %+v", e)
	}
	e.Hit()
	e.Hit()

	// Set keeps counts; a chain is refused and changes nothing.
	if err := tab.Set(Alias{From: "older", To: "new"}); err != nil {
		t.Fatal(err)
	}
	if err := tab.Set(Alias{From: "new", To: "newest"}); !errors.Is(err, ErrChain) {
		t.Fatalf("chain: %v", err)
	}
	if err := tab.Set(Alias{From: "x", To: "old"}); !errors.Is(err, ErrChain) {
		t.Fatalf("alias to an alias: %v", err)
	}
	list := tab.List()
	if len(list) != 2 || list[0].From != "old" || list[0].Calls != 2 || list[1].From != "older" || list[1].Calls != 0 {
		t.Fatalf("list %+v", list)
	}

	// Replace keeps the counts of aliases that stay.
	if err := tab.Replace([]Alias{{From: "old", To: "renamed"}}); err != nil {
		t.Fatal(err)
	}
	if l := tab.List(); len(l) != 1 || l[0].To != "renamed" || l[0].Calls != 2 {
		t.Fatalf("after replace %+v", l)
	}
	if tab.Delete("nope") || !tab.Delete("old") || tab.Active() {
		t.Fatal("delete")
	}
}

func BenchmarkResolve(b *testing.B) {
	var none, some Table
	_ = some.Replace([]Alias{{From: "old", To: "new"}})
	b.Run("none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if none.Resolve("search") != nil {
				b.Fatal("alias")
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if some.Resolve("search") != nil {
				b.Fatal("alias")
			}
		}
	})
}
