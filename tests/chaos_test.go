package tests

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/acme/platform/drills/experiment"
)

// TestChaos_Suite is `make chaos`: on loopback only, capacity on a short
// ramp, then db_degraded and cache_degraded once each, through an
// in-process Toxiproxy; it prints one table (scenario, verdict, key
// measurements) and fails if a drill did not succeed with its verdict met,
// a 500 was answered, a toxic was left or an invariant broke. The load
// goes to a separate "platform api" process, so the latency, goroutines
// and RSS measured are the API's alone. Skipped unless PLATFORM_CHAOS=1:
// it is load, not a unit test.
func TestChaos_Suite(t *testing.T) {
	if os.Getenv("PLATFORM_CHAOS") != "1" {
		t.Skip("set PLATFORM_CHAOS=1 (make chaos)")
	}
	s, tp := newDegradedStackOn(t, true)
	s.startWorker()
	ops := bearer(s.key("ops", "drills:run", "drills:read"))
	runs := []struct {
		scenario string
		params   map[string]any
	}{
		{"capacity", map[string]any{"start_rate": 4, "step_rate": 12, "max_rate": 160, "step_seconds": 3}},
		{"db_degraded", map[string]any{"fault_seconds": 3, "rate_per_second": 40}},
		{"cache_degraded", map[string]any{"fault_seconds": 3, "rate_per_second": 40}},
	}
	var rows []string
	for _, r := range runs {
		d := s.startDrill(t, map[string]any{"scenario": r.scenario, "params": r.params}, ops...)
		d = s.waitDegraded(t, d.ID, 5*time.Minute, ops...)
		clean(t, tp)
		verdict := d.Status
		if d.Verdict != nil {
			verdict += "/" + *d.Verdict
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s |", r.scenario, verdict, keyMeasurements(d.Measurements)))
		for _, p := range chaosProblems(d) {
			t.Errorf("%s: %s", r.scenario, p)
		}
		if len(d.Reasons) > 0 {
			t.Logf("%s reasons: %v", r.scenario, d.Reasons)
		}
	}
	fmt.Println("\n| scenario | verdict | key measurements |\n| --- | --- | --- |\n" + strings.Join(rows, "\n"))
}

// keyMeasurements are the knees per class, the resources at the knee, the
// per-fault 500s and sheds, and the invariants.
func keyMeasurements(m map[string]float64) string {
	var parts []string
	for _, c := range experiment.Classes {
		if v, ok := m[experiment.KneeKey(c)]; ok {
			parts = append(parts, fmt.Sprintf("knee %s %.0f/s", c, v))
		}
	}
	var rest []string
	for k, v := range m {
		switch {
		case strings.HasPrefix(k, "at_knee_"), strings.HasPrefix(k, "invariant_"), strings.HasSuffix(k, "_errors_500"),
			strings.HasSuffix(k, "_shed_503"), strings.HasSuffix(k, "_p99_ms") && !strings.HasPrefix(k, "step_"), k == "pool_waits_max":
			rest = append(rest, fmt.Sprintf("%s %.4g", k, v))
		}
	}
	sort.Strings(rest)
	return strings.Join(append(parts, rest...), "; ")
}

// chaosProblems is why a drill fails the suite: not succeeded with its
// verdict met, a 500 under some fault, an invariant broken (1 held, 0
// broken) or not checked at all.
func chaosProblems(d drillJSON) []string {
	var out []string
	if d.Status != "succeeded" || d.Verdict == nil || *d.Verdict != "met" {
		v := "none"
		if d.Verdict != nil {
			v = *d.Verdict
		}
		out = append(out, fmt.Sprintf("status %s, verdict %s, want succeeded/met", d.Status, v))
	}
	seen := 0
	for k, v := range d.Measurements {
		switch {
		case strings.HasSuffix(k, "_errors_500") && v != 0:
			out = append(out, fmt.Sprintf("%s = %v", k, v))
		case strings.HasPrefix(k, "invariant_"):
			seen++
			if v != 1 {
				out = append(out, k+" broken")
			}
		}
	}
	if seen == 0 {
		out = append(out, "no invariant was checked")
	}
	sort.Strings(out)
	return out
}

// TestChaos_ProblemsFailTheSuite: the suite's judgement fails a drill for
// a missed verdict, a broken invariant, a 500 or no invariants at all.
func TestChaos_ProblemsFailTheSuite(t *testing.T) {
	met, missed := "met", "missed"
	ok := map[string]float64{"invariant_no_leak": 1, "invariant_no_lost_job": 1, "latency_errors_500": 0}
	cases := []struct {
		name string
		d    drillJSON
		want int
	}{
		{"clean", drillJSON{Status: "succeeded", Verdict: &met, Measurements: ok}, 0},
		{"missed", drillJSON{Status: "failed", Verdict: &missed, Measurements: ok}, 1},
		{"no verdict", drillJSON{Status: "aborted", Measurements: ok}, 1},
		{"leak", drillJSON{Status: "succeeded", Verdict: &met, Measurements: map[string]float64{"invariant_no_leak": 0}}, 1},
		{"500", drillJSON{Status: "succeeded", Verdict: &met, Measurements: map[string]float64{"invariant_no_leak": 1, "cut_errors_500": 2}}, 1},
		{"unchecked", drillJSON{Status: "succeeded", Verdict: &met, Measurements: map[string]float64{}}, 1},
	}
	for _, c := range cases {
		if got := chaosProblems(c.d); len(got) != c.want {
			t.Errorf("%s: problems %v, want %d", c.name, got, c.want)
		}
	}
}
