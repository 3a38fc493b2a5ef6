package config

import (
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		bad  bool
	}{
		{in: "1048576", want: 1 << 20},
		{in: "1MiB", want: 1 << 20},
		{in: "1M", want: 1 << 20},
		{in: "1MB", want: 1000000},
		{in: "512KB", want: 512000},
		{in: "512kib", want: 512 << 10},
		{in: " 2 GiB ", want: 2 << 30},
		{in: "0", want: 0},
		{in: "", bad: true},
		{in: "-1", bad: true},
		{in: "1.5MiB", bad: true},
		{in: "1TB", bad: true},
		{in: "99999999999999999999", bad: true},
		{in: "9000000000GiB", bad: true},
	}
	for _, tc := range tests {
		got, err := ParseByteSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, bad=%v", tc.in, got, err, tc.want, tc.bad)
		}
	}
	for _, b := range []ByteSize{1 << 20, 512 << 10, 3 << 30, 1000, 0} {
		if got, err := ParseByteSize(b.String()); err != nil || got != b {
			t.Errorf("round trip of %d via %q: %d, %v", b, b.String(), got, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		bare time.Duration
		want time.Duration
		bad  bool
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "0", want: 0},
		{in: "30", bad: true},
		{in: "30", bare: time.Millisecond, want: 30 * time.Millisecond},
		{in: "-5", bare: time.Millisecond, bad: true},
		{in: "soon", bad: true},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in, tc.bare)
		if (err != nil) != tc.bad || got.D() != tc.want {
			t.Errorf("ParseDuration(%q, %v) = %v, %v; want %v, bad=%v", tc.in, tc.bare, got, err, tc.want, tc.bad)
		}
	}
	for _, d := range []time.Duration{30 * time.Minute, time.Hour, 90 * time.Minute, 1500 * time.Millisecond, 0} {
		s := Duration(d).String()
		if got, err := ParseDuration(s, 0); err != nil || got.D() != d {
			t.Errorf("round trip of %v via %q: %v, %v", d, s, got, err)
		}
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"port", "host", "serverCommand", "remoteUrl", "globalRateLimitPerMin", "defaultCreditsPerCall"}
	for in, want := range map[string]string{
		"prot":             "port",
		"Port":             "port",
		"server_command":   "serverCommand",
		"remote-url":       "remoteUrl",
		"remoteURL":        "remoteUrl",
		"globalRateLimit":  "globalRateLimitPerMin",
		"defaultCredits":   "defaultCreditsPerCall",
		"xyz":              "",
		"completelyMadeUp": "",
	} {
		if got := suggest(in, cands); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
