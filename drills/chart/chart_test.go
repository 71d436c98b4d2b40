package chart

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/acme/platform/drills/experiment"
)

func measurements() map[string]float64 {
	steps := []experiment.Step{
		{Rate: 10, Seconds: 1, Classes: map[string]experiment.ClassStats{"ofrep": {Requests: 10, Rate: 3, P50: 2, P90: 5, P99: 9}}},
		{Rate: 20, Seconds: 1, Classes: map[string]experiment.ClassStats{"ofrep": {Requests: 20, Rate: 6, P50: 20, P90: 50, P99: 90, Errors: 1}}},
	}
	m := experiment.StepMeasurements(steps)
	m[experiment.KneeKey("ofrep")] = 3
	return m
}

func TestFind(t *testing.T) {
	m := measurements()
	if s, ok := Find(m, "ofrep"); !ok || len(s.Points) != 2 || !s.HasKnee || s.Knee != 3 {
		t.Errorf("ofrep = %+v, %v", s, ok)
	}
	for _, name := range []string{"list", "nope", ""} {
		if _, ok := Find(m, name); ok {
			t.Errorf("%q found in a drill without its load data", name)
		}
	}
	if _, ok := Find(map[string]float64{"rto_seconds": 3}, "ofrep"); ok {
		t.Error("a drill without load data has a chart")
	}
}

func TestSVG_IsWellFormedWithTheKneeAndEverySeries(t *testing.T) {
	s, _ := Find(measurements(), "ofrep")
	out := string(SVG(s, 50))
	d := xml.NewDecoder(strings.NewReader(out))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not XML: %v\n%s", err, out)
			}
			break
		}
	}
	for _, want := range []string{`id="knee"`, "knee 3/s", `class="p50"`, `class="p90"`, `class="p99"`, `class="error rate"`, "p99 bound 50 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	s.HasKnee = false
	if strings.Contains(string(SVG(s, 50)), `id="knee"`) {
		t.Error("a class without a knee has one marked")
	}
}
