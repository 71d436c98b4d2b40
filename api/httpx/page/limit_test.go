package page_test

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/internal/validation"
)

func TestParse_LimitDefaultsTo20AndAcceptsOneToHundred(t *testing.T) {
	cases := []struct {
		name  string
		query url.Values
		want  int
	}{
		{"absent", url.Values{}, 20},
		{"one", url.Values{"limit": {"1"}}, 1},
		{"default value", url.Values{"limit": {"20"}}, 20},
		{"max", url.Values{"limit": {"100"}}, 100},
		{"leading zero is still an integer", url.Values{"limit": {"007"}}, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := page.Parse(request(tc.query), secret, "acme", nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(page.Request{Limit: tc.want}, req); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_BadLimitIs400ValidationFailedNamingLimit(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		code   string
	}{
		{"zero", []string{"0"}, "out_of_range"},
		{"above max", []string{"101"}, "out_of_range"},
		{"huge", []string{"99999999999999999999999"}, "out_of_range"},
		{"negative", []string{"-1"}, "invalid_type"},
		{"plus sign", []string{"+5"}, "invalid_type"},
		{"word", []string{"x"}, "invalid_type"},
		{"fraction", []string{"1.5"}, "invalid_type"},
		{"empty", []string{""}, "invalid_type"},
		{"exponent", []string{"1e2"}, "invalid_type"},
		{"spaces", []string{" 5"}, "invalid_type"},
		{"repeated", []string{"5", "5"}, "repeated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := page.Parse(request(url.Values{"limit": tc.values}), secret, "acme", nil)
			pe := problemOf(t, err)
			want := []validation.FieldError{{Pointer: "#/limit", Detail: "must be an integer between 1 and 100", Code: tc.code}}
			if pe.Code != problem.ValidationFailed || pe.Status() != 400 {
				t.Errorf("problem = %s %d, want validation_failed 400", pe.Code, pe.Status())
			}
			if diff := cmp.Diff(want, pe.Errors); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_BadLimitWinsOverBadCursor(t *testing.T) {
	// Field errors come first so a client fixing its request sees them all
	// before it is told to restart paging.
	_, err := page.Parse(request(url.Values{"limit": {"0"}, "cursor": {"junk"}}), secret, "acme", nil)
	if pe := problemOf(t, err); pe.Code != problem.ValidationFailed {
		t.Errorf("code = %s, want validation_failed", pe.Code)
	}
}
