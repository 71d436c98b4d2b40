package uploads

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/acme/platform/api/httpx/auth"
)

// The gate caps uploads per principal (429) and per process (503), both
// with Retry-After, and frees a slot when an upload ends.
func TestGate_CapsPerPrincipalAndInTotal(t *testing.T) {
	g := newGate(Limits{MaxConcurrent: 2, MaxPerPrincipal: 1})
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	h := g.limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		w.WriteHeader(http.StatusCreated)
	}))
	send := func(principal string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, Path, nil)
		r = r.WithContext(auth.WithPrincipal(r.Context(), auth.Principal{Name: principal}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	done := make(chan *httptest.ResponseRecorder, 2)
	for _, p := range []string{"acme", "globex"} {
		go func() { done <- send(p) }()
		<-started
	}
	for _, tc := range []struct {
		principal string
		status    int
	}{{"acme", http.StatusTooManyRequests}, {"initech", http.StatusServiceUnavailable}} {
		rec := send(tc.principal)
		if rec.Code != tc.status || rec.Header().Get("Retry-After") != "1" || rec.Header().Get("Connection") != "close" {
			t.Errorf("%s: got %d Retry-After %q Connection %q, want %d with Retry-After 1 and Connection close",
				tc.principal, rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Connection"), tc.status)
		}
	}
	close(release)
	<-done
	<-done
	go func() { <-started }()
	if rec := send("acme"); rec.Code != http.StatusCreated {
		t.Errorf("after the uploads ended: got %d, want 201", rec.Code)
	}
}
