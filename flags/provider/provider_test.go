package provider

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/acme/platform/flags"
	"github.com/acme/platform/flags/store"
)

const testFlags = `{"flags": {
  "banner":   {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "metadata": {"team": "web"}},
  "color":    {"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red",
               "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "blue", null]}},
  "split":    {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
               "targeting": {"fractional": [["on", 50], ["off", 50]]}},
  "limit":    {"state": "ENABLED", "variants": {"low": 10, "high": 99.9}, "defaultVariant": "high"},
  "layout":   {"state": "ENABLED", "variants": {"a": {"cols": 2}}, "defaultVariant": "a"},
  "retired":  {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
  "codedflt": {"state": "ENABLED", "variants": {"on": true, "off": false}},
  "broken":   {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on", "targeting": {"nope": [1]}}
}}`

func testSet(t testing.TB) *store.FlagSet {
	t.Helper()
	file, err := flags.ParseFile([]byte(testFlags))
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]int64{}
	for k := range file.Flags {
		versions[k] = 7
	}
	return store.NewFlagSet(file.Flags, versions, 42)
}

// newClient returns an OpenFeature client of a static provider with the
// platform hook recording into reg.
func newClient(t testing.TB, set *store.FlagSet, reg prometheus.Registerer) *openfeature.Client {
	t.Helper()
	p := NewStatic(set)
	m, err := NewMetrics(reg, p.Current)
	if err != nil {
		t.Fatal(err)
	}
	api := isolated.NewAPI()
	api.AddHooks(NewHook(m))
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	return api.NewClient()
}

type outcome struct {
	Value   any
	Variant string
	Reason  openfeature.Reason
	Code    openfeature.ErrorCode
}

// TestProvider_ReasonsAndErrorCodes evaluates each kind of flag through the
// OpenFeature client.
func TestProvider_ReasonsAndErrorCodes(t *testing.T) {
	c := newClient(t, testSet(t), prometheus.NewRegistry())
	ctx := context.Background()
	user := openfeature.NewEvaluationContext("user-1", map[string]any{"email": "ann@example.com"})
	boolOf := func(key string, ec openfeature.EvaluationContext) outcome {
		d, _ := c.BooleanValueDetails(ctx, key, true, ec)
		return outcome{d.Value, d.Variant, d.Reason, d.ErrorCode}
	}
	stringOf := func(key string) outcome {
		d, _ := c.StringValueDetails(ctx, key, "dflt", user)
		return outcome{d.Value, d.Variant, d.Reason, d.ErrorCode}
	}
	tests := []struct {
		name string
		got  outcome
		want outcome
	}{
		{"static", boolOf("banner", user), outcome{false, "off", openfeature.StaticReason, ""}},
		{"targeting match", stringOf("color"), outcome{"#00f", "blue", openfeature.TargetingMatchReason, ""}},
		{"targeting falls to the default", func() outcome {
			d, _ := c.StringValueDetails(ctx, "color", "dflt", openfeature.NewEvaluationContext("u", map[string]any{"email": "x@y.z"}))
			return outcome{d.Value, d.Variant, d.Reason, d.ErrorCode}
		}(), outcome{"#f00", "red", openfeature.DefaultReason, ""}},
		{"split", boolOf("split", user), func() outcome {
			r := testSet(t).Snapshot.Evaluate("split", flags.EvalContext{TargetingKey: "user-1"})
			return outcome{r.Value, r.Variant, openfeature.SplitReason, ""}
		}()},
		{"disabled gives the code default", boolOf("retired", user), outcome{true, "", openfeature.DisabledReason, ""}},
		{"no default variant gives the code default", boolOf("codedflt", user), outcome{true, "", openfeature.DefaultReason, ""}},
		{"unknown flag", boolOf("nope", user), outcome{true, "", openfeature.ErrorReason, openfeature.FlagNotFoundCode}},
		{"wrong type", boolOf("color", user), outcome{true, "", openfeature.ErrorReason, openfeature.TypeMismatchCode}},
		{"broken targeting", boolOf("broken", user), outcome{true, "", openfeature.ErrorReason, openfeature.ParseErrorCode}},
		{"int truncates", func() outcome {
			d, _ := c.IntValueDetails(ctx, "limit", 1, user)
			return outcome{d.Value, d.Variant, d.Reason, d.ErrorCode}
		}(), outcome{int64(99), "high", openfeature.StaticReason, ""}},
		{"float", func() outcome {
			d, _ := c.FloatValueDetails(ctx, "limit", 1, user)
			return outcome{d.Value, d.Variant, d.Reason, d.ErrorCode}
		}(), outcome{99.9, "high", openfeature.StaticReason, ""}},
		{"object", func() outcome {
			d, _ := c.ObjectValueDetails(ctx, "layout", nil, user)
			return outcome{d.Value, d.Variant, d.Reason, d.ErrorCode}
		}(), outcome{map[string]any{"cols": 2.0}, "a", openfeature.StaticReason, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestProvider_FlagMetadataReachesTheClient(t *testing.T) {
	c := newClient(t, testSet(t), prometheus.NewRegistry())
	d, err := c.BooleanValueDetails(context.Background(), "banner", true, openfeature.EvaluationContext{})
	if err != nil {
		t.Fatal(err)
	}
	if d.FlagMetadata["team"] != "web" {
		t.Errorf("metadata = %v", d.FlagMetadata)
	}
}

// TestHook_CountsEvaluationsAndKeepsLabelsBounded checks the counter and the
// state gauges.
func TestHook_CountsEvaluationsAndKeepsLabelsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newClient(t, testSet(t), reg)
	ctx := context.Background()
	for range 3 {
		c.Boolean(ctx, "banner", true, openfeature.EvaluationContext{})
	}
	c.Boolean(ctx, "no-such-flag-1", true, openfeature.EvaluationContext{})
	c.Boolean(ctx, "no-such-flag-2", true, openfeature.EvaluationContext{})
	got := series(t, reg, "feature_flag_evaluations_total")
	want := map[string]float64{
		`flag="_unknown",reason="ERROR",variant=""`:   2,
		`flag="banner",reason="STATIC",variant="off"`: 3,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("evaluations (-want +got):\n%s", diff)
	}
	state := series(t, reg, "feature_flag_state")
	if len(state) != 8 || state[`flag="retired"`] != 0 || state[`flag="banner"`] != 1 {
		t.Errorf("feature_flag_state = %v", state)
	}
}

// series gathers one metric family as label string → value.
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[strings.Join(labels, ",")] = v
		}
	}
	return out
}

