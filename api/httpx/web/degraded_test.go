package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/acme/platform/api/httpx/problem"
)

func TestWriteError_DependencyDownIs503WithRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"refused", fmt.Errorf("get job: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), 503},
		{"deadline", fmt.Errorf("list: %w", context.DeadlineExceeded), 503},
		{"dropped", fmt.Errorf("scan: %w", io.ErrUnexpectedEOF), 503},
		{"closed conn", errors.New("insert: conn closed"), 503},
		{"a bug stays 500", errors.New("nil map"), 500},
		{"a chosen problem stays", problem.Newf(problem.NotFound, "no job"), 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteError(w, httptest.NewRequest(http.MethodGet, "/v1/jobs", nil), tc.err)
			if w.Code != tc.status || (tc.status == 503) != (w.Header().Get("Retry-After") != "") {
				t.Fatalf("status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
			}
		})
	}
}
