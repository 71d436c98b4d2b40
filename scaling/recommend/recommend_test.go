package recommend

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/scaling"
)

func f(v float64) *float64 { return &v }

// policy is HPA's defaults with min 1 and max 10.
func policy(mutate ...func(*scaling.Policy)) scaling.Policy {
	p, errs := scaling.Build(scaling.TargetWorker, scaling.PolicyInput{
		MaxReplicas: ptr(int32(10)), Signals: &scaling.Signals{P95LatencyMs: f(100)}})
	if len(errs) > 0 {
		panic(errs)
	}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func ago(s int) time.Time { return now.Add(-time.Duration(s) * time.Second) }

func latency(v *float64) Reading { return Reading{Name: scaling.SignalLatency, Value: v, Target: 100} }
func backlog(v *float64) Reading {
	return Reading{Name: scaling.SignalBacklog, Value: v, Target: 10, Total: true}
}

// The cases follow the HPA's documented algorithm
// (kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale).
func TestDecide_HPACases(t *testing.T) {
	noDownWindow := func(p *scaling.Policy) { p.ScaleDown.StabilizationSeconds = 0 }
	tests := []struct {
		name     string
		in       Input
		want     int32
		combined int32
		reason   string
	}{
		{"200m of 100m on 1 replica doubles it", Input{Current: 1, Readings: []Reading{latency(f(200))}, Policy: policy()}, 2, 2, ""},
		{"within tolerance 0.1 is a no-op", Input{Current: 4, Readings: []Reading{latency(f(109))}, Policy: policy()}, 4, 4, scaling.ReasonTolerance},
		{"just outside tolerance scales", Input{Current: 4, Readings: []Reading{latency(f(111))}, Policy: policy()}, 5, 5, ""},
		{"50m of 100m halves without a window", Input{Current: 4, Readings: []Reading{latency(f(50))}, Policy: policy(noDownWindow)}, 2, 2, ""},
		{"scale-down takes the highest recommendation in its window", Input{Current: 4, Readings: []Reading{latency(f(50))},
			Policy: policy(), History: []Point{{ago(200), 3}, {ago(100), 4}}}, 4, 2, scaling.ReasonWindow},
		{"scale-down to the highest in the window, not below", Input{Current: 4, Readings: []Reading{latency(f(50))},
			Policy: policy(), History: []Point{{ago(400), 4}, {ago(100), 3}}}, 3, 2, ""},
		{"scale-up takes the lowest recommendation in its window", Input{Current: 1, Readings: []Reading{latency(f(500))},
			Policy: policy(func(p *scaling.Policy) { p.ScaleUp.StabilizationSeconds = 60 }), History: []Point{{ago(30), 2}}}, 2, 5, ""},
		{"rate limit: 100% or 4 pods per 15 s, the larger", Input{Current: 1, Readings: []Reading{latency(f(1000))}, Policy: policy()}, 5, 10, ""},
		{"rate limit counts the changes in the period", Input{Current: 5, Readings: []Reading{latency(f(1000))}, Policy: policy(),
			Changes: []Change{{ago(10), 4}}}, 5, 50, scaling.ReasonRatePolicy},
		{"rate limit: a change outside the period does not count", Input{Current: 5, Readings: []Reading{latency(f(1000))}, Policy: policy(),
			Changes: []Change{{ago(20), 4}}}, 10, 50, ""},
		{"scale-down 100% per period goes to the recommendation", Input{Current: 10, Readings: []Reading{latency(f(10))}, Policy: policy(noDownWindow)}, 1, 1, ""},
		{"scale-down 1 replica per period", Input{Current: 10, Readings: []Reading{latency(f(10))}, Policy: policy(noDownWindow, func(p *scaling.Policy) {
			p.ScaleDown.MaxStepPercent, p.ScaleDown.MaxStepReplicas = 0, 1
		})}, 9, 1, ""},
		{"max bounds the count", Input{Current: 10, Readings: []Reading{latency(f(1000))}, Policy: policy()}, 10, 100, scaling.ReasonBounds},
		{"min bounds the count", Input{Current: 2, Readings: []Reading{latency(f(1))}, Policy: policy(noDownWindow, func(p *scaling.Policy) { p.MinReplicas = 2 })}, 2, 1, scaling.ReasonBounds},
		{"backlog is a total: ceil(35/10)", Input{Current: 1, Readings: []Reading{backlog(f(35))}, Policy: policy()}, 4, 4, ""},
		{"the largest recommendation wins", Input{Current: 2, Readings: []Reading{latency(f(150)), backlog(f(50))}, Policy: policy()}, 5, 5, ""},
		{"no scale-down while a signal is missing", Input{Current: 3, Readings: []Reading{latency(nil), backlog(f(1))}, Policy: policy(noDownWindow)}, 3, 3, scaling.ReasonMissingSignal},
		{"a missing signal does not stop a scale-up", Input{Current: 1, Readings: []Reading{latency(nil), backlog(f(30))}, Policy: policy()}, 3, 3, ""},
		{"an empty backlog recommends zero, bounded by min", Input{Current: 3, Readings: []Reading{backlog(f(0))}, Policy: policy(noDownWindow)}, 1, 0, ""},
		{"nothing read holds the count", Input{Current: 3, Readings: []Reading{latency(nil)}, Policy: policy(noDownWindow)}, 3, 3, scaling.ReasonMissingSignal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Now = now
			r := Decide(tt.in)
			if r.Desired != tt.want || r.Combined != tt.combined || r.Reason != tt.reason {
				t.Errorf("desired %d combined %d reason %q; want %d %d %q (%+v)", r.Desired, r.Combined, r.Reason,
					tt.want, tt.combined, tt.reason, r)
			}
		})
	}
}

func TestDecide_HistoryKeepsTheWindowAndAddsThisInterval(t *testing.T) {
	r := Decide(Input{Now: now, Current: 2, Readings: []Reading{latency(f(100))}, Policy: policy(),
		History: []Point{{ago(400), 9}, {ago(100), 3}}})
	want := []Point{{ago(100), 3}, {now, 2}}
	if d := cmp.Diff(want, r.History); d != "" {
		t.Error(d)
	}
}

func TestPruneChanges(t *testing.T) {
	got := PruneChanges([]Change{{ago(60), 1}, {ago(5), 2}}, now, policy())
	if d := cmp.Diff([]Change{{ago(5), 2}}, got); d != "" {
		t.Error(d)
	}
}