// TestHook_AddsFeatureFlagSpanEvents checks the semantic-convention event.
func TestHook_AddsFeatureFlagSpanEvents(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c := newClient(t, testSet(t), prometheus.NewRegistry())
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	c.String(ctx, "color", "dflt", openfeature.NewEvaluationContext("user-1", map[string]any{"email": "ann@example.com"}))
	c.Boolean(ctx, "missing", false, openfeature.EvaluationContext{})
	span.End()
	events := rec.Ended()[0].Events()
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	got := map[string]string{}
	for _, kv := range events[0].Attributes {
		got[string(kv.Key)] = kv.Value.String()
	}
	want := map[string]string{
		"feature_flag.key": "color", "feature_flag.provider.name": Name, "feature_flag.result.variant": "blue",
		"feature_flag.result.reason": "targeting_match", "feature_flag.context.id": "user-1",
	}
	if events[0].Name != SpanEventName {
		t.Errorf("event name %q", events[0].Name)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	var errType string
	for _, kv := range events[1].Attributes {
		if kv.Key == "error.type" {
			errType = kv.Value.AsString()
		}
	}
	if errType != "flag_not_found" {
		t.Errorf("error.type = %q", errType)
	}
}

func TestMetrics_StateGaugesFollowTheServedSet(t *testing.T) {
	reg := prometheus.NewRegistry()
	var set *store.FlagSet
	if _, err := NewMetrics(reg, func() *store.FlagSet { return set }); err != nil {
		t.Fatal(err)
	}
	if got := series(t, reg, "feature_flag_version"); len(got) != 0 {
		t.Errorf("series before any load: %v", got)
	}
	def := flags.Flag{State: flags.StateEnabled, Variants: map[string]json.RawMessage{"on": []byte("true")}, DefaultVariant: "on"}
	set = store.NewFlagSet(map[string]flags.Flag{"a": def}, map[string]int64{"a": 12}, 30)
	if got := series(t, reg, "feature_flag_version"); got[`flag="a"`] != 12 || len(got) != 1 {
		t.Errorf("feature_flag_version = %v", got)
	}
	if got := series(t, reg, "feature_flag_revision"); got[""] != 30 {
		t.Errorf("feature_flag_revision = %v", got)
	}
}

// TestMetrics_CountEvaluationsStoppedByTheBudget exports the evaluations
// that the budget stopped: here a flag stored before the limits, whose
// string doubles with each of 30 elements.
func TestMetrics_CountEvaluationsStoppedByTheBudget(t *testing.T) {
	reg := prometheus.NewRegistry()
	ones := strings.TrimSuffix(strings.Repeat("1,", 30), ",")
	def := flags.Flag{State: flags.StateEnabled, DefaultVariant: "off",
		Variants:  map[string]json.RawMessage{"on": []byte("true"), "off": []byte("false")},
		Targeting: []byte(`{"if": [{"==": [{"reduce": [[` + ones + `], {"cat": [{"var": "accumulator"}, {"var": "accumulator"}]}, "ab"]}, "x"]}, "on", "off"]}`)}
	c := newClient(t, store.NewFlagSet(map[string]flags.Flag{"doubling": def}, nil, 1), reg)
	before := series(t, reg, "feature_flag_evaluation_budget_exceeded_total")[""]
	d, _ := c.BooleanValueDetails(context.Background(), "doubling", true, openfeature.EvaluationContext{})
	if d.Value != true || d.Reason != openfeature.ErrorReason || d.ErrorCode != openfeature.GeneralCode {
		t.Errorf("evaluation = %+v, want the caller's default with a GENERAL error", d)
	}
	if got := series(t, reg, "feature_flag_evaluation_budget_exceeded_total")[""]; got != before+1 {
		t.Errorf("feature_flag_evaluation_budget_exceeded_total went from %v to %v, want one more", before, got)
	}
}
