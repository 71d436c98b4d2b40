package drill

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.temporal.io/sdk/activity"

	"github.com/acme/platform/internal/validation"
)

func TestValidate_CacheLossParams(t *testing.T) {
	fe := func(pointer, code string) validation.FieldError {
		return validation.FieldError{Pointer: pointer, Code: code}
	}
	tests := []struct {
		name   string
		params string
		obj    Objectives
		want   []validation.FieldError
	}{
		{"no params", ``, Objectives{}, nil},
		{"every param, pause", `{"mode":"pause","duration_seconds":30,"rate_per_second":200,"pause_seconds":5}`, Objectives{RTOSeconds: seconds(10)}, nil},
		{"flush with bounds", `{"mode":"flush","duration_seconds":5,"rate_per_second":1}`, Objectives{}, nil},
		{"unknown mode", `{"mode":"shutdown"}`, Objectives{}, []validation.FieldError{fe("#/params/mode", "invalid")}},
		{"mode of the wrong type", `{"mode":1}`, Objectives{}, []validation.FieldError{fe("#/params/mode", "invalid")}},
		{"out of range, every one", `{"duration_seconds":4,"rate_per_second":201,"pause_seconds":0,"mode":"pause"}`, Objectives{},
			[]validation.FieldError{fe("#/params/duration_seconds", "out_of_range"), fe("#/params/rate_per_second", "out_of_range"),
				fe("#/params/pause_seconds", "out_of_range")}},
		{"fractions and strings", `{"duration_seconds":6.5,"rate_per_second":"20"}`, Objectives{},
			[]validation.FieldError{fe("#/params/duration_seconds", "out_of_range"), fe("#/params/rate_per_second", "out_of_range")}},
		{"a pause the load cannot outlast", `{"mode":"pause","duration_seconds":10,"pause_seconds":5}`, Objectives{},
			[]validation.FieldError{fe("#/params/pause_seconds", "out_of_range")}},
		{"pause_seconds without pause", `{"pause_seconds":2}`, Objectives{}, []validation.FieldError{fe("#/params/pause_seconds", "unsupported")}},
		{"the API URL is never a param", `{"api_url":"http://169.254.169.254/","rate_per_second":20}`, Objectives{},
			[]validation.FieldError{fe("#/params/api_url", "unknown_field")}},
		{"no rpo to judge", ``, Objectives{RPOSeconds: seconds(0)}, []validation.FieldError{fe("#/objectives/rpo_seconds", "unsupported")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Validate(Input{Scenario: ScenarioCacheLoss, Objectives: tt.obj, Params: json.RawMessage(tt.params)})
			for i := range got {
				if got[i].Detail == "" {
					t.Errorf("%s has no detail", got[i].Pointer)
				}
				got[i].Detail = ""
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeCacheLossParams_Defaults(t *testing.T) {
	p, errs := DecodeCacheLossParams(nil)
	want := CacheLossParams{Mode: CacheLossFlush, DurationSeconds: 10, RatePerSecond: 20, PauseSeconds: 3}
	if len(errs) != 0 || p != want {
		t.Errorf("params %+v, errors %v", p, errs)
	}
}

// cacheLossEnv runs the workflow with the cache_loss activity answering res.
func cacheLossEnv(t *testing.T, f *fakes, res CacheLossResult) (*fakes, []CacheLossInput) {
	t.Helper()
	env := newEnv(t, f)
	var got []CacheLossInput
	env.RegisterActivityWithOptions(func(_ context.Context, in CacheLossInput) (CacheLossResult, error) {
		got = append(got, in)
		return res, nil
	}, activity.RegisterOptions{Name: CacheLossActivity})
	env.ExecuteWorkflow(Workflow, Input{ID: "drl_c", Scenario: ScenarioCacheLoss, Objectives: Objectives{RTOSeconds: seconds(5)},
		Params: json.RawMessage(`{"duration_seconds":6,"rate_per_second":20}`)})
	d := finished(t, env)
	checkRecords(t, f, d)
	return f, got
}

func cleanLoad() CacheLossResult {
	return CacheLossResult{Requests: 120, Statuses: map[string]int{"2xx": 118, "429": 2}, IdempotencyKeys: 8, KeysDeleted: 40,
		FaultStartedAt: start, FaultEndedAt: start, LimitingBackSeconds: 0.25,
		Latency: map[string]float64{"p50_ms_before": 3, "p99_ms_during": 40}}
}

func TestDrill_CacheLossWithoutErrorsIsMet(t *testing.T) {
	f, inputs := cacheLossEnv(t, &fakes{}, cleanLoad())
	d := f.last(t)
	if d.Status != Succeeded || d.Verdict != Met || len(d.Reasons) != 0 {
		t.Fatalf("drill = %s %s %v", d.Status, d.Verdict, d.Reasons)
	}
	wantIn := CacheLossInput{DrillID: "drl_c", Params: CacheLossParams{Mode: CacheLossFlush, DurationSeconds: 6, RatePerSecond: 20, PauseSeconds: 3}}
	if len(inputs) != 1 || inputs[0] != wantIn {
		t.Errorf("activity inputs = %+v", inputs)
	}
	for k, v := range map[string]float64{"requests": 120, "errors_5xx": 0, "duplicates": 0, "limiting_back_seconds": 0.25,
		"rto_seconds": 0.25, "p99_ms_during": 40, "responses_429": 2, "redis_keys_deleted": 40} {
		if got, ok := d.Measurements[k]; !ok || got != v {
			t.Errorf("measurement %s = %v (%v), want %v", k, got, ok, v)
		}
	}
	if diff := cmp.Diff([]string{"cache_loss:succeeded"}, steps(d)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
}

func TestDrill_CacheLossWith5xxFails(t *testing.T) {
	res := cleanLoad()
	res.Errors5xx, res.Duplicates = 3, 1
	f, _ := cacheLossEnv(t, &fakes{}, res)
	d := f.last(t)
	if d.Status != Failed || d.Verdict != Missed || d.Measurements["errors_5xx"] != 3 || d.Measurements["duplicates"] != 1 {
		t.Fatalf("drill = %s %s %v", d.Status, d.Verdict, d.Measurements)
	}
	detail := d.Timeline[0].Detail
	if d.Timeline[0].Status != StepFailed || !strings.Contains(detail, "3 responses were 5xx (objective 0)") ||
		!strings.Contains(detail, "1 of 8 idempotency keys created more than one job") {
		t.Errorf("step = %+v", d.Timeline[0])
	}
	if !strings.Contains(strings.Join(d.Reasons, "\n"), "5xx") {
		t.Errorf("reasons = %v", d.Reasons)
	}
}

func TestDrill_CacheLossWithoutLimitingBackFails(t *testing.T) {
	res := cleanLoad()
	res.LimitingBackSeconds = -1
	f, _ := cacheLossEnv(t, &fakes{}, res)
	d := f.last(t)
	if _, ok := d.Measurements["rto_seconds"]; ok || d.Status != Failed || d.Verdict != Missed ||
		!strings.Contains(d.Timeline[0].Detail, "rate limiting was not seen back") {
		t.Errorf("drill = %s %s %v %+v", d.Status, d.Verdict, d.Measurements, d.Timeline)
	}
}
