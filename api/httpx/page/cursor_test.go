package page_test

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
)

var (
	pos     = page.Cursor{CreatedAt: time.Date(2026, 2, 28, 9, 30, 15, 123456000, time.UTC), ID: "job_01hzy3"}
	filters = url.Values{"owner": {"acme"}, "status": {"running", "queued"}}
)

// flipByte decodes a cursor, flips one bit of byte i (from the end when
// negative) and encodes it again, as an attacker editing it would.
func flipByte(t *testing.T, cursor string, i int) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0x01
	return base64.RawURLEncoding.EncodeToString(b)
}

// withChar replaces the character at i, as a client mangling the text would.
func withChar(cursor string, i int, c byte) string {
	b := []byte(cursor)
	b[i] = c
	return string(b)
}

func TestParse_RejectsInvalidCursorsWith400InvalidCursor(t *testing.T) {
	valid := codecAt(t0).Encode(pos, "acme", filters)
	lastChar := valid[len(valid)-1]
	otherLast := byte('A')
	if lastChar == 'A' {
		otherLast = 'Q'
	}
	cases := []struct {
		name      string
		cursors   []string
		now       time.Time
		secret    []byte
		principal string
		filters   url.Values
		detail    string
	}{
		{name: "byte flipped in version", cursors: []string{flipByte(t, valid, 0)}},
		{name: "byte flipped in issued at", cursors: []string{flipByte(t, valid, 8)}},
		{name: "byte flipped in created at", cursors: []string{flipByte(t, valid, 16)}},
		{name: "byte flipped in id", cursors: []string{flipByte(t, valid, 17)}},
		{name: "byte flipped in mac", cursors: []string{flipByte(t, valid, -1)}},
		{name: "last character changed", cursors: []string{withChar(valid, len(valid)-1, otherLast)}},
		{name: "truncated by one", cursors: []string{valid[:len(valid)-1]}},
		{name: "truncated to the payload", cursors: []string{valid[:len(valid)-43]}},
		{name: "truncated to nothing useful", cursors: []string{valid[:4]}},
		{name: "padded", cursors: []string{valid + "=="}},
		{name: "newline inside", cursors: []string{valid[:10] + "\n" + valid[10:]}},
		{name: "standard base64 alphabet", cursors: []string{strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "+/"}},
		{name: "garbage", cursors: []string{"not a cursor"}},
		{name: "valid base64 of garbage", cursors: []string{base64.RawURLEncoding.EncodeToString(make([]byte, 80))}},
		{name: "very long", cursors: []string{strings.Repeat("A", 10000)}},
		{name: "empty but present", cursors: []string{""}, detail: "cursor must not be empty; omit it to get the first page"},
		{name: "repeated", cursors: []string{valid, valid}, detail: "cursor must appear at most once"},
		{name: "another principal", cursors: []string{valid}, principal: "globex"},
		{name: "another filter value", cursors: []string{valid}, filters: url.Values{"owner": {"acme"}, "status": {"running"}}},
		{name: "an added filter", cursors: []string{valid}, filters: url.Values{"owner": {"acme"}, "status": {"running", "queued"}, "kind": {"x"}}},
		{name: "no filters", cursors: []string{valid}, filters: url.Values{}},
		{name: "filter value moved to another key", cursors: []string{valid}, filters: url.Values{"owner": {"acme", "running"}, "status": {"queued"}}},
		{name: "signed with another secret", cursors: []string{valid}, secret: otherSecret},
		{name: "expired one second after 24 h", cursors: []string{valid}, now: t0.Add(24*time.Hour + time.Second),
			detail: "cursor has expired; start again from the first page"},
		{name: "issued far in the future", cursors: []string{valid}, now: t0.Add(-time.Hour)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := codecAt(t0)
			if !tc.now.IsZero() {
				c = codecAt(tc.now)
			}
			if tc.secret != nil {
				c.Secret = tc.secret
			}
			principal, f := "acme", filters
			if tc.principal != "" {
				principal = tc.principal
			}
			if tc.filters != nil {
				f = tc.filters
			}
			if tc.detail == "" {
				tc.detail = "cursor is not valid for this request; start again from the first page"
			}
			_, err := c.Parse(request(url.Values{"cursor": tc.cursors}), principal, f)
			pe := problemOf(t, err)
			got := []any{pe.Code, pe.Status(), pe.Detail}
			if diff := cmp.Diff([]any{problem.InvalidCursor, 400, tc.detail}, got); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_AcceptsCursorForSamePrincipalAndFilters(t *testing.T) {
	valid := codecAt(t0).Encode(pos, "acme", filters)
	cases := []struct {
		name    string
		now     time.Time
		filters url.Values
		limit   string
	}{
		{name: "right away", now: t0, filters: filters},
		{name: "filter values in another order", now: t0, filters: url.Values{"status": {"queued", "running"}, "owner": {"acme"}}},
		{name: "limit and cursor in the filters are ignored", now: t0,
			filters: url.Values{"owner": {"acme"}, "status": {"running", "queued"}, "limit": {"3"}, "cursor": {"x"}}},
		{name: "filter key without values is ignored", now: t0,
			filters: url.Values{"owner": {"acme"}, "status": {"running", "queued"}, "kind": nil}},
		{name: "limit changed between pages", now: t0, filters: filters, limit: "99"},
		{name: "exactly 24 h later", now: t0.Add(24 * time.Hour), filters: filters},
		{name: "clock of another instance slightly behind", now: t0.Add(-time.Minute), filters: filters},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"cursor": {valid}}
			wantLimit := 20
			if tc.limit != "" {
				q.Set("limit", tc.limit)
				wantLimit = 99
			}
			got, err := codecAt(tc.now).Parse(request(q), "acme", tc.filters)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(page.Request{Limit: wantLimit, After: &pos}, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCursor_RoundTripsCreatedAtAtMicrosecondPrecision(t *testing.T) {
	cases := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"microseconds kept", time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)},
		{"nanoseconds truncated", time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)},
		{"other zone comes back as the same instant in UTC",
			time.Date(2026, 1, 2, 3, 4, 5, 999999000, time.FixedZone("CEST", 7200)), time.Date(2026, 1, 2, 1, 4, 5, 999999000, time.UTC)},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC)},
		{"far future", time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := page.Cursor{CreatedAt: tc.in, ID: "id with spaces/and ünïcode"}
			c := codecAt(t0).Encode(in, "acme", nil)
			got, err := codecAt(t0).Parse(request(url.Values{"cursor": {c}}), "acme", nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := page.Cursor{CreatedAt: tc.want, ID: in.ID}
			if diff := cmp.Diff(want, *got.After); diff != "" {
				t.Errorf("cursor (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncode_IsURLSafe(t *testing.T) {
	c := page.Encode(page.Cursor{CreatedAt: time.Now(), ID: "?&=/+ #"}, secret, "acme", filters)
	if url.QueryEscape(c) != c {
		t.Errorf("cursor %q needs escaping in a URL", c)
	}
}

func TestParse_ShortSecretIsAnInternalError(t *testing.T) {
	_, err := page.Parse(request(url.Values{}), []byte("short"), "acme", nil)
	if err == nil {
		t.Fatal("Parse accepted a short secret")
	}
	if code := problem.From(err).Code; code != problem.Internal {
		t.Errorf("code = %s, want internal", code)
	}
}
