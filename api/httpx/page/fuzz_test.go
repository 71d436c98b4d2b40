package page_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
)

// FuzzDecodeCursor feeds arbitrary cursor parameters to Parse. It must never
// panic, and must answer 400 invalid_cursor unless the input is one of the
// cursors the test itself issued: without the secret the fuzzer cannot make
// another valid one, and every cursor has exactly one accepted spelling.
func FuzzDecodeCursor(f *testing.F) {
	codec := codecAt(t0)
	issued := map[string]page.Cursor{}
	for _, c := range []page.Cursor{
		pos,
		{CreatedAt: t0, ID: ""},
		{CreatedAt: time.Unix(0, 0).UTC(), ID: "key_01j0000000000000000000000"},
		{CreatedAt: time.Date(1900, 1, 1, 0, 0, 0, 1000, time.UTC), ID: strings.Repeat("x", 300)},
	} {
		s := codec.Encode(c, principal, filters)
		issued[s] = page.Cursor{CreatedAt: c.CreatedAt.Truncate(time.Microsecond).UTC(), ID: c.ID}
		f.Add(s)
		f.Add(s[:len(s)-1])
		f.Add(s + "A")
	}
	for _, s := range []string{"", "=", "A", "AAAA", "not a cursor", "%00", "\n", strings.Repeat("_", 80)} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/items", nil)
		r.URL.RawQuery = "cursor=" + url.QueryEscape(s)
		req, err := codec.Parse(r, principal, filters)
		if want, ok := issued[s]; ok {
			if err != nil {
				t.Fatalf("issued cursor %q refused: %v", s, err)
			}
			if diff := cmp.Diff(want, *req.After); diff != "" {
				t.Fatalf("cursor (-want +got):\n%s", diff)
			}
			return
		}
		var pe *problem.Error
		if !errors.As(err, &pe) || pe.Code != problem.InvalidCursor || pe.Status() != 400 {
			t.Fatalf("cursor %q: got %+v, %v; want 400 invalid_cursor", s, req, err)
		}
	})
}

// FuzzParseLimit checks ParseLimit against the rule stated plainly: one
// string of ASCII digits whose value is 1 to 100, else 400 naming #/limit.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"20", "1", "100", "0", "101", "-1", "+5", "x", "1.5", "", "1e2", "007", " 5", "0x10", "99999999999999999999", "١٠"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := page.ParseLimit(url.Values{"limit": {s}})
		want, valid := limitByRule(s)
		if valid {
			if err != nil || n != want {
				t.Fatalf("ParseLimit(%q) = %d, %v; want %d", s, n, err, want)
			}
			return
		}
		var pe *problem.Error
		if !errors.As(err, &pe) || pe.Code != problem.ValidationFailed || len(pe.Errors) != 1 || pe.Errors[0].Pointer != "#/limit" {
			t.Fatalf("ParseLimit(%q) = %d, %v; want validation_failed on #/limit", s, n, err)
		}
	})
}

// limitByRule is the contract's rule written independently of ParseLimit.
func limitByRule(s string) (int, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	digits := strings.TrimLeft(s, "0")
	if len(digits) == 0 || len(digits) > 3 {
		return 0, false
	}
	n, _ := strconv.Atoi(digits)
	return n, n <= 100
}
