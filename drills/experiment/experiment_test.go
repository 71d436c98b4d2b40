package experiment

import (
	"strings"
	"testing"
	"time"
)

func step(rate float64, c ClassStats) Step {
	return Step{Rate: rate, Seconds: 5, Classes: map[string]ClassStats{ClassList: c}}
}

func TestFindKnee(t *testing.T) {
	ok := func(rate, p99 float64) ClassStats { return ClassStats{Requests: 1000, Rate: rate, P99: p99} }
	errs := func(rate float64, n int) ClassStats {
		return ClassStats{Requests: 1000, Errors: n, Rate: rate, P99: 10}
	}
	for _, tc := range []struct {
		name    string
		steps   []Step
		rate    float64
		ok      bool
		reached bool
	}{
		{"knee at the latency bound", []Step{step(10, ok(5, 20)), step(20, ok(10, 90)), step(30, ok(15, 300))}, 10, true, true},
		{"errors at 0.1 % break it", []Step{step(10, errs(5, 0)), step(20, errs(10, 1))}, 5, true, true},
		{"just under 0.1 % holds", []Step{step(10, ClassStats{Requests: 10000, Errors: 9, Rate: 5, P99: 10})}, 5, true, false},
		{"never within", []Step{step(10, ok(5, 900))}, 0, false, true},
		{"not reached in the ramp", []Step{step(10, ok(5, 20)), step(20, ok(10, 30))}, 10, true, false},
		{"a later recovery does not move the knee", []Step{step(10, ok(5, 20)), step(20, ok(10, 900)), step(30, ok(15, 20))}, 5, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := FindKnee(tc.steps, ClassList, 250)
			if k.Rate != tc.rate || k.OK != tc.ok || k.Reached != tc.reached {
				t.Fatalf("FindKnee = %+v, want rate %v ok %v reached %v", k, tc.rate, tc.ok, tc.reached)
			}
		})
	}
}

func TestBreaker(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type obs struct {
		at       float64
		err, p99 float64
	}
	for _, tc := range []struct {
		name string
		obs  []obs
		want string // substring of the last answer; "" means keep going
	}{
		{"within", []obs{{0, 0, 10}, {1, 0, 10}, {5, 0, 10}}, ""},
		{"brief spike forgiven", []obs{{0, 0.9, 10}, {1, 0.9, 10}, {2, 0, 10}, {3, 0.9, 10}}, ""},
		{"errors past grace", []obs{{0, 0.9, 10}, {1, 0.9, 10}, {2.5, 0.9, 10}}, "error rate 90.0 % above 50.0 % for 2.5s"},
		{"p99 past grace", []obs{{0, 0, 9000}, {3, 0, 9000}}, "p99 9000 ms above 5000 ms"},
		{"at grace still running", []obs{{0, 0, 9000}, {2, 0, 9000}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Breaker{MaxErrorRate: 0.5, MaxP99: 5000, Grace: 2 * time.Second}
			var got string
			for _, o := range tc.obs {
				got = b.Observe(at(o.at), o.err, o.p99)
			}
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("Observe = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMeasurementsRoundTrip(t *testing.T) {
	steps := []Step{
		{Rate: 10, Classes: map[string]ClassStats{ClassCreate: {Requests: 10, Rate: 2.5, P50: 1, P90: 2, P99: 3}}},
		{Rate: 20, Classes: map[string]ClassStats{ClassCreate: {Requests: 10, Errors: 1, Rate: 5, P50: 4, P90: 5, P99: 6}}},
	}
	m := StepMeasurements(steps)
	m[KneeKey(ClassCreate)] = 2.5
	series := FromMeasurements(m)
	if len(series) != 1 || series[0].Class != ClassCreate || len(series[0].Points) != 2 || !series[0].HasKnee {
		t.Fatalf("series = %+v", series)
	}
	if p := series[0].Points[1]; p.Rate != 5 || p.P99 != 6 || p.ErrorRate != 0.1 {
		t.Fatalf("point = %+v", p)
	}
}
