package page_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/acme/platform/api/httpx/page"
)

type row struct {
	ID string
	At time.Time
}

func rowKey(r row) page.Cursor { return page.Cursor{CreatedAt: r.At, ID: r.ID} }

func rows(n int) []row {
	out := make([]row, n)
	for i := range out {
		out[i] = row{ID: string(rune('z' - i)), At: t0.Add(-time.Duration(i) * time.Second)}
	}
	return out
}

var ignorePageInternals = cmpopts.IgnoreUnexported(page.Page[row]{})

func TestBuild_DropsTheExtraRowAndContinuesAfterTheLastKept(t *testing.T) {
	req := page.Request{Limit: 3}
	fetched := rows(req.FetchLimit())
	p := page.Build(fetched, req, rowKey, secret, "acme", filters)

	if diff := cmp.Diff(fetched[:3], p.Data); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if !p.HasMore || p.NextCursor == nil {
		t.Fatalf("has_more = %v, next_cursor = %v; want a next page", p.HasMore, p.NextCursor)
	}
	next, err := page.Parse(request(url.Values{"cursor": {*p.NextCursor}}), secret, "acme", filters)
	if err != nil {
		t.Fatalf("Parse(next_cursor): %v", err)
	}
	if diff := cmp.Diff(rowKey(fetched[2]), *next.After); diff != "" {
		t.Errorf("next position (-want +got):\n%s", diff)
	}
}

func TestBuild_LastPageHasNoMoreAndNoCursor(t *testing.T) {
	cases := []struct {
		name string
		rows []row
	}{
		{"nil rows", nil},
		{"empty rows", []row{}},
		{"fewer than the limit", rows(2)},
		{"exactly the limit", rows(3)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := page.Build(tc.rows, page.Request{Limit: 3}, rowKey, secret, "acme", nil)
			want := page.Page[row]{Data: tc.rows}
			if want.Data == nil {
				want.Data = []row{}
			}
			if diff := cmp.Diff(want, p, ignorePageInternals); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequest_WhereIsTrueOnTheFirstPageAndARowComparisonAfter(t *testing.T) {
	cases := []struct {
		name       string
		req        page.Request
		wantClause string
		wantArgs   []any
		wantFetch  int
	}{
		{"first page", page.Request{Limit: 20}, "TRUE", nil, 21},
		{"after a cursor", page.Request{Limit: 5, After: &pos}, "(created_at, id) < ($3, $4)", []any{pos.CreatedAt, pos.ID}, 6},
		{"hand-made zero request still bounded", page.Request{}, "TRUE", nil, 21},
		{"hand-made huge limit clamped", page.Request{Limit: 1000}, "TRUE", nil, 101},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clause, args := tc.req.Where("created_at", "id", 3)
			got := []any{clause, args, tc.req.FetchLimit()}
			want := []any{tc.wantClause, tc.wantArgs, tc.wantFetch}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWrite_LinkHeaderCarriesEscapedFiltersCursorAndLimit(t *testing.T) {
	f := url.Values{"name": {"a b&c>"}, "owner": {"acme"}, "status": {"running", "queued"}}
	req := page.Request{Limit: 3}
	p := page.Build(rows(4), req, rowKey, secret, "acme", f)
	r := httptest.NewRequest(http.MethodGet, "/v1/it%20ems?owner=acme&name=a+b%26c%3E&status=running&status=queued&limit=3", nil)
	w := httptest.NewRecorder()
	if err := page.Write(w, r, p); err != nil {
		t.Fatal(err)
	}

	link := w.Result().Header.Get("Link")
	want := "</v1/it%20ems?name=a+b%26c%3E&owner=acme&status=queued&status=running&cursor=" + *p.NextCursor + `&limit=3>; rel="next"`
	if link != want {
		t.Fatalf("Link = %s\nwant   %s", link, want)
	}
	// Following the link must reproduce the filters the cursor is bound to.
	next := linkRequest(t, link)
	filtersFromLink := next.URL.Query()
	if _, err := page.Parse(next, secret, "acme", filtersFromLink); err != nil {
		t.Errorf("Parse(link): %v", err)
	}
}

func TestWrite_LastPageIsEmptyArrayNullCursorAndNoLink(t *testing.T) {
	cases := []struct {
		name string
		page page.Page[row]
		body string
	}{
		{"built from no rows", page.Build[row](nil, page.Request{Limit: 5}, rowKey, secret, "acme", nil),
			`{"data":[],"has_more":false,"next_cursor":null}` + "\n"},
		{"zero page", page.Page[row]{}, `{"data":[],"has_more":false,"next_cursor":null}` + "\n"},
		{"some rows", page.Build(rows(1), page.Request{Limit: 5}, rowKey, secret, "acme", nil),
			`{"data":[{"ID":"z","At":"2026-03-01T12:00:00Z"}],"has_more":false,"next_cursor":null}` + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			if err := page.Write(w, httptest.NewRequest(http.MethodGet, "/v1/items", nil), tc.page); err != nil {
				t.Fatal(err)
			}
			res := w.Result()
			got := []any{res.StatusCode, res.Header.Get("Content-Type"), res.Header.Values("Link"), w.Body.String()}
			want := []any{200, "application/json", []string(nil), tc.body}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

var linkPattern = regexp.MustCompile(`^<([^>]*)>; rel="next"$`)

// linkRequest is the GET a client makes to follow a Link header.
func linkRequest(t testing.TB, link string) *http.Request {
	t.Helper()
	m := linkPattern.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("Link %q is not <url>; rel=\"next\"", link)
	}
	return httptest.NewRequest(http.MethodGet, m[1], nil)
}
