// Package egress decides which network addresses outbound webhook requests
// may reach. The check runs on the address actually being dialled (see
// Guard.Control), so a name that resolves to a public address when checked
// and to a private one when connecting (DNS rebinding) is still refused.
package egress

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Guard lets through only global unicast addresses (see classify), and
// addresses inside a network the operator allowed. The zero Guard allows
// only global unicast addresses.
type Guard struct {
	allowed []netip.Prefix
}

// New returns a guard that also lets through addresses inside allowed (for
// example 127.0.0.0/8 for a development receiver).
func New(allowed []netip.Prefix) *Guard {
	return &Guard{allowed: allowed}
}

// RefusedError is the error of a refused address. It is not retryable: the
// same target will be refused again.
type RefusedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("webhook target %s is %s: refused to protect internal services "+
		"(an operator may allow it with PLATFORM_WEBHOOK_ALLOWED_NETWORKS)", e.Addr, e.Reason)
}

// Check returns nil when addr may be reached, else a *RefusedError.
func (g *Guard) Check(addr netip.Addr) error {
	addr = addr.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	if g.allows(addr) {
		return nil
	}
	if reason := classify(addr); reason != "" {
		return &RefusedError{Addr: addr, Reason: reason}
	}
	return nil
}

// allows reports whether an operator-allowed network contains addr.
func (g *Guard) allows(addr netip.Addr) bool {
	for _, p := range g.allowed {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// The address check is an allowlist: an IPv4 address must be outside every
// range of notGlobal4, an IPv6 address inside 2000::/3 (the only block IANA
// allocates as global unicast) and outside every range of notGlobal6.
// Everything else is refused: IPv6 outside 2000::/3 is reserved, ULA,
// link-local, site-local, multicast, discard or translation space.
//
// The tables follow the IANA IPv4 and IPv6 special-purpose address
// registries (entries not "globally reachable") plus multicast, the
// deprecated site-local and IPv4-compatible IPv6 blocks, and a few ranges
// refused on purpose although the registries call them reachable:
//   - translation prefixes (NAT64 64:ff9b::/96, 6to4 2002::/16 and its relay
//     192.88.99.0/24, Teredo 2001::/32), which embed an arbitrary IPv4
//     address, internal ones included;
//   - the anycast service blocks (PCP and TURN anycast in 192.0.0.0/24 and
//     2001:1::/48, AMT, AS112), which reach the nearest such server, which
//     may be one inside our own network, and never host a webhook receiver.
//
// Within a table the first matching range gives the reason, so narrower
// ranges come before the ones containing them.
var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")

	notGlobal4 = []special{
		{mustPrefix("0.0.0.0/32"), "an unspecified address"},
		{mustPrefix("0.0.0.0/8"), "in the reserved \"this network\" range"},
		{mustPrefix("10.0.0.0/8"), "a private address"},
		{mustPrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
		{mustPrefix("127.0.0.0/8"), "a loopback address"},
		{mustPrefix("169.254.0.0/16"), "a link-local address"},
		{mustPrefix("172.16.0.0/12"), "a private address"},
		{mustPrefix("192.0.0.0/24"), "an IETF protocol assignment"},
		{mustPrefix("192.0.2.0/24"), "a documentation address"},
		{mustPrefix("192.31.196.0/24"), "an anycast service address (AS112)"},
		{mustPrefix("192.52.193.0/24"), "an anycast service address (AMT)"},
		{mustPrefix("192.88.99.0/24"), "an IPv6 translation address (6to4 relay anycast)"},
		{mustPrefix("192.168.0.0/16"), "a private address"},
		{mustPrefix("192.175.48.0/24"), "an anycast service address (AS112)"},
		{mustPrefix("198.18.0.0/15"), "a benchmarking address"},
		{mustPrefix("198.51.100.0/24"), "a documentation address"},
		{mustPrefix("203.0.113.0/24"), "a documentation address"},
		{mustPrefix("224.0.0.0/4"), "a multicast address"},
		{mustPrefix("255.255.255.255/32"), "the broadcast address"},
		{mustPrefix("240.0.0.0/4"), "a reserved address"},
	}

	notGlobal6 = []special{
		// Outside 2000::/3, named for a clearer reason than the default.
		{mustPrefix("::/128"), "an unspecified address"},
		{mustPrefix("::1/128"), "a loopback address"},
		{mustPrefix("::/96"), "an IPv4-compatible address (deprecated)"},
		{mustPrefix("::ffff:0:0:0/96"), "an IPv6 translation address"}, // SIIT, RFC 2765
		{mustPrefix("64:ff9b::/96"), "an IPv6 translation address"},
		{mustPrefix("64:ff9b:1::/48"), "an IPv6 translation address"},
		{mustPrefix("100::/64"), "a discard-only address"},
		{mustPrefix("100:0:0:1::/64"), "a dummy address"},
		{mustPrefix("5f00::/16"), "a segment routing (SRv6) identifier"},
		{mustPrefix("fc00::/7"), "a private address"},
		{mustPrefix("fe80::/10"), "a link-local address"},
		{mustPrefix("fec0::/10"), "a site-local address (deprecated)"},
		{mustPrefix("ff00::/8"), "a multicast address"},
		// Inside 2000::/3.
		{mustPrefix("2001::/32"), "an IPv6 translation address"}, // Teredo
		{mustPrefix("2001::/23"), "an IETF protocol assignment"},
		{mustPrefix("2001:db8::/32"), "a documentation address"},
		{mustPrefix("2002::/16"), "an IPv6 translation address"}, // 6to4
		{mustPrefix("2620:4f:8000::/48"), "an anycast service address (AS112)"},
		{mustPrefix("3fff::/20"), "a documentation address"},
	}
)

type special struct {
	prefix netip.Prefix
	reason string
}

var mustPrefix = netip.MustParsePrefix

func classify(addr netip.Addr) string {
	switch {
	case !addr.IsValid():
		return "not a valid address"
	case addr.Zone() != "":
		return "an address with a zone" // only link-local addresses need one
	case addr.Is4():
		return firstMatch(notGlobal4, addr)
	}
	if reason := firstMatch(notGlobal6, addr); reason != "" {
		return reason
	}
	if !globalUnicast6.Contains(addr) {
		return "outside the IPv6 global unicast range"
	}
	return ""
}

func firstMatch(table []special, addr netip.Addr) string {
	for _, s := range table {
		if s.prefix.Contains(addr) {
			return s.reason
		}
	}
	return ""
}

// Control is a net.Dialer Control function: it runs after the socket is
// created and before it connects, with the resolved address, so a refused
// target never sees a single packet.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("egress: dial address %q: %w", address, err)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("egress: dial address %q is not an IP address: %w", address, err)
	}
	return g.Check(addr)
}
