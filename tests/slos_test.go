package tests

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"
)

// sloReport is the answer of GET /v1/slos.
type sloReport struct {
	Principal *string `json:"principal"`
	Data      []struct {
		Name      string  `json:"name"`
		Objective float64 `json:"objective"`
		Window    string  `json:"window"`
		Events    struct {
			Total int64 `json:"total"`
			Bad   int64 `json:"bad"`
		} `json:"events"`
		SLIValue        *float64           `json:"sli_value"`
		BudgetRemaining float64            `json:"error_budget_remaining"`
		BurnRates       map[string]float64 `json:"burn_rates"`
	} `json:"data"`
}

func (r sloReport) slo(t *testing.T, name string) (total, bad int64, sli *float64, budget float64, burn map[string]float64) {
	t.Helper()
	for _, d := range r.Data {
		if d.Name == name {
			if d.Window != "28d" {
				t.Errorf("%s window = %q", name, d.Window)
			}
			return d.Events.Total, d.Events.Bad, d.SLIValue, d.BudgetRemaining, d.BurnRates
		}
	}
	t.Fatalf("no SLO %s in %+v", name, r)
	return
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestSLOs_ScopeAndPrincipalFilter: slo:read (or admin) is required; a
// tenant sees only its own principal and naming any principal is the 400
// every list answers; unknown parameters are 400 with their pointer.
func TestSLOs_ScopeAndPrincipalFilter(t *testing.T) {
	s := newAPIStack(t)
	checkScope(t, s.do(http.MethodGet, "/v1/slos", nil, bearer(s.key("acme", "jobs:read", "jobs:write"))...), "slo:read")
	tenant := bearer(s.key("acme", "slo:read"))
	for _, q := range []string{"?principal=globex", "?principal=acme"} {
		p := checkProblem(t, s.do(http.MethodGet, "/v1/slos"+q, nil, tenant...), 400, "validation_failed")
		if errs, _ := p["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["pointer"] != "#/principal" {
			t.Errorf("%s: errors = %v, want one naming #/principal", q, p["errors"])
		}
	}
	p := checkProblem(t, s.do(http.MethodGet, "/v1/slos?window=1h", nil, tenant...), 400, "validation_failed")
	if errs, _ := p["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["pointer"] != "#/window" {
		t.Errorf("unknown parameter: errors = %v, want one naming #/window", p["errors"])
	}
	admin := bearer(s.key("ops", "admin"))
	checkProblem(t, s.do(http.MethodGet, "/v1/slos?principal=", nil, admin...), 400, "validation_failed")

	var own sloReport
	if r := s.do(http.MethodGet, "/v1/slos", nil, tenant...); r.Status != http.StatusOK {
		t.Fatalf("tenant: %d %s", r.Status, r.Body)
	} else {
		r.JSON(t, &own)
	}
	if own.Principal == nil || *own.Principal != "acme" || len(own.Data) != 8 {
		t.Errorf("tenant sees principal %v and %d SLOs, want acme and 8", own.Principal, len(own.Data))
	}
}

// TestSLOs_BudgetsFromUsage: after real traffic and an hour rolled up with
// failures and slow requests, GET /v1/slos answers the budget and burn rates
// those events give, per client and for all traffic.
func TestSLOs_BudgetsFromUsage(t *testing.T) {
	s := newAPIStack(t)
	acme := bearer(s.key("acme", "slo:read", "jobs:read"))
	admin := bearer(s.key("ops", "admin"))
	for range 10 {
		if r := s.do(http.MethodGet, "/v1/jobs", nil, acme...); r.Status != http.StatusOK {
			t.Fatalf("GET /v1/jobs: %d", r.Status)
		}
	}
	// Two hours ago, rolled up: 1000 reads of acme, 5 answered 5xx, 990
	// within 250 ms (latency_le[8] is the 0.25 s bound).
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	le := make([]int64, 13)
	for i := range le {
		le[i] = 990
	}
	le[12] = 1000
	if _, err := s.DB.Exec(context.Background(), `INSERT INTO usage_hourly
		(hour, principal, route, count, errors, client_errors, p50_ms, p95_ms, latency_le)
		VALUES ($1, 'acme', 'GET /v1/jobs', 1000, 5, 0, 10, 300, $2)`, hour, le); err != nil {
		t.Fatal(err)
	}
	var rep sloReport
	eventually(t, 10*time.Second, "the live reads to be recorded", func() bool {
		r := s.do(http.MethodGet, "/v1/slos", nil, acme...)
		rep = sloReport{}
		r.JSON(t, &rep)
		total, _, _, _, _ := rep.slo(t, "reads-availability")
		return r.Status == http.StatusOK && total >= 1010
	})
	total, bad, sli, budget, burn := rep.slo(t, "reads-availability")
	if bad != 5 || sli == nil || !near(*sli, 1-5/float64(total)) {
		t.Errorf("reads-availability: %d bad of %d, sli %v; want 5 bad", bad, total, sli)
	}
	if want := 1 - 5/(float64(total)*0.001); !near(budget, want) {
		t.Errorf("budget remaining = %v, want %v", budget, want)
	}
	if burn["1h"] != 0 || !near(burn["6h"], 5/float64(total)/0.001) || !near(burn["3d"], burn["6h"]) {
		t.Errorf("burn rates = %v: want 0 over the current hour, %v over 6h and 3d", burn, 5/float64(total)/0.001)
	}
	ltotal, lbad, _, lbudget, _ := rep.slo(t, "reads-latency")
	if ltotal != total || lbad < 10 || !near(lbudget, 1-float64(lbad)/(float64(ltotal)*0.01)) {
		t.Errorf("reads-latency: %d bad of %d, budget %v; want at least the 10 slow ones", lbad, ltotal, lbudget)
	}
	if wt, _, wsli, wbudget, _ := rep.slo(t, "writes-availability"); wt != 0 || wsli != nil || wbudget != 1 {
		t.Errorf("writes-availability without writes: total %d, sli %v, budget %v", wt, wsli, wbudget)
	}

	var other, all sloReport
	s.do(http.MethodGet, "/v1/slos?principal=globex", nil, admin...).JSON(t, &other)
	if total, _, _, budget, _ := other.slo(t, "reads-availability"); total != 0 || budget != 1 || *other.Principal != "globex" {
		t.Errorf("globex: total %d, budget %v, want none of acme's traffic", total, budget)
	}
	s.do(http.MethodGet, "/v1/slos", nil, admin...).JSON(t, &all)
	if total, bad, _, _, _ := all.slo(t, "reads-availability"); total < 1010 || bad != 5 || all.Principal != nil {
		t.Errorf("all traffic: %d bad of %d, principal %v", bad, total, all.Principal)
	}
}
