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
// measurements) and fails if a drill did not end, a 500 was answered, a
// toxic was left or an invariant broke. Skipped unless PLATFORM_CHAOS=1:
// it is load, not a unit test.
func TestChaos_Suite(t *testing.T) {
	if os.Getenv("PLATFORM_CHAOS") != "1" {
		t.Skip("set PLATFORM_CHAOS=1 (make chaos)")
	}
	s, tp := newDegradedStack(t)
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
		for k, v := range d.Measurements {
			if strings.HasSuffix(k, "_errors_500") && v != 0 {
				t.Errorf("%s: %s = %v", r.scenario, k, v)
			}
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
