// Package page is the keyset pagination every list endpoint shares: it reads
// and validates limit and cursor, signs and checks cursors, gives the SQL
// fragment that continues after a cursor, and writes the page with its Link
// header, as the contract's "Pagination (lists)" section says.
//
// Order is always newest first, created_at DESC, id DESC. The query must run on
// an index of exactly those columns:
//
//	CREATE INDEX jobs_page ON jobs (created_at DESC, id DESC);
//
// (or (created_at, id), which Postgres scans backwards). A filter column that
// every query pins with equality, such as the owning principal, may lead the
// index: (principal, created_at DESC, id DESC). Never OFFSET: an offset
// re-reads every skipped row and shifts when rows are inserted or deleted,
// whereas a keyset query starts where the last page ended, so rows that
// existed when paging began appear exactly once whatever changes meanwhile.
//
// A list handler:
//
//	const listJobsSQL = `
//	SELECT id, name, created_at FROM jobs
//	WHERE principal = $1 AND %s
//	ORDER BY created_at DESC, id DESC
//	LIMIT $2`
//
//	req, err := page.Parse(r, secret, principal, filters)
//	if err != nil {
//		return err
//	}
//	where, after := req.Where("created_at", "id", 3)
//	rows, err := db.Query(ctx, fmt.Sprintf(listJobsSQL, where),
//		append([]any{principal, req.FetchLimit()}, after...)...)
//	// … scan into jobs …
//	p := page.Build(jobs, req, jobKey, secret, principal, filters)
//	return page.Write(w, r, p)
package page

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/internal/validation"
)

// Limits of the contract.
const (
	// DefaultLimit is the page size when the request has no limit.
	DefaultLimit = 20
	// MaxLimit is the largest page a client may ask for.
	MaxLimit = 100
	// CursorTTL is how long a cursor stays valid after it was issued. It
	// bounds how long a leaked cursor is useful and how long a client may
	// walk a list that keeps changing underneath it.
	CursorTTL = 24 * time.Hour
	// MinSecretLen is the shortest signing secret accepted; it matches
	// the configuration's rule for PLATFORM_SECRET_KEY.
	MinSecretLen = 32
)

// Query parameter names. They are never part of the filters a cursor is bound
// to: limit may change between pages, and the cursor cannot sign itself.
const (
	ParamLimit  = "limit"
	ParamCursor = "cursor"
)

// limitDetail is the one human detail for every bad limit, so a client sees
// the rule whatever it got wrong.
const limitDetail = "must be an integer between 1 and 100"

// errShortSecret is a configuration bug, so it surfaces as a 500, not a 400.
var errShortSecret = errors.New("page: cursor secret is shorter than 32 bytes")

// Cursor is a keyset position: the sort key of the last row of a page. The
// next page starts strictly after it in created_at DESC, id DESC order.
// CreatedAt travels at microsecond precision, as Postgres stores it; an ID
// must stay under about 3 KB for its cursor to fit the accepted length.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// Request is a validated page request.
type Request struct {
	// Limit is the page size, 1 to MaxLimit.
	Limit int
	// After is the position to continue from; nil on the first page.
	After *Cursor
}

// Codec signs and checks cursors with a secret. Its clock is a field so
// tests can issue cursors in the past and check expiry without sleeping.
// The zero Now means time.Now.
type Codec struct {
	Secret []byte
	Now    func() time.Time
}

func (c Codec) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// Parse reads limit and cursor from r's query with a Codec on the real clock.
// See Codec.Parse.
func Parse(r *http.Request, secret []byte, principal string, filters url.Values) (Request, error) {
	return Codec{Secret: secret}.Parse(r, principal, filters)
}

// Parse reads limit and cursor from r's query.
//
// filters are the values of the collection's filter parameters as the
// handler applies them (limit and cursor, if present, are ignored); the
// cursor must have been issued for the same principal and the same filters.
// A bad limit is a 400 validation_failed naming #/limit; a cursor that is
// empty, repeated, tampered with, expired, signed with another secret, or
// issued to another principal or for other filters is a 400 invalid_cursor.
func (c Codec) Parse(r *http.Request, principal string, filters url.Values) (Request, error) {
	if len(c.Secret) < MinSecretLen {
		return Request{}, errShortSecret
	}
	q := r.URL.Query()
	limit, err := ParseLimit(q)
	if err != nil {
		return Request{}, err
	}
	raw, present := q[ParamCursor]
	if !present {
		return Request{Limit: limit}, nil
	}
	if len(raw) != 1 {
		return Request{}, cursorProblem(errRepeated)
	}
	after, err := c.decode(raw[0], principal, filters)
	if err != nil {
		return Request{}, cursorProblem(err)
	}
	return Request{Limit: limit, After: &after}, nil
}

// ParseLimit reads the limit parameter of q: absent means DefaultLimit;
// anything but one plain decimal integer from 1 to MaxLimit is a 400
// validation_failed whose errors[] names #/limit. A handler that collects
// its own field errors can take them from the returned *problem.Error.
func ParseLimit(q url.Values) (int, error) {
	vs, present := q[ParamLimit]
	switch {
	case !present:
		return DefaultLimit, nil
	case len(vs) != 1:
		return 0, limitProblem("repeated")
	case !isDigits(vs[0]):
		// Atoi alone would accept "+5" and "-0"; the contract wants a plain
		// integer, and anything else (1.5, 1e2, "") is a client bug to report.
		return 0, limitProblem("invalid_type")
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < 1 || n > MaxLimit {
		return 0, limitProblem("out_of_range")
	}
	return n, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func limitProblem(code string) error {
	return problem.Validation(validation.FieldError{Pointer: "#/" + ParamLimit, Detail: limitDetail, Code: code})
}

// limit is the page size to use: a Request built by hand rather than by
// Parse may hold anything, and a query must never run unbounded.
func (q Request) limit() int {
	if q.Limit < 1 {
		return DefaultLimit
	}
	return min(q.Limit, MaxLimit)
}
