package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestUsage_UnmatchedOddMethodsAndProbesAddNoRows: requests no route
// matched, made-up methods and probes are counted in the metrics only; they
// add no usage_events rows, so an anonymous flood cannot grow the table.
func TestUsage_UnmatchedOddMethodsAndProbesAddNoRows(t *testing.T) {
	s := newAPIStack(t)
	long := strings.Repeat("Q", 1000)
	for i := range 10 {
		s.do(fmt.Sprintf("M%d%s", i, long), "/v1/jobs", nil)        // 405 on a known path
		s.do(fmt.Sprintf("M%d%s", i, long), "/v1/nowhere", nil)     // 404
		s.do(http.MethodGet, fmt.Sprintf("/v1/nowhere/%d", i), nil) // 404
		s.do(http.MethodGet, "/readyz", nil)
		s.do(http.MethodGet, "/healthz", nil)
	}
	if err := s.API.FlushUsage(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n int
	var longest int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*), coalesce(max(length(route)), 0) FROM usage_events`).Scan(&n, &longest); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d usage rows (longest route %d bytes), want none", n, longest)
	}
}
