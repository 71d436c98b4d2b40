package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// hourRow is a usage_hourly row.
type hourRow struct {
	Hour                        time.Time
	Principal, Route            string
	Count, Errors, ClientErrors int64
	P50, P95                    float64
	// LatencyLE counts the requests within each bound of slo.LatencyBuckets.
	LatencyLE []int64
}

func (s *stack) hourly(t *testing.T) []hourRow {
	t.Helper()
	rows, err := s.DB.Query(context.Background(),
		`SELECT hour, principal, route, count, errors, client_errors, p50_ms, p95_ms, latency_le FROM usage_hourly ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (hourRow, error) {
		var h hourRow
		err := r.Scan(&h.Hour, &h.Principal, &h.Route, &h.Count, &h.Errors, &h.ClientErrors, &h.P50, &h.P95, &h.LatencyLE)
		h.Hour = h.Hour.UTC()
		return h, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// seedUsage writes known events: for acme in the 10:00 hour, ten GETs with
// latencies 1..10 ms of which one 500 and one 404; for beta, one at 11:59.
func (s *stack) seedUsage(t *testing.T, day time.Time) {
	t.Helper()
	var rows [][]any
	for i := 1; i <= 10; i++ {
		status := 200
		switch i {
		case 3:
			status = 500
		case 4:
			status = 404
		}
		rows = append(rows, []any{day.Add(10*time.Hour + time.Duration(i)*time.Minute), "acme", "GET /v1/jobs", int16(status), float64(i)})
	}
	rows = append(rows, []any{day.Add(11*time.Hour + 59*time.Minute), "beta", "POST /v1/jobs", int16(201), 7.0})
	_, err := s.DB.CopyFrom(context.Background(), pgx.Identifier{"usage_events"},
		[]string{"at", "principal", "route", "status", "latency_ms"}, pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatal(err)
	}
}

func TestJobsRollup_RunTwiceGivesTheSameRows(t *testing.T) {
	s := newStack(t)
	acme := bearer(s.key("acme", "jobs:read", "jobs:write"))
	acmeAdmin := bearer(s.key("acme", "admin")) // roll-ups are admin-only
	day := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	s.seedUsage(t, day)
	// 10:30..11:10 is widened to whole hours, 10:00..12:00.
	body := map[string]any{"type": "analytics.rollup", "input": map[string]any{
		"from": "2020-01-01T10:30:00Z", "to": "2020-01-01T11:10:00Z"}}
	var results []map[string]any
	var runs [][]hourRow
	for i := 0; i < 2; i++ {
		job := s.createJob(t, body, acmeAdmin...)
		done := s.waitJob(t, job.ID, 15*time.Second, acme...)
		if done.Status != "succeeded" {
			t.Fatalf("run %d: %+v %+v", i+1, done, done.LastError)
		}
		var r map[string]any
		_ = json.Unmarshal(done.Result, &r)
		results = append(results, r)
		runs = append(runs, s.hourly(t))
	}
	want := []hourRow{
		// Latencies 1..10 ms: within 1, 2.5, 5, 10 ms and more: 1, 2, 5, 10, 10...
		{Hour: day.Add(10 * time.Hour), Principal: "acme", Route: "GET /v1/jobs", Count: 10, Errors: 1, ClientErrors: 1, P50: 5.5, P95: 9.55,
			LatencyLE: []int64{1, 2, 5, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}},
		{Hour: day.Add(11 * time.Hour), Principal: "beta", Route: "POST /v1/jobs", Count: 1, P50: 7, P95: 7,
			LatencyLE: []int64{0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
	}
	approx := cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })
	if diff := cmp.Diff(want, runs[0], approx); diff != "" {
		t.Errorf("first run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(runs[0], runs[1]); diff != "" {
		t.Errorf("second run changed rows (-first +second):\n%s", diff)
	}
	if results[0]["rows_changed"] != 2.0 || results[1]["rows_changed"] != 0.0 || results[1]["rows"] != 2.0 ||
		results[1]["from"] != "2020-01-01T10:00:00Z" || results[1]["to"] != "2020-01-01T12:00:00Z" {
		t.Errorf("results %v", results)
	}

	// GET /v1/usage: a principal sees its own rows, an admin everyone's.
	admin := bearer(s.key("ops", "admin"))
	q := "/v1/usage?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z"
	for _, c := range []struct {
		auth []string
		path string
		want []string
	}{
		{acme, q, []string{"acme"}},
		{admin, q, []string{"beta", "acme"}},
		{admin, q + "&principal=beta", []string{"beta"}},
	} {
		res := s.do(http.MethodGet, c.path, nil, c.auth...)
		var p struct {
			Data []struct {
				Principal string
				Count     int
				P95       float64 `json:"p95_ms"`
			}
		}
		res.JSON(t, &p)
		var got []string
		for _, r := range p.Data {
			got = append(got, r.Principal)
		}
		if res.Status != 200 || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("GET %s = %d, principals %v, want %v", c.path, res.Status, got, c.want)
		}
	}
	checkProblem(t, s.do(http.MethodGet, q+"&principal=beta", nil, acme...), 400, "validation_failed")

	// One row per page, following next_cursor.
	var walked []string
	for path := q + "&limit=1"; path != ""; {
		var p struct {
			Data       []struct{ Principal string }
			NextCursor *string `json:"next_cursor"`
		}
		s.do(http.MethodGet, path, nil, admin...).JSON(t, &p)
		for _, r := range p.Data {
			walked = append(walked, r.Principal)
		}
		path = ""
		if p.NextCursor != nil {
			path = q + "&limit=1&cursor=" + *p.NextCursor
		}
	}
	if fmt.Sprint(walked) != "[beta acme]" {
		t.Errorf("paging one row at a time gave %v", walked)
	}
}

func TestUsage_EveryRequestIsRecorded(t *testing.T) {
	s := newStack(t)
	auth := bearer(s.key("acme", "jobs:read"))
	s.do(http.MethodGet, "/v1/jobs", nil, auth...)
	s.do(http.MethodGet, "/v1/jobs/job_nope", nil, auth...)
	s.do(http.MethodGet, "/v1/jobs", nil) // no key
	if err := s.API.FlushUsage(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.DB.Query(context.Background(), `SELECT principal, route, status FROM usage_events WHERE route LIKE 'GET /v1/jobs%' ORDER BY at`)
	if err != nil {
		t.Fatal(err)
	}
	type event struct {
		Principal, Route string
		Status           int16
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[event])
	if err != nil {
		t.Fatal(err)
	}
	want := []event{{"acme", "GET /v1/jobs", 200}, {"acme", "GET /v1/jobs/{id}", 404}, {"anonymous", "GET /v1/jobs", 401}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("usage events (-want +got):\n%s", diff)
	}
}
