package scaling

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	sc "github.com/acme/platform/scaling"
)

// fakeDriver is a driver's activities in memory.
type fakeDriver struct {
	desired   int32
	readyErr  error
	scaled    []int32
	recorded  []sc.Action
	decisions []sc.Decision
}

func (f *fakeDriver) register(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivityWithOptions(func(context.Context, DriverInput) (ReplicasResult, error) {
		return ReplicasResult{Desired: f.desired, Ready: f.desired}, nil
	}, activity.RegisterOptions{Name: ReplicasActivity})
	env.RegisterActivityWithOptions(func(_ context.Context, in ScaleInput) error {
		f.scaled = append(f.scaled, in.Replicas)
		f.desired = in.Replicas
		return nil
	}, activity.RegisterOptions{Name: ScaleActivity})
	env.RegisterActivityWithOptions(func(_ context.Context, in ScaleInput) error {
		if len(f.scaled) == 1 && f.readyErr != nil {
			return f.readyErr
		}
		return nil
	}, activity.RegisterOptions{Name: WaitReadyActivity})
	env.RegisterActivityWithOptions(func(context.Context, ScaleInput) error { return nil }, activity.RegisterOptions{Name: CheckServingActivity})
	env.RegisterActivityWithOptions(func(_ context.Context, in RecordActionInput) error {
		f.recorded = append(f.recorded, in.Action)
		return nil
	}, activity.RegisterOptions{Name: RecordActionActivity})
	env.RegisterActivityWithOptions(func(_ context.Context, in RecordDecisionInput) error {
		f.decisions = append(f.decisions, in.Decision)
		return nil
	}, activity.RegisterOptions{Name: RecordDecisionActivity})
}

func runAction(t *testing.T, f *fakeDriver, in ActionInput) sc.Action {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f.register(env)
	env.ExecuteWorkflow(ActionWorkflow, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var a sc.Action
	if err := env.GetWorkflowResult(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestActionWorkflow_SucceedsWithEveryStep(t *testing.T) {
	f := &fakeDriver{desired: 1}
	a := runAction(t, f, ActionInput{ID: "sca_1", Target: sc.TargetWorker, Driver: sc.DriverDryRun, Replicas: 3})
	var names []string
	for _, s := range a.Steps {
		names = append(names, s.Name+":"+s.Status)
	}
	if a.Status != sc.ActionSucceeded || a.Previous != 1 || f.desired != 3 || len(names) != 4 {
		t.Errorf("action %+v, steps %v", a, names)
	}
	if last := f.recorded[len(f.recorded)-1]; last.Status != sc.ActionSucceeded {
		t.Errorf("last record %+v", last)
	}
}

func TestActionWorkflow_NotReadyRollsBackToThePreviousCount(t *testing.T) {
	f := &fakeDriver{desired: 2, readyErr: temporal.NewNonRetryableApplicationError("1 of 4 ready", "NotReady", nil)}
	a := runAction(t, f, ActionInput{ID: "sca_2", Target: sc.TargetAPI, Driver: sc.DriverDryRun, Replicas: 4})
	if a.Status != sc.ActionRolledBack || f.desired != 2 || len(f.scaled) != 2 || a.Error != "1 of 4 ready" {
		t.Errorf("action %+v, scaled %v", a, f.scaled)
	}
}

func TestActionWorkflow_InvalidInputFails(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(ActionWorkflow, ActionInput{ID: "sca_3", Target: "db", Replicas: 1})
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != ErrTypeInvalidInput {
		t.Errorf("error %v", err)
	}
}
