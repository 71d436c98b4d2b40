package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPing_BelongsToItsPrincipal: a ping is its principal's, before and
// after the worker writes its row; admins see every ping (L3).
func TestPing_BelongsToItsPrincipal(t *testing.T) {
	s := newAPIStack(t)
	acme := bearer(s.key("acme", "jobs:read"))
	beta := bearer(s.key("beta", "jobs:read"))
	root := bearer(s.key("root", "admin"))
	var started struct{ ID string }
	s.do(http.MethodPost, "/v1/ping", map[string]string{"message": "acme's"}, acme...).JSON(t, &started)
	// No worker yet: the owner comes from the workflow.
	checkProblem(t, s.do(http.MethodGet, "/v1/ping/"+started.ID, nil, beta...), 404, "not_found")
	if r := s.do(http.MethodGet, "/v1/ping/"+started.ID, nil, acme...); r.Status != 200 {
		t.Fatalf("owner GET before the worker = %d %s", r.Status, r.Body)
	}
	s.startWorker()
	eventually(t, 20*time.Second, "the ping to complete", func() bool {
		return strings.Contains(string(s.do(http.MethodGet, "/v1/ping/"+started.ID, nil, acme...).Body), `"completed"`)
	})
	checkProblem(t, s.do(http.MethodGet, "/v1/ping/"+started.ID, nil, beta...), 404, "not_found")
	if r := s.do(http.MethodGet, "/v1/ping/"+started.ID, nil, root...); r.Status != 200 || !strings.Contains(string(r.Body), "acme's") {
		t.Errorf("admin GET = %d %s", r.Status, r.Body)
	}
	var owner string
	if err := s.DB.QueryRow(context.Background(), `SELECT principal FROM pings WHERE id = $1`, started.ID).Scan(&owner); err != nil || owner != "acme" {
		t.Errorf("row owner = %q, %v", owner, err)
	}
}
