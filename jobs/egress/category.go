package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
)

// Categories of a failed delivery, as returned by Category: short,
// stable strings that are safe to show the tenant who owns the webhook.
const (
	// Unreachable: the name did not resolve, or it resolved to an address
	// that may not be reached, or the failure is not one of the others.
	// These are one answer on purpose (see Category).
	Unreachable = "unreachable"
	// PortNotAllowed: the address may be reached, but not on the URL's port.
	PortNotAllowed = "port_not_allowed"
	// Timeout: no response in time.
	Timeout = "timeout"
	// ConnectionFailed: the connection was refused, reset or closed early.
	ConnectionFailed = "connection_failed"
	// TLSError: the TLS handshake failed (certificate, alert, or a plain
	// HTTP server behind an https URL).
	TLSError = "tls_error"
	// Canceled: the attempt was canceled on our side.
	Canceled = "canceled"
)

// Category turns the error of a delivery that got no response (a dial,
// guard or transport error, as returned by http.Client.Do) into one of the
// categories above; "" for nil. Unlike err.Error(), it names no address,
// host or resolver, so it may be shown to the tenant.
//
// A tenant chooses the URL, so whatever tells two outcomes apart tells the
// tenant something about our network. Hence:
//   - a refused address and every DNS failure are both Unreachable, so a
//     name that resolves to a private address reads like a name that does
//     not resolve: internal names cannot be enumerated. The caller must keep
//     them alike in everything else the tenant sees, too: the same message,
//     the same retryability and the same retry delays;
//   - every other category is only given once the guard let the address
//     through, so it tells no more than a delivery to that address would.
//     PortNotAllowed is one of them: the guard checks the address first.
//     The exception is Timeout: when http.Client.Timeout cuts a DNS lookup
//     short, the client drops the cause. That tells a slow resolver, not
//     what a name resolves to: private and missing names answer fast;
//   - an error this function does not recognise is Unreachable, the one
//     answer that tells nothing.
//
// Operators still need the detail: log err itself, never show it.
func Category(err error) string {
	if err == nil {
		return ""
	}
	var refused *RefusedError
	if errors.As(err, &refused) {
		if refused.PortRefused {
			return PortNotAllowed
		}
		return Unreachable
	}
	var dnsErr *net.DNSError
	var addrErr *net.AddrError
	if errors.As(err, &dnsErr) || errors.As(err, &addrErr) { // before timeouts: a DNS timeout is a DNS failure
		return Unreachable
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return Timeout
	}
	var opErr *net.OpError
	isOp := errors.As(err, &opErr)
	if isTLS(err) || isOp && (opErr.Op == "remote error" || opErr.Op == "local error") { // TLS alerts
		return TLSError
	}
	if isOp || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		// A dial that got this far passed the guard: refusals and DNS
		// failures are *net.OpError too, and were answered above.
		return ConnectionFailed
	}
	return Unreachable
}

func isTLS(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		alert     tls.AlertError
		ech       *tls.ECHRejectionError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &record) || errors.As(err, &alert) ||
		errors.As(err, &ech) || errors.As(err, &authority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.Is(err, http.ErrSchemeMismatch)
}
