package page

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/acme/platform/api/httpx/web"
)

// Page is the body of a list response.
type Page[T any] struct {
	Data       []T     `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`

	// What Write needs for the Link header, kept from Build so the link
	// carries exactly the filters the cursor was bound to.
	filters url.Values
	limit   int
}

// Build makes the page from rows fetched with req.FetchLimit(): when there is
// the extra row, it is dropped and the next cursor points at the last row
// kept. key returns a row's sort key as read from the database.
func Build[T any](rows []T, req Request, key func(T) Cursor, secret []byte, principal string, filters url.Values) Page[T] {
	limit := req.limit()
	p := Page[T]{Data: rows, filters: filters, limit: limit}
	if p.Data == nil {
		p.Data = []T{} // the contract's empty list is [], never null
	}
	if len(rows) <= limit {
		return p
	}
	p.Data = rows[:limit:limit]
	next := Codec{Secret: secret}.Encode(key(rows[limit-1]), principal, filters)
	p.HasMore, p.NextCursor = true, &next
	return p
}

// Write answers 200 with p as JSON and, when there is a next page, a Link
// header to it: a URL relative to the request, with the filters, the cursor
// and the current limit. On the last page there is no Link.
func Write[T any](w http.ResponseWriter, r *http.Request, p Page[T]) error {
	if p.Data == nil {
		p.Data = []T{}
	}
	if p.HasMore && p.NextCursor != nil {
		w.Header().Set("Link", "<"+nextURL(r, p.filters, *p.NextCursor, p.limit)+`>; rel="next"`)
	}
	return web.WriteJSON(w, http.StatusOK, p)
}

// nextURL is path?filters&cursor=…&limit=…, every part escaped, the filters
// sorted as in the cursor's binding.
func nextURL(r *http.Request, filters url.Values, cursor string, limit int) string {
	if limit < 1 {
		limit = DefaultLimit
	}
	var b strings.Builder
	b.WriteString(r.URL.EscapedPath())
	b.WriteByte('?')
	for _, key := range filterKeys(filters) {
		for _, v := range slices.Sorted(slices.Values(filters[key])) {
			b.WriteString(url.QueryEscape(key) + "=" + url.QueryEscape(v) + "&")
		}
	}
	b.WriteString(ParamCursor + "=" + url.QueryEscape(cursor))
	b.WriteString("&" + ParamLimit + "=" + strconv.Itoa(limit))
	return b.String()
}
