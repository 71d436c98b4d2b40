// Package egress decides which network addresses and ports outbound webhook
// requests may reach. The check runs on the address actually being dialled (see
// Guard.Control), so a name that resolves to a public address when checked
// and to a private one when connecting (DNS rebinding) is still refused.
package egress

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Guard lets through only global unicast addresses (see classify) on the
// allowed ports (80 and 443 unless AllowPorts says otherwise), and any port
// of an address inside a network the operator allowed: such a network is
// trusted as a whole, which keeps development receivers on random loopback
// ports working. The zero Guard allows global unicast addresses on ports 80
// and 443.
type Guard struct {
	allowed []netip.Prefix
	ports   []uint16 // nil: defaultPorts
}

// defaultPorts are the ports of http and https URLs without a port.
var defaultPorts = []uint16{80, 443}

// Option configures a Guard.
type Option func(*Guard)

// AllowPorts replaces the ports that global addresses may be dialled on (80
// and 443 by default) with ports; without any it keeps the default, so an
// unset setting means 80 and 443. Addresses inside an allowed network may
// be dialled on any port.
func AllowPorts(ports ...uint16) Option {
	return func(g *Guard) {
		if len(ports) > 0 {
			g.ports = slices.Clone(ports)
		}
	}
}

// New returns a guard that also lets through addresses inside allowed (for
// example 127.0.0.0/8 for a development receiver), on any port.
func New(allowed []netip.Prefix, opts ...Option) *Guard {
	g := &Guard{allowed: allowed}
	for _, opt := range opts {
		opt(g)
	}
	return g
}

// RefusedError is the error of a refused address or port: the same target
// will be refused again. Its message names the address, which a tenant must
// not see, since it tells what a name resolves to; show Category(err), and
// treat a refused address as a DNS failure in every way a tenant can see.
type RefusedError struct {
	Addr netip.Addr
	// Port is the dialled port, 0 when unknown (Check gets no port).
	Port uint16
	// PortRefused is true when the address may be reached but not on Port.
	// The address is checked first, so a refused port also tells that the
	// address is a global one.
	PortRefused bool
	Reason      string
}

func (e *RefusedError) Error() string {
	if e.PortRefused {
		return fmt.Sprintf("webhook target %s: %s: refused (an operator may allow more ports)", netip.AddrPortFrom(e.Addr, e.Port), e.Reason)
	}
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
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: dial address %q is not an IP address and port: %w", address, err)
	}
	return g.checkDial(ap)
}

// checkDial checks the address first and the port second, so that a
// refused port, which a tenant may be told about, is only ever reported for
// an address that may be reached: telling a refused port from a refused
// address must not tell a private address from a public one.
func (g *Guard) checkDial(ap netip.AddrPort) error {
	addr, port := ap.Addr().Unmap(), ap.Port()
	if g.allows(addr) {
		return nil
	}
	if reason := classify(addr); reason != "" {
		return &RefusedError{Addr: addr, Port: port, Reason: reason}
	}
	ports := g.ports
	if ports == nil {
		ports = defaultPorts
	}
	if !slices.Contains(ports, port) {
		return &RefusedError{Addr: addr, Port: port, PortRefused: true,
			Reason: fmt.Sprintf("port %d is not an allowed port (%s)", port, portList(ports))}
	}
	return nil
}

func portList(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}
