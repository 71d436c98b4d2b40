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
