package page

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/acme/platform/api/httpx/problem"
)

// A cursor is base64url(payload || HMAC-SHA256(secret, binding || payload))
// where payload is
//
//	version (1 byte) | issued at, Unix seconds (8) | created_at, Unix µs (8) | id
//
// and binding is a domain label, the principal and the canonical filters.
// Principal and filters are bound through the MAC only, not carried, so the
// cursor stays short and reveals nothing about them; a cursor replayed by
// another principal or with other filters simply fails the MAC check.
const (
	cursorVersion = 1
	headerLen     = 1 + 8 + 8
	macLen        = sha256.Size
	// maxCursorLen caps the work an attacker can make us do per request;
	// it leaves room for ids of up to about 3 KB.
	maxCursorLen = 4096
	// maxSkew tolerates clocks of API instances that disagree a little:
	// a cursor issued by one may reach another whose clock is behind.
	maxSkew = 5 * time.Minute
	// macLabel separates cursor MACs from anything else signed with the
	// same secret, and versions the binding.
	macLabel = "acme/platform page cursor v1\x00"
)

// encoding is strict so that each cursor has exactly one spelling: a
// non-strict decoder ignores the unused low bits of the last character, and
// an edited cursor could then still pass.
var encoding = base64.RawURLEncoding.Strict()

// Reasons a cursor is refused. They travel in problem.Error.Err, which is
// logged, never shown.
var (
	errEmpty     = errors.New("cursor is empty")
	errRepeated  = errors.New("cursor is repeated")
	errMalformed = errors.New("cursor is not url-safe base64 of the right length")
	errBadMAC    = errors.New("cursor signature does not match")
	errVersion   = errors.New("cursor version is unknown")
	errExpired   = errors.New("cursor has expired")
	errFuture    = errors.New("cursor was issued in the future")
)

// Encode returns the cursor for c, issued now, for principal and filters.
// See Codec.Encode.
func Encode(c Cursor, secret []byte, principal string, filters url.Values) string {
	return Codec{Secret: secret}.Encode(c, principal, filters)
}

// Encode returns the opaque, URL-safe cursor for pos, bound to principal and
// filters and issued at the codec's now. CreatedAt is kept in Unix
// microseconds, the precision of a Postgres timestamptz, so a value read from
// the database comes back exactly and no row is skipped or repeated.
func (c Codec) Encode(pos Cursor, principal string, filters url.Values) string {
	payload := make([]byte, headerLen, headerLen+len(pos.ID)+macLen)
	payload[0] = cursorVersion
	binary.BigEndian.PutUint64(payload[1:9], uint64(c.now().Unix()))
	binary.BigEndian.PutUint64(payload[9:17], uint64(pos.CreatedAt.UnixMicro()))
	payload = append(payload, pos.ID...)
	return encoding.EncodeToString(append(payload, c.mac(principal, filters, payload)...))
}

// decode checks raw and returns its position. The MAC is checked, in
// constant time, before any byte of the payload is looked at.
func (c Codec) decode(raw, principal string, filters url.Values) (Cursor, error) {
	if raw == "" {
		return Cursor{}, errEmpty
	}
	if len(raw) > maxCursorLen || !isBase64URL(raw) {
		return Cursor{}, errMalformed
	}
	b, err := encoding.DecodeString(raw)
	if err != nil || len(b) < headerLen+macLen {
		return Cursor{}, errMalformed
	}
	payload, tag := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(tag, c.mac(principal, filters, payload)) {
		return Cursor{}, errBadMAC
	}
	return c.open(payload)
}

// open reads a payload whose MAC has been checked.
func (c Codec) open(payload []byte) (Cursor, error) {
	if payload[0] != cursorVersion {
		return Cursor{}, errVersion
	}
	issued := int64(binary.BigEndian.Uint64(payload[1:9]))
	now := c.now().Unix()
	switch {
	case now-issued > int64(CursorTTL/time.Second):
		return Cursor{}, errExpired
	case issued-now > int64(maxSkew/time.Second):
		return Cursor{}, errFuture
	}
	micros := int64(binary.BigEndian.Uint64(payload[9:17]))
	return Cursor{CreatedAt: time.UnixMicro(micros).UTC(), ID: string(payload[headerLen:])}, nil
}

func (c Codec) mac(principal string, filters url.Values, payload []byte) []byte {
	m := hmac.New(sha256.New, c.Secret)
	m.Write([]byte(macLabel))
	m.Write(appendString(nil, principal))
	m.Write(canonicalFilters(filters))
	m.Write(payload)
	return m.Sum(nil)
}

// canonicalFilters encodes filters so that equal filter sets give equal bytes
// and different ones never do: keys sorted, each key's values sorted (a
// repeated filter is a set), every string length-prefixed so no two
// encodings collide, limit and cursor left out, and keys without values left
// out because a URL cannot carry them (the Link header would drop them).
func canonicalFilters(filters url.Values) []byte {
	keys := filterKeys(filters)
	b := binary.AppendUvarint(nil, uint64(len(keys)))
	for _, key := range keys {
		b = appendString(b, key)
		vs := slices.Sorted(slices.Values(filters[key]))
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	return b
}

// filterKeys returns the sorted keys of filters that a cursor is bound to.
func filterKeys(filters url.Values) []string {
	keys := make([]string, 0, len(filters))
	for key, vs := range filters {
		if key == ParamLimit || key == ParamCursor || len(vs) == 0 {
			continue
		}
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// isBase64URL reports whether s uses only the URL-safe alphabet. The decoder
// alone would skip embedded newlines, giving one cursor many spellings.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		ok := ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_'
		if !ok {
			return false
		}
	}
	return true
}

// cursorProblem turns a refusal into the contract's 400 invalid_cursor. Only
// expiry gets its own detail: it is the one a well-behaved client meets, and
// it is told only after the MAC proved the cursor ours. Every other refusal
// says the same, so the answer reveals nothing about why a forgery failed.
func cursorProblem(reason error) error {
	detail := "cursor is not valid for this request; start again from the first page"
	switch {
	case errors.Is(reason, errExpired):
		detail = "cursor has expired; start again from the first page"
	case errors.Is(reason, errEmpty):
		detail = "cursor must not be empty; omit it to get the first page"
	case errors.Is(reason, errRepeated):
		detail = "cursor must appear at most once"
	}
	return &problem.Error{Code: problem.InvalidCursor, Detail: detail, Err: reason}
}
