package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
)

// ofrepEvaluate is the prefix of OFREP flag evaluations: POSTs that only
// read, so they are charged as reads.
const ofrepEvaluate = "/ofrep/v1/evaluate/"

// isRead reports whether r belongs to the read class: GET, HEAD and OFREP
// evaluations. Every other method is a write.
func isRead(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		// Cleaned, so that /ofrep/v1/evaluate/../../v1/jobs is not a read.
		return strings.HasPrefix(path.Clean(r.URL.Path)+"/", ofrepEvaluate)
	}
	return false
}

// clientIP names the client for per-IP quotas. It uses the connection's
// address only: X-Forwarded-For is set by the client unless a trusted proxy
// overwrites it, so trusting it would let anyone pick a fresh quota. IPv6
// clients are grouped by /64, the block one subscriber usually holds, so that
// rotating addresses within it gains nothing.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}
