package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheck_RefusesInternalAddressesUnlessAllowed(t *testing.T) {
	guard := New(nil)
	loopbackAllowed := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	cases := []struct {
		addr    string
		refused string // reason fragment, "" when allowed
		allowed bool   // with loopback allowed
	}{
		{"93.184.216.34", "", true},
		{"2606:4700::1111", "", true},
		{"127.0.0.1", "loopback", true},
		{"::1", "loopback", false},
		{"10.0.0.1", "private", false},
		{"172.16.5.4", "private", false},
		{"192.168.1.1", "private", false},
		{"fd00::1", "private", false},
		{"169.254.169.254", "link-local", false},
		{"fe80::1", "link-local", false},
		{"0.0.0.0", "unspecified", false},
		{"::", "unspecified", false},
		{"224.0.0.1", "multicast", false},
		{"ff02::1", "multicast", false},
		{"255.255.255.255", "broadcast", false},
		{"100.64.0.1", "carrier-grade", false},
		{"::ffff:10.0.0.1", "private", false},
		{"::ffff:127.0.0.1", "loopback", true},
		{"64:ff9b::a00:1", "translation", false},
		{"240.0.0.1", "reserved", false},
	}
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			addr := netip.MustParseAddr(c.addr)
			err := guard.Check(addr)
			if c.refused == "" && err != nil {
				t.Fatalf("Check(%s) = %v, want allowed", c.addr, err)
			}
			if c.refused != "" {
				var refused *RefusedError
				if !errors.As(err, &refused) || !strings.Contains(err.Error(), c.refused) {
					t.Fatalf("Check(%s) = %v, want refused as %s", c.addr, err, c.refused)
				}
			}
			if got := loopbackAllowed.Check(addr) == nil; got != c.allowed {
				t.Errorf("with loopback allowed, Check(%s) allowed = %v, want %v", c.addr, got, c.allowed)
			}
		})
	}
}

