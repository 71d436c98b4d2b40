package tests

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dashboard is the part of a Grafana dashboard that holds queries.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

// dashboardQueries lists every panel and annotation query of the dashboard,
// by where it is.
func dashboardQueries(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for i, q := range p.Targets {
			out["panel "+p.Title+" #"+string(rune('A'+i))] = q.Expr
		}
	}
	for _, a := range d.Annotations.List {
		out["annotation "+a.Name] = a.Expr
	}
	return out
}

// TestGrafanaDashboard_QueriesRunOnPrometheus runs every panel and
// annotation query of deploy/grafana/platform.json against a real
// Prometheus that scrapes a real API (its ops listener) and evaluates the
// SLO rules and alerts: a query Prometheus refuses fails the test (a query
// over a series nobody exports yet, such as the scaling ones, is not an
// error). It also checks every rule evaluates without error.
func TestGrafanaDashboard_QueriesRunOnPrometheus(t *testing.T) {
	s := newAPIStack(t)
	ops := httptest.NewServer(s.API.OpsHandler())
	t.Cleanup(ops.Close)
	for range 5 {
		s.do(http.MethodGet, "/v1/jobs", nil, bearer(s.key("acme", "jobs:read"))...)
	}
	rules := []string{}
	for _, f := range []string{"slo-rules.yaml", "alerts.yaml"} {
		abs, err := filepath.Abs(filepath.Join(repoRoot, "deploy/prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, abs)
	}
	prom := startPrometheus(t, strings.TrimPrefix(ops.URL, "http://"), rules...)

	queries := dashboardQueries(t, filepath.Join(repoRoot, "deploy/grafana/platform.json"))
	if len(queries) < 20 {
		t.Fatalf("found %d queries in the dashboard", len(queries))
	}
	nonEmpty := 0
	for where, expr := range queries {
		var answer struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []any `json:"result"`
			} `json:"data"`
		}
		promGet(t, prom+"/api/v1/query?"+neturl.Values{"query": {expr}}.Encode(), &answer)
		if answer.Status != "success" {
			t.Errorf("%s: %q: %s", where, expr, answer.Error)
		}
		if len(answer.Data.Result) > 0 {
			nonEmpty++
		}
	}
	// The API's own series answer (requests by class, readiness...): the
	// queries are not all vacuous.
	if nonEmpty < 3 {
		t.Errorf("only %d of %d queries answered any series", nonEmpty, len(queries))
	}

	eventually(t, 20*time.Second, "every rule to have been evaluated without error", func() bool {
		var answer struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name      string `json:"name"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		promGet(t, prom+"/api/v1/rules", &answer)
		ok, n := true, 0
		for _, g := range answer.Data.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health == "err" {
					t.Fatalf("rule %s: %s", r.Name, r.LastError)
				}
				ok = ok && r.Health == "ok"
			}
		}
		return ok && n > 100
	})
}

func promGet(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}
