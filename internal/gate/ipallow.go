package gate

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ipAllow refuses a call from an address outside the key's allowlist. An
// empty allowlist allows every address. An IPv4-mapped IPv6 client address
// (::ffff:10.0.0.1) matches as the IPv4 address it carries. When the client
// address is unknown and the key has an allowlist, the call is refused
// (paygate-mcp let it through).
type ipAllow struct{}

func (ipAllow) Name() string { return "ip_allowlist" }

func (ipAllow) Check(_ context.Context, c *Call) error {
	if c.Key == nil || len(c.Key.IPAllowlist) == 0 {
		return nil
	}
	ip := c.ClientIP.Unmap().WithZone("")
	if !ip.IsValid() {
		return &Denial{Reason: IPNotAllowed, Detail: "client address unknown", Remaining: c.Account.Balance}
	}
	if IPAllowed(c.Key.IPAllowlist, ip) {
		return nil
	}
	return &Denial{Reason: IPNotAllowed, Detail: ip.String() + " not in allowlist", Remaining: c.Account.Balance}
}

// IPAllowed reports whether ip is inside one of the prefixes (an empty
// list allows all). ip is unmapped first.
func IPAllowed(allow []netip.Prefix, ip netip.Addr) bool {
	if len(allow) == 0 {
		return true
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ErrBadAllowlistEntry is wrapped by ParseIPAllowlist's errors.
var ErrBadAllowlistEntry = errors.New("not an IP address or CIDR prefix")

// ParseIPAllowlist parses an allowlist as operators write it: IPv4 or IPv6
// addresses ("10.0.0.7", "2001:db8::1") and CIDR prefixes ("10.0.0.0/8",
// "2001:db8::/32"), surrounding spaces ignored. Addresses become /32 or
// /128 prefixes; host bits of a prefix are cleared ("10.0.0.1/8" is
// 10.0.0.0/8); IPv4-mapped IPv6 entries become their IPv4 form
// ("::ffff:10.0.0.0/104" is 10.0.0.0/8). Zones are refused. Errors name the
// entry by index.
func ParseIPAllowlist(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for i, raw := range entries {
		p, err := parseAllowEntry(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("ipAllowlist[%d] %q: %w", i, raw, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseAllowEntry(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("empty entry")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, errors.New("zones are not allowed")
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, ErrBadAllowlistEntry
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, ErrBadAllowlistEntry
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, errors.New("an IPv4-mapped prefix must be at least /96")
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}
