package rollout

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/flags/guard"
)

func TestRolloutInput_ValidateReportsPointers(t *testing.T) {
	ok := func() Input {
		return Input{Flag: "checkout", Variant: "on", Steps: []Step{{10, 60}, {100, 60}},
			Guard: GuardInput{Source: GuardSourceEvents}}
	}
	zero, big := 0, 5000
	tests := []struct {
		name   string
		modify func(*Input)
		want   []string
	}{
		{"valid", func(*Input) {}, nil},
		{"bad flag key", func(in *Input) { in.Flag = "a b" }, []string{"#/flag"}},
		{"no variant", func(in *Input) { in.Variant = "" }, []string{"#/variant"}},
		{"control is the variant", func(in *Input) { in.Control = "on" }, []string{"#/control"}},
		{"no steps", func(in *Input) { in.Steps = nil }, []string{"#/steps"}},
		{"decreasing and short hold", func(in *Input) { in.Steps = []Step{{50, 0}, {40, 10}, {100, 10}} },
			[]string{"#/steps/0/hold_seconds", "#/steps/1/percent"}},
		{"must end at 100", func(in *Input) { in.Steps = []Step{{10, 1}, {50, 1}} }, []string{"#/steps/1/percent"}},
		{"must start below 100", func(in *Input) { in.Steps = []Step{{100, 1}} }, []string{"#/steps/0/percent"}},
		{"no source", func(in *Input) { in.Guard.Source = "" }, []string{"#/guard/source"}},
		{"interval", func(in *Input) { in.Guard.IntervalSeconds = &big }, []string{"#/guard/interval_seconds"}},
		{"thresholds", func(in *Input) { in.Guard.MinSamples = &zero }, []string{"#/guard/min_samples"}},
		{"prometheus without settings", func(in *Input) { in.Guard.Source = GuardSourcePrometheus }, []string{"#/guard/prometheus"}},
		{"prometheus queries without {{variant}}", func(in *Input) {
			in.Guard = GuardInput{Source: GuardSourcePrometheus, Prometheus: &PrometheusGuard{
				ErrorRateQuery: "sum(errors)", LatencyQuery: "", SamplesQuery: "sum(x)"}}
		}, []string{"#/guard/prometheus/error_rate_query", "#/guard/prometheus/latency_query", "#/guard/prometheus/samples_query"}},
		{"prometheus queries", func(in *Input) {
			in.Guard = GuardInput{Source: GuardSourcePrometheus, Prometheus: &PrometheusGuard{
				ErrorRateQuery: `sum(rate(errors{flag="{{flag}}", variant="{{variant}}"}[{{window}}]))`,
				LatencyQuery:   `max(p95{variant = "{{variant}}",flag="{{flag}}"})`}}
		}, nil},
		{"prometheus queries must match the flag and variant labels", func(in *Input) {
			in.Guard = GuardInput{Source: GuardSourcePrometheus, Prometheus: &PrometheusGuard{
				ErrorRateQuery: `sum(errors{variant="{{variant}}"})`,               // no flag: other flags' "on" cohorts mix in
				LatencyQuery:   `max(p95{flag="{{flag}}"}) + {{variant}}`,          // the variant not as a label value
				SamplesQuery:   `sum(n{flag=~"{{flag}}", variant!="{{variant}}"})`, // not equality matchers
			}}
		}, []string{"#/guard/prometheus/error_rate_query", "#/guard/prometheus/latency_query", "#/guard/prometheus/samples_query"}},
		{"prometheus settings with events", func(in *Input) { in.Guard.Prometheus = &PrometheusGuard{} }, []string{"#/guard/prometheus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok()
			tt.modify(&in)
			var got []string
			for _, e := range in.Validate() {
				got = append(got, e.Pointer)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestGuardInput_EffectiveKeepsExplicitZeros(t *testing.T) {
	zero, one := 0.0, 1
	g := GuardInput{Source: GuardSourceEvents, MaxErrorRateDelta: &zero, IntervalSeconds: &one}.Effective()
	want := guard.Defaults()
	want.MaxErrorRateDelta = 0
	if g.Guard != want || g.IntervalSeconds != 1 {
		t.Errorf("effective guard %+v", g)
	}
	if d := (GuardInput{Source: GuardSourceEvents}).Effective(); d.IntervalSeconds != DefaultIntervalSeconds || d.Guard != guard.Defaults() {
		t.Errorf("defaults %+v", d)
	}
}
