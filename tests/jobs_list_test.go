package tests

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listJobs walks every page of path with limit, returning the ids in order.
func (s *stack) listJobs(t *testing.T, path string, limit int, headers ...string) []string {
	t.Helper()
	var ids []string
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	next := path + sep + "limit=" + strconv.Itoa(limit)
	for pages := 0; next != ""; pages++ {
		if pages > 50 {
			t.Fatal("too many pages")
		}
		res := s.do(http.MethodGet, next, nil, headers...)
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", next, res.Status, res.Body)
		}
		var p struct {
			Data       []jobJSON
			HasMore    bool    `json:"has_more"`
			NextCursor *string `json:"next_cursor"`
		}
		res.JSON(t, &p)
		if len(p.Data) > limit {
			t.Fatalf("page of %d, limit %d", len(p.Data), limit)
		}
		for _, j := range p.Data {
			ids = append(ids, j.ID)
		}
		next = ""
		if p.HasMore {
			next = res.Header.Get("Link")
			next = next[1 : len(next)-len(`>; rel="next"`)]
		}
	}
	return ids
}

func TestJobsList_FiltersAndCursors(t *testing.T) {
	s := newStack(t)
	acme := bearer(s.key("acme", "jobs:read", "jobs:write"))
	beta := bearer(s.key("beta", "jobs:read", "jobs:write"))
	admin := bearer(s.key("ops", "admin"))
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone" {
			w.WriteHeader(http.StatusGone)
		}
	})
	var created []string // acme's, oldest first
	kinds := map[string]string{}
	for i := 0; i < 5; i++ {
		path := "/ok"
		if i%2 == 1 {
			path = "/gone"
		}
		j := s.createJob(t, webhookJob(rc.URL+path, map[string]any{"i": i}, nil), acme...)
		created, kinds[j.ID] = append(created, j.ID), "webhook"
	}
	// Roll-ups are admin-only; an admin key of acme's makes one of acme's jobs.
	rollup := s.createJob(t, map[string]any{"type": "analytics.rollup",
		"input": map[string]any{"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}}, bearer(s.key("acme", "admin"))...)
	created, kinds[rollup.ID] = append(created, rollup.ID), "analytics.rollup"
	other := s.createJob(t, webhookJob(rc.URL+"/ok", map[string]any{}, nil), beta...)
	status := map[string]string{}
	for _, id := range created {
		status[id] = s.waitJob(t, id, 15*time.Second, acme...).Status
	}
	s.waitJob(t, other.ID, 15*time.Second, beta...)

	newestFirst := slices.Clone(created)
	slices.Reverse(newestFirst)
	filter := func(keep func(id string) bool) []string {
		var out []string
		for _, id := range newestFirst {
			if keep(id) {
				out = append(out, id)
			}
		}
		return out
	}
	cases := []struct {
		name string
		path string
		auth []string
		want []string
	}{
		{"all of acme's", "/v1/jobs", acme, newestFirst},
		{"failed", "/v1/jobs?status=failed", acme, filter(func(id string) bool { return status[id] == "failed" })},
		{"succeeded webhooks", "/v1/jobs?status=succeeded&type=webhook", acme,
			filter(func(id string) bool { return status[id] == "succeeded" && kinds[id] == "webhook" })},
		{"roll-ups", "/v1/jobs?type=analytics.rollup", acme, []string{rollup.ID}},
		{"beta sees its own only", "/v1/jobs", beta, []string{other.ID}},
		{"admin sees all", "/v1/jobs", admin, append([]string{other.ID}, newestFirst...)},
		{"admin filters by principal", "/v1/jobs?principal=beta", admin, []string{other.ID}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, limit := range []int{2, 7} {
				if got := s.listJobs(t, c.path, limit, c.auth...); !slices.Equal(got, c.want) {
					t.Errorf("limit %d: %v, want %v", limit, got, c.want)
				}
			}
		})
	}
	if n := len(filter(func(id string) bool { return status[id] == "failed" })); n != 2 {
		t.Fatalf("%d failed jobs, want 2 (the /gone ones): %v", n, status)
	}

	// A cursor is bound to its filters and its principal.
	var first struct {
		NextCursor *string `json:"next_cursor"`
	}
	s.do(http.MethodGet, "/v1/jobs?status=failed&limit=1", nil, acme...).JSON(t, &first)
	if first.NextCursor == nil {
		t.Fatal("no next cursor")
	}
	checkProblem(t, s.do(http.MethodGet, "/v1/jobs?status=succeeded&limit=1&cursor="+*first.NextCursor, nil, acme...), 400, "invalid_cursor")
	checkProblem(t, s.do(http.MethodGet, "/v1/jobs?status=failed&limit=1&cursor="+*first.NextCursor, nil, beta...), 400, "invalid_cursor")

	// Another principal's job is not found, whatever the operation.
	checkProblem(t, s.do(http.MethodGet, "/v1/jobs/"+other.ID, nil, acme...), 404, "not_found")
	checkProblem(t, s.do(http.MethodGet, "/v1/jobs/"+other.ID+"/attempts", nil, acme...), 404, "not_found")
	checkProblem(t, s.do(http.MethodPost, "/v1/jobs/"+other.ID+"/cancel", nil, acme...), 404, "not_found")
	if s.job(t, other.ID, admin...).ID != other.ID {
		t.Error("admin cannot read beta's job")
	}
}
