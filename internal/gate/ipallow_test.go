package gate

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseIPAllowlist(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{"nil", nil, []string{}, ""},
		{"IPv4 address", []string{"10.0.0.7"}, []string{"10.0.0.7/32"}, ""},
		{"IPv6 address", []string{"2001:db8::1"}, []string{"2001:db8::1/128"}, ""},
		{"IPv4 CIDR", []string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}, ""},
		{"IPv6 CIDR", []string{"2001:db8::/32"}, []string{"2001:db8::/32"}, ""},
		{"host bits cleared", []string{"10.1.2.3/8", "2001:db8::1/32"}, []string{"10.0.0.0/8", "2001:db8::/32"}, ""},
		{"spaces trimmed", []string{"  10.0.0.1 ", "\t::1\n"}, []string{"10.0.0.1/32", "::1/128"}, ""},
		{"IPv4-mapped address", []string{"::ffff:10.0.0.7"}, []string{"10.0.0.7/32"}, ""},
		{"IPv4-mapped prefix", []string{"::ffff:10.0.0.0/104"}, []string{"10.0.0.0/8"}, ""},
		{"everything", []string{"0.0.0.0/0", "::/0"}, []string{"0.0.0.0/0", "::/0"}, ""},
		{"empty entry", []string{"10.0.0.1", ""}, nil, `ipAllowlist[1] "": empty entry`},
		{"garbage", []string{"not-an-ip"}, nil, `ipAllowlist[0] "not-an-ip": not an IP address or CIDR prefix`},
		{"octet out of range", []string{"10.0.0.300"}, nil, "not an IP address"},
		{"prefix too long", []string{"10.0.0.0/33"}, nil, "not an IP address"},
		{"negative prefix", []string{"10.0.0.0/-1"}, nil, "not an IP address"},
		{"hostname", []string{"example.com"}, nil, "not an IP address"},
		{"zone", []string{"fe80::1%eth0"}, nil, "zones are not allowed"},
		{"zone in prefix", []string{"fe80::%eth0/64"}, nil, "zones are not allowed"},
		{"short IPv4-mapped prefix", []string{"::ffff:0.0.0.0/90"}, nil, "at least /96"},
		{"IPv4 with leading zeros", []string{"010.0.0.1"}, nil, "not an IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseIPAllowlist(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, p := range got {
				s = append(s, p.String())
			}
			if s == nil {
				s = []string{}
			}
			if !slices.Equal(s, tc.want) {
				t.Fatalf("got %v, want %v", s, tc.want)
			}
		})
	}
	_, err := ParseIPAllowlist([]string{"nope"})
	if !errors.Is(err, ErrBadAllowlistEntry) {
		t.Fatalf("error %v does not match ErrBadAllowlistEntry", err)
	}
}

func TestIPAllowed(t *testing.T) {
	allow, _ := ParseIPAllowlist([]string{"10.0.0.0/8", "2001:db8::/32"})
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.1.1.1", true}, {"::ffff:10.1.1.1", true}, {"11.0.0.1", false},
		{"2001:db8::9", true}, {"2001:db8::9%lo", true}, {"2001:db9::", false},
	}
	for _, tc := range tests {
		t.Run(tc.ip, func(t *testing.T) {
			if got := IPAllowed(allow, netip.MustParseAddr(tc.ip)); got != tc.want {
				t.Fatalf("IPAllowed = %v", got)
			}
		})
	}
	if !IPAllowed(nil, netip.Addr{}) {
		t.Fatal("empty allowlist refused")
	}
}

func FuzzParseIPAllowlist(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "10.0.0.0/8", "2001:db8::/32", "::ffff:10.0.0.0/104", " ::1 ", "fe80::1%eth0", "1.2.3.4/33", "", "::ffff:1.2.3.4/127", "0.0.0.0/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseIPAllowlist([]string{s})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ipAllowlist[0] ") {
				t.Fatalf("error does not name the entry: %v", err)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("%d prefixes for one entry", len(got))
		}
		p := got[0]
		switch {
		case !p.IsValid():
			t.Fatalf("invalid prefix from %q", s)
		case p != p.Masked():
			t.Fatalf("prefix %v from %q has host bits", p, s)
		case p.Addr().Is4In6():
			t.Fatalf("prefix %v from %q is IPv4-mapped", p, s)
		case p.Addr().Zone() != "":
			t.Fatalf("prefix %v from %q has a zone", p, s)
		}
		// Canonical form re-parses to itself.
		again, err := ParseIPAllowlist([]string{p.String()})
		if err != nil || again[0] != p {
			t.Fatalf("%v does not round-trip: %v %v", p, again, err)
		}
		// The prefix's own address is allowed by it.
		if !IPAllowed(got, p.Addr()) {
			t.Fatalf("%v does not contain its own address", p)
		}
	})
}
