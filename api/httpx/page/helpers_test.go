package page_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/acme/platform/api/httpx/page"
	"github.com/acme/platform/api/httpx/problem"
)

var (
	secret      = []byte("test-secret-0123456789abcdef-0123456789")
	otherSecret = []byte("another-secret-0123456789abcdef-01234567")
	// t0 is the fixed "now" of tests that need a clock.
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// codecAt is a codec whose clock is stopped at now.
func codecAt(now time.Time) page.Codec {
	return page.Codec{Secret: secret, Now: func() time.Time { return now }}
}

// request is a GET of /v1/items with query q.
func request(q url.Values) *http.Request {
	return httptest.NewRequest(http.MethodGet, "/v1/items?"+q.Encode(), nil)
}

// problemOf returns the problem inside err, failing the test when there is none.
func problemOf(t testing.TB, err error) *problem.Error {
	t.Helper()
	var pe *problem.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *problem.Error", err)
	}
	return pe
}
