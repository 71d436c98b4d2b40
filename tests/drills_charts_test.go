package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/acme/platform/drills/experiment"
	"github.com/acme/platform/internal/testenv"
)

// insertDrillRow writes a finished drill's row as the record activity
// would, with measurements m.
func (s *stack) insertDrillRow(t *testing.T, id, principal, scenario string, m map[string]float64) {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.Exec(context.Background(), `INSERT INTO drills (id, principal, scenario, status, verdict, measurements, workflow_id, run_id)
		VALUES ($1, $2, $3, 'succeeded', 'met', $4, $1, 'run')`, id, principal, scenario, raw); err != nil {
		t.Fatal(err)
	}
}

// TestDrills_Charts serves a capacity drill's charts as SVG from its
// recorded measurements, links them from the report, and answers 404 for
// another principal's drill (as for a missing one), an unknown chart and a
// drill without load data, 403 without drills:read.
func TestDrills_Charts(t *testing.T) {
	s := newAPIStack(t) // no worker: the rows are written here
	acme := bearer(s.key("acme", "drills:read"))
	other := bearer(s.key("globex", "drills:read"))
	sfx := testenv.Suffix()
	capID, restoreID := "drl_cap_"+sfx, "drl_restore_"+sfx
	m := experiment.StepMeasurements([]experiment.Step{
		{Rate: 10, Seconds: 3, Classes: map[string]experiment.ClassStats{experiment.ClassList: {Requests: 30, Rate: 3, P50: 2, P90: 4, P99: 8}}},
		{Rate: 20, Seconds: 3, Classes: map[string]experiment.ClassStats{experiment.ClassList: {Requests: 60, Rate: 6, P50: 90, P90: 200, P99: 400}}},
	})
	m[experiment.KneeKey(experiment.ClassList)] = 3
	s.insertDrillRow(t, capID, "acme", "capacity", m)
	s.insertDrillRow(t, restoreID, "acme", "restore_verify", map[string]float64{"rto_seconds": 4})

	r := s.do(http.MethodGet, "/v1/drills/"+capID+"/charts/list", nil, acme...)
	if r.Status != 200 || r.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(r.Body), `id="knee"`) ||
		!strings.Contains(string(r.Body), "p99 bound 250 ms") {
		t.Fatalf("chart = %d %s %.300s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	report := s.do(http.MethodGet, "/v1/drills/"+capID+"/report", nil, acme...)
	if !strings.Contains(string(report.Body), "](/v1/drills/"+capID+"/charts/list)") {
		t.Errorf("report does not link the chart:\n%s", report.Body)
	}

	checkProblem(t, s.do(http.MethodGet, "/v1/drills/"+capID+"/charts/list", nil, bearer(s.key("acme", "jobs:read"))...), 403, "insufficient_scope")
	missing := checkProblem(t, s.do(http.MethodGet, "/v1/drills/drl_missing/charts/list", nil, other...), 404, "not_found")
	hidden := checkProblem(t, s.do(http.MethodGet, "/v1/drills/"+capID+"/charts/list", nil, other...), 404, "not_found")
	if strings.ReplaceAll(hidden["detail"].(string), capID, "X") != strings.ReplaceAll(missing["detail"].(string), "drl_missing", "X") {
		t.Errorf("another principal's drill answers %q, a missing one %q", hidden["detail"], missing["detail"])
	}
	checkProblem(t, s.do(http.MethodGet, "/v1/drills/"+capID+"/charts/pie", nil, acme...), 404, "not_found")
	checkProblem(t, s.do(http.MethodGet, "/v1/drills/"+capID+"/charts/ofrep", nil, acme...), 404, "not_found") // no ofrep load
	checkProblem(t, s.do(http.MethodGet, "/v1/drills/"+restoreID+"/charts/list", nil, acme...), 404, "not_found")
	checkProblem(t, s.do(http.MethodGet, "/v1/drills/"+capID+"/charts/list?width=9", nil, acme...), 400, "validation_failed")
}
