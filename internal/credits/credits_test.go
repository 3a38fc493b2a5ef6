package credits

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Credits
		wantErr error
	}{
		{"0", 0, nil},
		{"100", 100, nil},
		{"1.0", 1, nil},
		{"1e3", 1000, nil},
		{"9007199254740992", Max, nil},
		{"9007199254740993", 0, ErrTooLarge},
		{"1e300", 0, ErrTooLarge},
		{"99999999999999999999999", 0, ErrTooLarge},
		{"-1", 0, ErrNegative},
		{"-0.5", 0, ErrNegative},
		{"1.5", 0, ErrFractional},
		{"0.0001", 0, ErrFractional},
		{`"5"`, 0, ErrNotNumber},
		{"true", 0, ErrNotNumber},
		{"null", 0, ErrNotNumber},
		{"", 0, ErrNotNumber},
		{"NaN", 0, ErrNotNumber},
	}
	for _, tc := range tests {
		got, err := Parse([]byte(tc.in))
		if !errors.Is(err, tc.wantErr) || (err == nil && got != tc.want) {
			t.Errorf("Parse(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestAmountJSON(t *testing.T) {
	var v struct {
		Credits Amount `json:"credits"`
	}
	if err := json.Unmarshal([]byte(`{"credits":42}`), &v); err != nil || v.Credits != 42 {
		t.Fatalf("%v %d", err, v.Credits)
	}
	for _, bad := range []string{`{"credits":1.5}`, `{"credits":-3}`, `{"credits":"7"}`, `{"credits":1e20}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestArithmetic(t *testing.T) {
	if _, err := Add(Max, 1); !errors.Is(err, ErrTooLarge) {
		t.Fatal("Add overflow not caught")
	}
	if s, err := Add(Max-1, 1); err != nil || s != Max {
		t.Fatal("Add at Max")
	}
	if _, err := Mul(Max/2+1, 2); !errors.Is(err, ErrTooLarge) {
		t.Fatal("Mul overflow not caught")
	}
	if _, err := Add(-1, 1); !errors.Is(err, ErrNegative) {
		t.Fatal("negative accepted")
	}
}

func TestRulePrice(t *testing.T) {
	tests := []struct {
		rule Rule
		args int
		want Credits
	}{
		{Rule{PerCall: 1}, 0, 1},
		{Rule{PerCall: 5}, 100000, 5},
		{Rule{PerCall: 2, PerKBInput: 5}, 0, 7},         // at least 1 KB
		{Rule{PerCall: 2, PerKBInput: 5}, 1024, 7},      // exactly 1 KB
		{Rule{PerCall: 2, PerKBInput: 5}, 1025, 12},     // ceil
		{Rule{PerCall: 2, PerKBInput: 5}, 3 * 1024, 17}, // the reference's example: 2 + 3×5
	}
	for _, tc := range tests {
		got, err := tc.rule.Price(tc.args)
		if err != nil || got != tc.want {
			t.Errorf("%+v.Price(%d) = %d, %v; want %d", tc.rule, tc.args, got, err, tc.want)
		}
	}
	if _, err := (Rule{PerCall: 1, PerKBInput: Max}).Price(1 << 20); !errors.Is(err, ErrTooLarge) {
		t.Fatal("price overflow not caught")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "1", "-1", "1.5", "1e3", "9007199254740993", `"x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse([]byte(s))
		if err == nil && (n < 0 || n > Max) {
			t.Fatalf("Parse(%q) = %d out of range", s, n)
		}
	})
}
