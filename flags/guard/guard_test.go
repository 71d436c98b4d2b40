package guard

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func cohort(samples, errors int, p95 float64) Cohort {
	return Cohort{Samples: samples, Errors: errors, P95LatencyMs: p95}
}

// TestDefaultsMatchTheRolloutSpec pins the default thresholds.
func TestDefaultsMatchTheRolloutSpec(t *testing.T) {
	want := Guard{MinSamples: 200, MaxErrorRateDelta: 0.01, MaxLatencyRatio: 1.25, FailureLimit: 2, MaxInconclusiveExtensions: 3}
	if diff := cmp.Diff(want, Defaults()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if errs := Defaults().Validate(); len(errs) != 0 {
		t.Errorf("defaults are invalid: %v", errs)
	}
}

// TestValidateReportsEachBadThreshold covers every field.
func TestValidateReportsEachBadThreshold(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Guard)
		want   []string
	}{
		{"zero min samples", func(g *Guard) { g.MinSamples = 0 }, []string{"#/guard/min_samples"}},
		{"negative delta", func(g *Guard) { g.MaxErrorRateDelta = -0.1 }, []string{"#/guard/max_error_rate_delta"}},
		{"delta above 1", func(g *Guard) { g.MaxErrorRateDelta = 1.5 }, []string{"#/guard/max_error_rate_delta"}},
		{"NaN delta", func(g *Guard) { g.MaxErrorRateDelta = math.NaN() }, []string{"#/guard/max_error_rate_delta"}},
		{"zero latency ratio", func(g *Guard) { g.MaxLatencyRatio = 0 }, []string{"#/guard/max_latency_ratio"}},
		{"infinite latency ratio", func(g *Guard) { g.MaxLatencyRatio = math.Inf(1) }, []string{"#/guard/max_latency_ratio"}},
		{"error rate cap above 1", func(g *Guard) { g.MaxErrorRate = 2 }, []string{"#/guard/max_error_rate"}},
		{"negative latency cap", func(g *Guard) { g.MaxP95LatencyMs = -1 }, []string{"#/guard/max_p95_latency_ms"}},
		{"zero failure limit", func(g *Guard) { g.FailureLimit = 0 }, []string{"#/guard/failure_limit"}},
		{"negative extensions", func(g *Guard) { g.MaxInconclusiveExtensions = -1 }, []string{"#/guard/max_inconclusive_extensions"}},
		{"zero extensions is allowed", func(g *Guard) { g.MaxInconclusiveExtensions = 0 }, nil},
		{"everything wrong", func(g *Guard) { *g = Guard{MaxLatencyRatio: -1} }, []string{
			"#/guard/min_samples", "#/guard/max_latency_ratio", "#/guard/failure_limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := Defaults()
			tt.modify(&g)
			var got []string
			for _, e := range g.Validate() {
				got = append(got, e.Pointer)
				if e.Code != "out_of_range" || e.Detail == "" {
					t.Errorf("error %v lacks a code or message", e)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestJudgeVerdicts covers each verdict and the numbers reported.
func TestJudgeVerdicts(t *testing.T) {
	g := Defaults()
	capped := Defaults()
	capped.MaxErrorRate, capped.MaxP95LatencyMs = 0.05, 300
	type want struct {
		Verdict Verdict
		Codes   []string
		Delta   float64
		Ratio   float64
	}
	tests := []struct {
		name string
		g    Guard
		o    Observation
		want want
	}{
		{"healthy treatment passes", g, Observation{cohort(1000, 10, 100), cohort(1000, 12, 110)}, want{Pass, nil, 0.002, 1.1}},
		{"treatment better than control passes", g, Observation{cohort(1000, 50, 200), cohort(1000, 0, 100)}, want{Pass, nil, -0.05, 0.5}},
		{"delta exactly at the limit passes", g, Observation{cohort(1000, 10, 100), cohort(1000, 20, 125)}, want{Pass, nil, 0.01, 1.25}},
		{"error delta above the limit fails", g, Observation{cohort(1000, 10, 100), cohort(1000, 21, 100)}, want{Fail, []string{ReasonErrorRateDelta}, 0.011, 1}},
		{"latency ratio above the limit fails", g, Observation{cohort(1000, 0, 100), cohort(1000, 0, 126)}, want{Fail, []string{ReasonLatencyRatio}, 0, 1.26}},
		{"both breaches are reported", g, Observation{cohort(500, 0, 100), cohort(500, 50, 200)}, want{Fail, []string{ReasonErrorRateDelta, ReasonLatencyRatio}, 0.1, 2}},
		{"absolute error cap fails even when control is as bad", capped, Observation{cohort(1000, 60, 100), cohort(1000, 60, 100)}, want{Fail, []string{ReasonErrorRateCap}, 0, 1}},
		{"absolute latency cap fails even when control is as slow", capped, Observation{cohort(1000, 0, 400), cohort(1000, 0, 400)}, want{Fail, []string{ReasonLatencyCap}, 0, 1}},
		{"too few control samples is inconclusive", g, Observation{cohort(199, 0, 100), cohort(1000, 0, 100)}, want{Inconclusive, []string{ReasonTooFewSamples}, 0, 1}},
		{"too few treatment samples is inconclusive even when bad", g, Observation{cohort(1000, 0, 100), cohort(10, 10, 900)}, want{Inconclusive, []string{ReasonTooFewSamples}, 1, 1}},
		{"empty cohorts are inconclusive without NaN", g, Observation{}, want{Inconclusive, []string{ReasonTooFewSamples}, 0, 1}},
		{"zero errors on both sides passes", g, Observation{cohort(300, 0, 50), cohort(300, 0, 50)}, want{Pass, nil, 0, 1}},
		{"no latency on either side is not compared", g, Observation{cohort(300, 0, 0), cohort(300, 0, 0)}, want{Pass, nil, 0, 1}},
		{"zero control latency is inconclusive", g, Observation{cohort(300, 0, 0), cohort(300, 0, 80)}, want{Inconclusive, []string{ReasonLatencyRatioUnknown}, 0, 0}},
		{"zero control latency with an error breach fails", g, Observation{cohort(300, 0, 0), cohort(300, 30, 80)}, want{Fail, []string{ReasonErrorRateDelta, ReasonLatencyRatioUnknown}, 0.1, 0}},
		{"zero treatment latency passes on latency", g, Observation{cohort(300, 0, 80), cohort(300, 0, 0)}, want{Pass, nil, 0, 0}},
		{"more errors than samples is invalid", g, Observation{cohort(300, 301, 1), cohort(300, 0, 1)}, want{Inconclusive, []string{ReasonInvalidObservation}, 0, 1}},
		{"negative samples are invalid", g, Observation{cohort(300, 0, 1), cohort(-1, 0, 1)}, want{Inconclusive, []string{ReasonInvalidObservation}, 0, 1}},
		{"NaN latency is invalid", g, Observation{cohort(300, 0, math.NaN()), cohort(300, 0, 1)}, want{Inconclusive, []string{ReasonInvalidObservation}, 0, 1}},
		{"invalid guard cannot pass", Guard{}, Observation{cohort(300, 0, 1), cohort(300, 0, 1)}, want{Inconclusive, []string{ReasonInvalidGuard}, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Judge(tt.g, tt.o)
			var codes []string
			for _, r := range c.Reasons {
				codes = append(codes, r.Code)
			}
			got := want{c.Verdict, codes, c.ErrorRateDelta, c.LatencyRatio}
			approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if _, err := json.Marshal(c); err != nil && tt.name != "NaN latency is invalid" {
				t.Errorf("check does not encode: %v", err)
			}
			if c.Guard != tt.g && !math.IsNaN(tt.g.MaxErrorRateDelta) {
				t.Errorf("check does not record its guard")
			}
		})
	}
}

// TestJudgeReportsRatesAndThresholds checks the numbers a person reads.
func TestJudgeReportsRatesAndThresholds(t *testing.T) {
	c := Judge(Defaults(), Observation{cohort(1000, 10, 100), cohort(800, 40, 150)})
	want := Check{
		Verdict: Fail,
		Reasons: []Reason{
			{ReasonErrorRateDelta, "treatment error rate 0.0500 is 0.0400 above control's 0.0100; the limit is 0.0100"},
			{ReasonLatencyRatio, "treatment p95 latency 150.0 ms is 1.500 times control's 100.0 ms; the limit is 1.250"},
		},
		ControlErrorRate: 0.01, TreatmentErrorRate: 0.05, ErrorRateDelta: 0.04, LatencyRatio: 1.5,
		Observation: Observation{cohort(1000, 10, 100), cohort(800, 40, 150)},
		Guard:       Defaults(),
	}
	approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-12 })
	if diff := cmp.Diff(want, c, approx); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
