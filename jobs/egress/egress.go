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

// Guard refuses private, loopback, link-local, unspecified, multicast and
// other special-purpose addresses unless an allowed network contains them.
// The zero Guard allows only public addresses.
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

// special lists address ranges that are not public unicast beyond what
// netip.Addr's predicates cover. Translation prefixes are refused because
// they can embed any IPv4 address, internal ones included.
var special = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "in the reserved \"this network\" range"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("64:ff9b::/96"), "an IPv6 translation address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "an IPv6 translation address"},
	{netip.MustParsePrefix("2002::/16"), "an IPv6 translation address"},
	{netip.MustParsePrefix("2001::/32"), "an IPv6 translation address"},
}

// Check returns nil when addr may be reached, else a *RefusedError.
func (g *Guard) Check(addr netip.Addr) error {
	addr = addr.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	for _, p := range g.allowed {
		if p.Contains(addr) {
			return nil
		}
	}
	if reason := classify(addr); reason != "" {
		return &RefusedError{Addr: addr, Reason: reason}
	}
	return nil
}

func classify(addr netip.Addr) string {
	switch {
	case !addr.IsValid():
		return "not a valid address"
	case addr.IsUnspecified():
		return "an unspecified address"
	case addr.IsLoopback():
		return "a loopback address"
	case addr.IsPrivate():
		return "a private address"
	case addr.IsLinkLocalUnicast():
		return "a link-local address"
	case addr.IsMulticast(), addr.IsLinkLocalMulticast(), addr.IsInterfaceLocalMulticast():
		return "a multicast address"
	case addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	}
	for _, s := range special {
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
