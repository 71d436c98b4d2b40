package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// TestCategory_OfErrors wraps each error as http.Client.Do would.
func TestCategory_OfErrors(t *testing.T) {
	addr := netip.MustParseAddr("10.1.2.3")
	dial := func(err error) error {
		return &url.Error{Op: "Post", URL: "http://x.test/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: err}}
	}
	read := func(err error) error {
		return &url.Error{Op: "Post", URL: "http://x.test/", Err: &net.OpError{Op: "read", Net: "tcp", Err: err}}
	}
	post := func(err error) error { return &url.Error{Op: "Post", URL: "http://x.test/", Err: err} }
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"refused address", dial(&RefusedError{Addr: addr, Port: 443, Reason: "a private address"}), Unreachable},
		{"refused address from Check", &RefusedError{Addr: addr, Reason: "a private address"}, Unreachable},
		{"refused port", dial(&RefusedError{Addr: addr, Port: 22, PortRefused: true, Reason: "port 22"}), PortNotAllowed},
		{"no such host", dial(&net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}), Unreachable},
		{"DNS timeout", dial(&net.DNSError{Err: "i/o timeout", Name: "x.test", IsTimeout: true}), Unreachable},
		{"DNS server failure", dial(&net.DNSError{Err: "server misbehaving", Name: "x.test", IsTemporary: true}), Unreachable},
		{"DNS canceled", dial(&net.DNSError{Err: "operation was canceled", Name: "x.test", UnwrapErr: context.Canceled}), Unreachable},
		{"no suitable address", dial(&net.AddrError{Err: "no suitable address found", Addr: "x.test"}), Unreachable},
		{"canceled", post(context.Canceled), Canceled},
		{"deadline", post(context.DeadlineExceeded), Timeout},
		{"dial i/o timeout", dial(os.ErrDeadlineExceeded), Timeout},
		{"connect timed out", dial(os.NewSyscallError("connect", syscall.ETIMEDOUT)), Timeout},
		{"connection refused", dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), ConnectionFailed},
		{"host unreachable", dial(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), ConnectionFailed},
		{"network unreachable", dial(os.NewSyscallError("connect", syscall.ENETUNREACH)), ConnectionFailed},
		{"connection reset", read(os.NewSyscallError("read", syscall.ECONNRESET)), ConnectionFailed},
		{"broken pipe", post(fmt.Errorf("write: %w", syscall.EPIPE)), ConnectionFailed},
		{"EOF", post(io.EOF), ConnectionFailed},
		{"unexpected EOF", post(fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", io.ErrUnexpectedEOF)), ConnectionFailed},
		{"unknown authority", post(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), TLSError},
		{"wrong host name", post(x509.HostnameError{Certificate: &x509.Certificate{}, Host: "x.test"}), TLSError},
		{"expired", post(x509.CertificateInvalidError{Cert: &x509.Certificate{}, Reason: x509.Expired}), TLSError},
		{"not TLS", post(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), TLSError},
		{"remote alert", post(&net.OpError{Op: "remote error", Err: errors.New("tls: handshake failure")}), TLSError},
		{"HTTP behind https", post(http.ErrSchemeMismatch), TLSError},
		// Not recognised: the answer that tells nothing.
		{"malformed response", post(fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", errors.New(`malformed HTTP response "SSH-2.0"`))), Unreachable},
		{"anything else", errors.New("something new"), Unreachable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Category(c.err); got != c.want {
				t.Errorf("Category(%v) = %q, want %q", c.err, got, c.want)
			}
		})
	}
}

// TestCategory_PrivateNameReadsLikeMissingName is the oracle of the review
// (L6): through a resolver we control, a name that resolves to an internal
// address and a name that does not resolve fail with different errors (the
// first names the address) but in the same category.
func TestCategory_PrivateNameReadsLikeMissingName(t *testing.T) {
	resolver := fakeDNS(t, map[string][]netip.Addr{
		"db.corp.test.":     {netip.MustParseAddr("10.1.2.3")},
		"ula.corp.test.":    {netip.MustParseAddr("fd00::1")},
		"meta.corp.test.":   {netip.MustParseAddr("169.254.169.254")},
		"lo.corp.test.":     {netip.MustParseAddr("127.0.0.1")},
		"public.corp.test.": {netip.MustParseAddr("93.184.216.34")},
	})
	client := guardedClient(New(nil), resolver, 2*time.Second)
	post := func(u string) error {
		resp, err := client.Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	missing := post("http://nothere.corp.test/")
	if missing == nil || Category(missing) != Unreachable {
		t.Fatalf("missing name: %v (%q), want %q", missing, Category(missing), Unreachable)
	}
	for _, u := range []string{
		"http://db.corp.test/", "https://db.corp.test/", "http://db.corp.test:22/",
		"http://ula.corp.test/", "http://meta.corp.test/latest/meta-data/", "http://lo.corp.test:6379/",
	} {
		err := post(u)
		if err == nil || err.Error() == missing.Error() {
			t.Fatalf("%s: %v, want a refusal (a different error)", u, err)
		}
		if got := Category(err); got != Category(missing) {
			t.Errorf("%s: %v is %q, a missing name %q: a tenant can tell them apart", u, err, got, Category(missing))
		}
	}
	// A public address on a refused port is refused before any packet,
	// and may say so: it tells only that the name is a public one.
	if err := post("http://public.corp.test:22/"); Category(err) != PortNotAllowed {
		t.Errorf("public name on port 22: %v (%q), want %q", err, Category(err), PortNotAllowed)
	}
}

// TestCategory_OfRealFailures provokes each failure against loopback
// receivers (loopback is allowed, as in development).
func TestCategory_OfRealFailures(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	client := guardedClient(New(loopback), nil, 500*time.Millisecond)

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client leaving
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	tlsServer := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tlsServer.Config.ErrorLog = discardLog()
	defer tlsServer.Close()
	closedAddr := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	reset := rawServer(t, func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) })
	hangUp := rawServer(t, func(net.Conn) {})

	cases := []struct {
		name string
		url  string
		ctx  func() context.Context
		want string
	}{
		{"closed port", "http://" + closedAddr + "/", nil, ConnectionFailed},
		{"reset", "http://" + reset + "/", nil, ConnectionFailed},
		{"hang-up", "http://" + hangUp + "/", nil, ConnectionFailed},
		{"slow", slow.URL, nil, Timeout},
		{"unknown authority", tlsServer.URL, nil, TLSError},
		{"HTTP behind https", strings.Replace(slow.URL, "http:", "https:", 1), nil, TLSError},
		{"canceled", slow.URL, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			if c.ctx != nil {
				ctx = c.ctx()
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if got := Category(err); got != c.want {
				t.Errorf("%v: %q, want %q", err, got, c.want)
			}
		})
	}
}

// guardedClient is a webhook client as activities builds it, with an
// optional resolver.
func guardedClient(g *Guard, resolver *net.Resolver, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, Control: g.Control, Resolver: resolver}
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DialContext: dialer.DialContext, TLSHandshakeTimeout: timeout, DisableKeepAlives: true},
		Timeout:   timeout,
	}
}

// rawServer accepts connections, reads the request's first bytes, calls
// before and closes the connection without answering.
func rawServer(t *testing.T, before func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 512))
			before(c)
			c.Close()
		}
	})
	return ln.Addr().String()
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// fakeDNS serves A and AAAA answers from records over UDP on loopback and
// NXDOMAIN for every other name, and returns a resolver that asks it only.
func fakeDNS(t *testing.T, records map[string][]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if answer, err := dnsAnswer(buf[:n], records); err == nil {
				_, _ = pc.WriteTo(answer, from)
			}
		}
	})
	server := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", server)
	}}
}

func dnsAnswer(query []byte, records map[string][]netip.Addr) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	addrs, known := records[q.Name.String()]
	rcode := dnsmessage.RCodeSuccess
	if !known {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: rcode})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	for _, a := range addrs {
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
