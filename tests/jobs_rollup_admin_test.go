package tests

import (
	"net/http"
	"testing"
)

// TestJobsRollup_IsAdminOnly: analytics.rollup aggregates every tenant's
// usage, so only admin keys start it (M8).
func TestJobsRollup_IsAdminOnly(t *testing.T) {
	s := newAPIStack(t)
	tenant := bearer(s.key("acme", "jobs:read", "jobs:write"))
	body := map[string]any{"type": "analytics.rollup", "input": map[string]any{
		"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}}
	checkScope(t, s.do(http.MethodPost, "/v1/jobs", body, tenant...), "admin")
	var list struct{ Data []any }
	s.do(http.MethodGet, "/v1/jobs", nil, tenant...).JSON(t, &list)
	if len(list.Data) != 0 {
		t.Errorf("a refused roll-up is listed: %v", list.Data)
	}
	s.createJob(t, body, bearer(s.key("ops", "admin"))...)
}
