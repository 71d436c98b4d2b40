package drill

import (
	"net/http"
	"testing"

	"github.com/acme/platform/drills/experiment"
	"github.com/acme/platform/slo"
)

// TestDefaultP99_AreTheSLOThresholds: the capacity knee of each endpoint
// class is searched against the latency SLO of the slo class its requests
// fall into, not a bound of its own.
func TestDefaultP99_AreTheSLOThresholds(t *testing.T) {
	routes := map[string][2]string{
		experiment.ClassGetByID: {http.MethodGet, "/v1/jobs/{id}"},
		experiment.ClassList:    {http.MethodGet, "/v1/jobs"},
		experiment.ClassCreate:  {http.MethodPost, "/v1/jobs"},
		experiment.ClassOFREP:   {http.MethodPost, "/ofrep/v1/evaluate/flags/{key}"},
	}
	for _, class := range experiment.Classes {
		r, ok := routes[class]
		if !ok {
			t.Fatalf("class %s has no route here", class)
		}
		sc := slo.ClassOf(r[0], r[1])
		var want float64
		for _, o := range slo.Objectives {
			if o.Class == sc && o.SLI == slo.Latency {
				want = o.Threshold * 1000
			}
		}
		if got := experiment.DefaultP99[class]; want == 0 || got != want {
			t.Errorf("%s (%s): DefaultP99 %v ms, SLO latency threshold %v ms", class, sc, got, want)
		}
	}
}
