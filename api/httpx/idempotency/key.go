package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"mime"
	"net/http"
	"strings"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/internal/ids"
)

// Header is the request header that carries the key.
const Header = "Idempotency-Key"

// maxKeyLen is the contract's (and Stripe's) limit on a normalised key.
const maxKeyLen = 255

// scope is what a key belongs to. The middleware puts it in the request's
// context so handlers can derive resource ids from it. keyID, the API key
// that sent the request, separates records (a replay goes only to the
// credential that made the request) but not resource ids, which stay
// (principal, route, key) so that another credential's retry collides with
// the resource instead of duplicating it.
type scope struct {
	principal string
	keyID     string
	method    string
	route     string
	key       string
}

type scopeKey struct{}

func withScope(ctx context.Context, sc scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, sc)
}

func scopeFrom(ctx context.Context) (scope, bool) {
	sc, ok := ctx.Value(scopeKey{}).(scope)
	return sc, ok
}

// Key returns the normalised Idempotency-Key of the current request (quotes
// of a structured-field string removed) and whether the request had one that
// the middleware honoured. GET, PUT, PATCH and DELETE never have one.
func Key(ctx context.Context) (string, bool) {
	sc, ok := scopeFrom(ctx)
	return sc.key, ok
}

// ResourceID returns the id a handler should give the resource it creates:
// derived from (principal, route, key) when the request carries an
// Idempotency-Key, so that a retry after the idempotency record was lost (a
// Redis flush or outage) collides with the first resource instead of
// duplicating it; a fresh time-sortable id otherwise.
func ResourceID(ctx context.Context, prefix string) string {
	sc, ok := scopeFrom(ctx)
	if !ok {
		return ids.New(prefix)
	}
	return ids.Derive(prefix, sc.principal, sc.route, sc.key)
}

// parseKey validates the Idempotency-Key field values and returns the
// normalised key. The draft defines the field as an RFC 8941 sf-string; the
// contract also accepts the bare characters, so `"abc"` and `abc` are one key.
// A value that starts with a quote must be a well-formed sf-string: anything
// else (unterminated, bad escape, parameters after it) is rejected rather
// than guessed at.
func parseKey(values []string) (string, error) {
	if len(values) != 1 {
		return "", invalidKey("send exactly one Idempotency-Key header")
	}
	key := values[0]
	if strings.HasPrefix(key, `"`) {
		var ok bool
		if key, ok = unquote(key); !ok {
			return "", invalidKey("a quoted Idempotency-Key must be a structured-field string such as \"abc\"")
		}
	}
	if key == "" || len(key) > maxKeyLen || !printableASCII(key) {
		return "", invalidKey("Idempotency-Key must be 1 to 255 printable ASCII characters")
	}
	return key, nil
}

// unquote parses an RFC 8941 sf-string (section 4.2.5) that fills all of s.
func unquote(s string) (string, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i == len(s) || (s[i] != '"' && s[i] != '\\') {
				return "", false
			}
			b.WriteByte(s[i])
		case c == '"':
			return b.String(), i == len(s)-1
		case c < 0x20 || c > 0x7e:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false // no closing quote
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func invalidKey(detail string) error {
	return problem.New(problem.InvalidIdempotencyKey, detail)
}

// digest is a hex SHA-256 of parts, each length-prefixed so that
// ("/v1/jobs", "ab") and ("/v1/jobsa", "b") differ.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// BodySHA256 is the hex SHA-256 of a request body.
func BodySHA256(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// fingerprint identifies a request: its method, escaped path (the ids in it),
// query in canonical order, media type and body. Any difference under one key
// is "a different request" (422), never a replay of another resource's answer.
func fingerprint(r *http.Request, bodySHA256 string) string {
	return digest(r.Method, r.URL.EscapedPath(), r.URL.Query().Encode(), mediaType(r.Header.Get("Content-Type")), bodySHA256)
}

// mediaType normalises a Content-Type, so that spelling (case, spaces) does
// not make a retry a different request.
func mediaType(v string) string {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return strings.TrimSpace(v)
	}
	return mime.FormatMediaType(mt, params)
}

type bodyDigestKey struct{}

// WithBodySHA256 tells the middleware the request body's SHA-256 (hex), for
// routes that receive their body before it runs (uploads spool theirs to
// disk): the middleware then fingerprints the request without reading the
// body, which stays for the handler.
func WithBodySHA256(ctx context.Context, sum string) context.Context {
	return context.WithValue(ctx, bodyDigestKey{}, sum)
}

func bodySHA256From(ctx context.Context) (string, bool) {
	sum, ok := ctx.Value(bodyDigestKey{}).(string)
	return sum, ok
}
