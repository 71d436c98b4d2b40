package scaling

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	sc "github.com/acme/platform/scaling"
)

func testPolicy(mode string) sc.Policy {
	backlog := 10.0
	p, errs := sc.Build(sc.TargetWorker, sc.PolicyInput{Mode: &mode, MaxReplicas: ptr(int32(4)),
		IntervalSeconds: ptr(5), Signals: &sc.Signals{BacklogPerReplica: &backlog}})
	if len(errs) > 0 {
		panic(errs)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// runController runs two intervals of a controller over backlog, with
// signals sent after the first, and returns the recorded decisions.
func runController(t *testing.T, mode string, backlog float64, signals func(env *testsuite.TestWorkflowEnvironment)) (*fakeDriver, []sc.Decision) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakeDriver{desired: 1}
	f.register(env)
	env.RegisterWorkflowWithOptions(ActionWorkflow, workflow.RegisterOptions{Name: ActionName})
	env.RegisterActivityWithOptions(func(context.Context, LoadPolicyInput) (LoadPolicyResult, error) {
		return LoadPolicyResult{Found: true, Policy: testPolicy(mode)}, nil
	}, activity.RegisterOptions{Name: LoadPolicyActivity})
	env.RegisterActivityWithOptions(func(_ context.Context, in ReadSignalsInput) (ReadSignalsResult, error) {
		return ReadSignalsResult{Readings: []Reading{{Name: sc.SignalBacklog, Value: &backlog, Target: 10, Total: true}}}, nil
	}, activity.RegisterOptions{Name: ReadSignalsActivity})
	if signals != nil {
		env.RegisterDelayedCallback(func() { signals(env) }, time.Second)
	}
	env.ExecuteWorkflow(ControllerWorkflow, ControllerInput{Target: sc.TargetWorker, IterationsPerRun: 2})
	if !env.IsWorkflowCompleted() {
		t.Fatal("controller did not complete")
	}
	return f, f.decisions
}

func TestController_ScalesUpOnBacklogAndRecordsTheAction(t *testing.T) {
	f, ds := runController(t, sc.ModeAuto, 35, nil)
	if len(ds) != 2 || ds[0].Outcome != sc.OutcomeScaled || ds[0].Desired != 4 || ds[0].ActionID == "" || f.desired != 4 {
		t.Fatalf("decisions %+v, desired %d", ds, f.desired)
	}
}

func TestController_RecommendModeAppliesNothing(t *testing.T) {
	f, ds := runController(t, sc.ModeRecommend, 35, nil)
	if len(ds) != 2 || ds[0].Reason != sc.ReasonRecommendMode || ds[0].Desired != 4 || f.desired != 1 || len(f.scaled) != 0 {
		t.Fatalf("decisions %+v, scaled %v", ds, f.scaled)
	}
}

func TestController_PauseAndOverrideAsSignals(t *testing.T) {
	f, ds := runController(t, sc.ModeAuto, 0, func(env *testsuite.TestWorkflowEnvironment) {
		env.SignalWorkflow(OverrideSignal, OverrideInput{Replicas: 3, Until: time.Now().Add(24 * time.Hour)})
	})
	if len(ds) != 2 || ds[0].Reason != sc.ReasonTolerance && ds[0].Reason != sc.ReasonBounds || ds[1].Reason != sc.ReasonOverride || f.desired != 3 {
		t.Fatalf("decisions %+v, desired %d", ds, f.desired)
	}
	_, ds = runController(t, sc.ModeAuto, 35, func(env *testsuite.TestWorkflowEnvironment) {
		env.SignalWorkflow(PauseSignal, struct{}{})
	})
	if len(ds) != 2 || ds[1].Reason != sc.ReasonPaused && ds[1].Reason != sc.ReasonActionInFlight {
		t.Fatalf("decisions %+v", ds)
	}
}
