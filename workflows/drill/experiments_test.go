package drill

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/platform/drills/experiment"
	"github.com/acme/platform/drills/invariants"
	"github.com/acme/platform/internal/validation"
)

func TestValidate_ExperimentParams(t *testing.T) {
	fe := func(pointer, code string) validation.FieldError {
		return validation.FieldError{Pointer: pointer, Code: code}
	}
	for _, tc := range []struct {
		scenario, params string
		obj              Objectives
		want             []validation.FieldError
	}{
		{ScenarioCapacity, ``, Objectives{}, nil},
		{ScenarioCapacity, `{"start_rate":10,"step_rate":5,"max_rate":50,"step_seconds":2}`, Objectives{}, nil},
		{ScenarioCapacity, `{"start_rate":0,"step_seconds":61}`, Objectives{},
			[]validation.FieldError{fe("#/params/start_rate", "out_of_range"), fe("#/params/step_seconds", "out_of_range")}},
		{ScenarioCapacity, `{"start_rate":100,"max_rate":50}`, Objectives{}, []validation.FieldError{fe("#/params/max_rate", "out_of_range")}},
		{ScenarioCapacity, `{"target":"http://169.254.169.254/"}`, Objectives{}, []validation.FieldError{fe("#/params/target", "unknown_field")}},
		{ScenarioCapacity, `[]`, Objectives{}, []validation.FieldError{fe("#/params", "invalid_type")}},
		{ScenarioCapacity, ``, Objectives{RTOSeconds: seconds(1)}, []validation.FieldError{fe("#/objectives/rto_seconds", "unsupported")}},
		{ScenarioDBDegraded, `{"faults":["latency","cut"],"rate_per_second":50,"grace_seconds":0}`, Objectives{}, nil},
		{ScenarioCacheDegraded, `{"faults":["latency","latency"]}`, Objectives{}, []validation.FieldError{fe("#/params/faults", "invalid")}},
		{ScenarioDBDegraded, `{"faults":["meteor"],"abort_p99_ms":1}`, Objectives{},
			[]validation.FieldError{fe("#/params/faults", "invalid"), fe("#/params/abort_p99_ms", "out_of_range")}},
		{ScenarioDBDegraded, `{"proxy":"evil"}`, Objectives{}, []validation.FieldError{fe("#/params/proxy", "unknown_field")}},
	} {
		t.Run(tc.scenario+tc.params, func(t *testing.T) {
			got := Validate(Input{Scenario: tc.scenario, Objectives: tc.obj, Params: json.RawMessage(tc.params)})
			for i := range got {
				got[i].Detail = ""
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCapacityParams_Rates(t *testing.T) {
	p := CapacityParams{StartRate: 10, StepRate: 20, MaxRate: 60, StepSeconds: 2}
	if diff := cmp.Diff([]int{10, 30, 50}, p.Rates()); diff != "" {
		t.Error(diff)
	}
	if n := len((CapacityParams{StartRate: 1, StepRate: 1, MaxRate: 5000}).Rates()); n != MaxRampSteps {
		t.Errorf("ramp of %d steps, want the cap %d", n, MaxRampSteps)
	}
}

// toxics logs the compensation's calls.
type toxics struct {
	mu      sync.Mutex
	removed []string
	fail    int // the first fail calls fail, as on a worker that is down
}

func (x *toxics) remove(_ context.Context, in RemoveToxicsInput) (RemoveToxicsResult, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.fail > 0 {
		x.fail--
		return RemoveToxicsResult{}, errors.New("toxiproxy unreachable")
	}
	x.removed = append(x.removed, in.Proxy)
	return RemoveToxicsResult{Removed: []string{"latency_downstream"}}, nil
}

func degradedEnv(t *testing.T, f *fakes, x *toxics) *testsuite.TestWorkflowEnvironment {
	env := newEnv(t, f)
	env.RegisterActivityWithOptions(x.remove, activity.RegisterOptions{Name: RemoveToxicsActivity})
	env.RegisterActivityWithOptions(func(context.Context, DegradedInput) (DegradedResult, error) { return DegradedResult{}, nil },
		activity.RegisterOptions{Name: DegradedActivity})
	return env
}

func heldAll() []invariants.Result {
	return []invariants.Result{{Name: invariants.NoJobLost, Held: true}, {Name: invariants.NoDuplicate, Held: true}}
}

func TestDrill_DegradedRemovesToxicsWhateverHappened(t *testing.T) {
	clean := DegradedResult{PoolWaitsMax: 3, Invariants: heldAll(), Faults: []FaultResult{
		{Fault: FaultCut, Requests: 80, Shed: 40, Statuses: map[string]int{"2xx": 40, "503": 40}, P99: 30}}}
	with500 := clean
	with500.Faults = []FaultResult{{Fault: FaultCut, Requests: 80, Errors500: 2, Unexpected: 2}}
	stopped := clean
	stopped.Stopped = "p99 9000 ms above 5000 ms for 3.1s (grace 3s)"
	lost := clean
	lost.Invariants = []invariants.Result{{Name: invariants.NoJobLost, Held: false, Detail: "job j1 was acknowledged and has no row"}}
	for _, tc := range []struct {
		name     string
		scenario string
		res      DegradedResult
		err      error
		status   string
		detail   string
		proxy    string
	}{
		{"clean", ScenarioDBDegraded, clean, nil, Succeeded, "platform-postgres — cut: 80 requests, 40 503 shed", PostgresProxy},
		{"a 500 fails", ScenarioCacheDegraded, with500, nil, Failed, "cut: 2 answers outside the degraded mode (2 of them 500)", RedisProxy},
		{"stop condition", ScenarioDBDegraded, stopped, nil, Failed, "stopped: p99 9000 ms above 5000 ms", PostgresProxy},
		{"invariant broken", ScenarioDBDegraded, lost, nil, Failed, "invariant no_job_lost broken: job j1", PostgresProxy},
		{"worker lost", ScenarioDBDegraded, DegradedResult{}, temporal.NewTimeoutError(0, errors.New("heartbeat")), Failed, "", PostgresProxy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, x := &fakes{}, &toxics{fail: 2}
			env := degradedEnv(t, f, x)
			env.OnActivity(DegradedActivity, mock.Anything, mock.Anything).Return(tc.res, tc.err)
			env.ExecuteWorkflow(Workflow, Input{ID: "drl_d", Scenario: tc.scenario})
			d := finished(t, env)
			if d.Status != tc.status || !strings.Contains(d.Timeline[0].Detail, tc.detail) {
				t.Fatalf("drill = %s, step %+v", d.Status, d.Timeline[0])
			}
			if diff := cmp.Diff([]string{tc.proxy}, x.removed); diff != "" {
				t.Errorf("toxics removed from (-want +got):\n%s", diff)
			}
			if got := steps(d)[len(d.Timeline)-1]; got != "remove_toxics:succeeded" {
				t.Errorf("last step %s", got)
			}
			checkRecords(t, f, d)
		})
	}
}

func TestDrill_AbortedDegradedRemovesToxics(t *testing.T) {
	f, x := &fakes{}, &toxics{}
	env := degradedEnv(t, f, x)
	env.OnActivity(DegradedActivity, mock.Anything, mock.Anything).After(time.Hour).Return(DegradedResult{}, nil)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(Abort, AbortInput{Reason: "enough"}) }, time.Minute)
	env.ExecuteWorkflow(Workflow, Input{ID: "drl_a", Scenario: ScenarioCacheDegraded})
	d := finished(t, env)
	if d.Status != Aborted {
		t.Fatalf("status %s", d.Status)
	}
	want := []string{"degraded:aborted", "abort:succeeded", "remove_toxics:succeeded"}
	if diff := cmp.Diff(want, steps(d)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if len(x.removed) != 1 || x.removed[0] != RedisProxy {
		t.Errorf("removed %v", x.removed)
	}
}

func TestDrill_CapacityRecordsKneesAndSteps(t *testing.T) {
	steps := []experiment.Step{
		{Rate: 20, Classes: map[string]experiment.ClassStats{experiment.ClassList: {Requests: 100, Rate: 5, P99: 40}}},
		{Rate: 40, Classes: map[string]experiment.ClassStats{experiment.ClassList: {Requests: 200, Rate: 10, P99: 900}}},
	}
	for _, tc := range []struct {
		name   string
		res    CapacityResult
		status string
		detail string
	}{
		{"knee found", CapacityResult{Steps: steps, Knees: experiment.Knees(steps, nil)[1:2], Invariants: heldAll(),
			AtKnee: map[string]float64{"rss_bytes": 1e8}}, Succeeded, "2 steps; knees: list 5/s"},
		{"no knee", CapacityResult{Steps: steps, Knees: []experiment.Knee{{Class: experiment.ClassList, Step: -1, Reached: true}}},
			Failed, "list broke its bound at the lowest rate"},
		{"leak", CapacityResult{Steps: steps, Invariants: []invariants.Result{{Name: invariants.NoLeak, Detail: "goroutines 900"}}},
			Failed, "invariant no_leak broken: goroutines 900"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakes{}
			env := newEnv(t, f)
			env.RegisterActivityWithOptions(func(context.Context, CapacityInput) (CapacityResult, error) { return tc.res, nil },
				activity.RegisterOptions{Name: CapacityActivity})
			env.ExecuteWorkflow(Workflow, Input{ID: "drl_k", Scenario: ScenarioCapacity, Params: json.RawMessage(`{"max_rate":40}`)})
			d := finished(t, env)
			if d.Status != tc.status || !strings.Contains(d.Timeline[0].Detail, tc.detail) {
				t.Fatalf("drill = %s, step %+v", d.Status, d.Timeline[0])
			}
			if d.Measurements["step_01_list_p99_ms"] != 900 || d.Measurements["step_00_rate"] != 20 {
				t.Errorf("measurements %v", d.Measurements)
			}
			if tc.status == Succeeded && (d.Measurements[experiment.KneeKey(experiment.ClassList)] != 5 || d.Measurements["at_knee_rss_bytes"] != 1e8) {
				t.Errorf("knee measurements %v", d.Measurements)
			}
			checkRecords(t, f, d)
		})
	}
}