// TestControl_RefusesBeforeConnecting dials a listening loopback port through
// the guard: the dial fails with the refusal and the listener never sees a
// connection.
func TestControl_RefusesBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	d := net.Dialer{Control: New(nil).Control, Timeout: time.Second}
	_, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("dial = %v, want a refusal", err)
	}
	select {
	case <-accepted:
		t.Fatal("the refused target accepted a connection")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestCheck_AllowsOnlyGlobalUnicast walks the special-purpose ranges, each
// with an address inside (refused, with a fragment of the reason) and its
// neighbours just outside (allowed).
func TestCheck_AllowsOnlyGlobalUnicast(t *testing.T) {
	cases := []struct {
		addr    string
		refused string // reason fragment, "" when allowed
	}{
		// IPv4, range by range, with the neighbours on either side.
		{"0.0.0.0", "unspecified"},
		{"0.255.255.255", "this network"},
		{"1.0.0.1", ""},
		{"9.255.255.255", ""},
		{"10.0.0.0", "private"},
		{"10.255.255.255", "private"},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.64.0.0", "carrier-grade"},
		{"100.100.100.200", "carrier-grade"}, // Alibaba Cloud metadata
		{"100.127.255.255", "carrier-grade"},
		{"100.128.0.0", ""},
		{"126.255.255.255", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"128.0.0.1", ""},
		{"169.253.255.255", ""},
		{"169.254.169.254", "link-local"},
		{"169.255.0.0", ""},
		{"172.15.255.255", ""},
		{"172.16.0.0", "private"},
		{"172.31.255.255", "private"},
		{"172.32.0.0", ""},
		{"191.255.255.255", ""},
		{"192.0.0.0", "IETF protocol"},
		{"192.0.0.9", "IETF protocol"}, // PCP anycast
		{"192.0.0.170", "IETF protocol"},
		{"192.0.0.255", "IETF protocol"},
		{"192.0.1.0", ""},
		{"192.0.2.1", "documentation"},
		{"192.0.3.0", ""},
		{"192.31.195.255", ""},
		{"192.31.196.1", "anycast"},
		{"192.31.197.0", ""},
		{"192.52.193.1", "anycast"},
		{"192.52.194.0", ""},
		{"192.88.98.255", ""},
		{"192.88.99.1", "translation"},
		{"192.88.100.0", ""},
		{"192.167.255.255", ""},
		{"192.168.1.1", "private"},
		{"192.169.0.0", ""},
		{"192.175.48.1", "anycast"},
		{"192.175.49.0", ""},
		{"198.17.255.255", ""},
		{"198.18.0.0", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.20.0.0", ""},
		{"198.51.99.255", ""},
		{"198.51.100.1", "documentation"},
		{"198.51.101.0", ""},
		{"203.0.112.255", ""},
		{"203.0.113.1", "documentation"},
		{"203.0.114.0", ""},
		{"223.255.255.255", ""},
		{"224.0.0.1", "multicast"},
		{"239.255.255.255", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.254", "reserved"},
		{"255.255.255.255", "broadcast"},

		// IPv6 outside 2000::/3.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::2", "IPv4-compatible"},
		{"::8.8.8.8", "IPv4-compatible"},
		{"::a00:1", "IPv4-compatible"},
		{"::1:0:0", "outside the IPv6 global unicast"},
		{"::ffff:8.8.8.8", ""}, // IPv4-mapped: judged as 8.8.8.8
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:0:a00:1", "translation"}, // IPv4-translated (SIIT)
		{"64:ff9b::808:808", "translation"},
		{"64:ff9b:1::1", "translation"},
		{"100::1", "discard"},
		{"100::ffff:ffff:ffff:ffff", "discard"},
		{"100:0:0:1::1", "dummy"},
		{"100:0:0:2::1", "outside the IPv6 global unicast"},
		{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "outside the IPv6 global unicast"},
		{"4000::1", "outside the IPv6 global unicast"},
		{"5f00::1", "segment routing"},
		{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "outside the IPv6 global unicast"},
		{"fc00::1", "private"},
		{"fd00:ec2::254", "private"}, // AWS metadata over IPv6
		{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private"},
		{"fe00::1", "outside the IPv6 global unicast"},
		{"fe80::1", "link-local"},
		{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
		{"fec0::1", "site-local"},
		{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local"},
		{"ff02::1", "multicast"},
		{"ff0e::1", "multicast"},

		// IPv6 inside 2000::/3.
		{"2000::1", ""},
		{"2001::1", "translation"}, // Teredo
		{"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "translation"},
		{"2001:1::1", "IETF protocol"}, // PCP anycast
		{"2001:2::1", "IETF protocol"}, // benchmarking
		{"2001:3::1", "IETF protocol"}, // AMT
		{"2001:4:112::1", "IETF protocol"},
		{"2001:20::1", "IETF protocol"}, // ORCHIDv2
		{"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol"},
		{"2001:200::1", ""},
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"2001:db8::1", "documentation"},
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
		{"2001:db9::", ""},
		{"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"2002::1", "translation"}, // 6to4
		{"2002:a00:1::1", "translation"},
		{"2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "translation"},
		{"2003::1", ""},
		{"2606:4700::1111", ""},
		{"2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", ""},
		{"2620:4f:8000::1", "anycast"},
		{"2620:4f:8001::", ""},
		{"2a00:1450:4001:800::200e", ""},
		{"3ffe::1", ""},
		{"3fff::1", "documentation"},
		{"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
		{"3fff:1000::", ""},

		// Zones are for link-local addresses; refuse any.
		{"fe80::1%eth0", "zone"},
		{"2606:4700::1111%eth0", "zone"},
	}
	guard := New(nil)
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			err := guard.Check(netip.MustParseAddr(c.addr))
			if c.refused == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want allowed", c.addr, err)
				}
				return
			}
			var refused *RefusedError
			if !errors.As(err, &refused) || !strings.Contains(refused.Reason, c.refused) {
				t.Fatalf("Check(%s) = %v, want refused as %s", c.addr, err, c.refused)
			}
		})
	}
	if err := guard.Check(netip.Addr{}); err == nil {
		t.Error("Check(zero Addr) allowed")
	}
}

// TestControl_AllowsOnlyConfiguredPorts dials nothing: Control gets the
// resolved address and port, as the dialer would pass them.
func TestControl_AllowsOnlyConfiguredPorts(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	defaults := New(nil)
	var zero Guard
	custom := New(nil, AllowPorts(443, 8443))
	empty := New(nil, AllowPorts())
	devel := New(loopback)
	cases := []struct {
		name    string
		guard   *Guard
		address string
		want    string // "" allowed, "port" port refused, "address" address refused
	}{
		{"default 80", defaults, "93.184.216.34:80", ""},
		{"default 443", defaults, "93.184.216.34:443", ""},
		{"default 443 v6", defaults, "[2606:4700::1111]:443", ""},
		{"default 443 mapped", defaults, "[::ffff:93.184.216.34]:443", ""},
		{"default 22", defaults, "93.184.216.34:22", "port"},
		{"default 25", defaults, "93.184.216.34:25", "port"},
		{"default 6379 v6", defaults, "[2606:4700::1111]:6379", "port"},
		{"default 8080", defaults, "93.184.216.34:8080", "port"},
		{"default 0", defaults, "93.184.216.34:0", "port"},
		{"default 65535", defaults, "93.184.216.34:65535", "port"},
		{"zero guard 443", &zero, "93.184.216.34:443", ""},
		{"zero guard 22", &zero, "93.184.216.34:22", "port"},
		{"custom 8443", custom, "93.184.216.34:8443", ""},
		{"custom 443", custom, "93.184.216.34:443", ""},
		{"custom drops 80", custom, "93.184.216.34:80", "port"},
		{"no ports keeps the default 80", empty, "93.184.216.34:80", ""},
		{"no ports keeps the default 22 refused", empty, "93.184.216.34:22", "port"},
		// The address is checked first: a private address on a refused
		// port is refused as an address, like on an allowed one.
		{"private on 443", defaults, "10.0.0.1:443", "address"},
		{"private on 22", defaults, "10.0.0.1:22", "address"},
		{"loopback on 8443 with 8443 allowed", custom, "127.0.0.1:8443", "address"},
		// An allowed network is trusted on any port.
		{"allowed network on 22", devel, "127.0.0.1:22", ""},
		{"allowed network on 54321", devel, "127.0.0.1:54321", ""},
		{"allowed network, global address still port-checked", devel, "93.184.216.34:22", "port"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.guard.Control("tcp", c.address, nil)
			var refused *RefusedError
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Control(%s) = %v, want allowed", c.address, err)
			case c.want == "":
			case !errors.As(err, &refused):
				t.Fatalf("Control(%s) = %v, want a *RefusedError", c.address, err)
			case refused.PortRefused != (c.want == "port"):
				t.Fatalf("Control(%s) = %v (PortRefused %v), want the %s refused", c.address, err, refused.PortRefused, c.want)
			case c.want == "port" && !strings.Contains(err.Error(), "port"):
				t.Fatalf("Control(%s) = %v, want the port named", c.address, err)
			}
		})
	}
}

// TestControl_AllowedNetworkOnAnyPort dials a loopback listener on its
// random port: an allowed network is not held to the port policy, which is
// how development receivers and tests are reached.
func TestControl_AllowedNetworkOnAnyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	guard := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	d := net.Dialer{Control: guard.Control, Timeout: time.Second}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial %s = %v, want connected", ln.Addr(), err)
	}
	c.Close()
}

func TestAllowPorts_CopiesItsArgument(t *testing.T) {
	ports := []uint16{8443}
	guard := New(nil, AllowPorts(ports...))
	ports[0] = 22
	if err := guard.Control("tcp", "93.184.216.34:22", nil); err == nil {
		t.Error("a later change to the caller's slice allowed port 22")
	}
}
