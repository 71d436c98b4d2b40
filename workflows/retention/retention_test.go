package retention

import (
	"context"
	"errors"
	"slices"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

func TestWorkflow_PurgesEveryTableAndGoesOnPastAFailure(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: Name})
	var calls []PurgeInput
	env.RegisterActivityWithOptions(func(_ context.Context, in PurgeInput) (PurgeResult, error) {
		calls = append(calls, in)
		if in.Table == RolloutEvents {
			return PurgeResult{}, temporal.NewNonRetryableApplicationError("boom", "Test", nil)
		}
		return PurgeResult{Table: in.Table, Deleted: 2}, nil
	}, activity.RegisterOptions{Name: PurgeActivity})
	env.ExecuteWorkflow(Name, Input{})
	if !env.IsWorkflowCompleted() {
		t.Fatal("not completed")
	}
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != "RetentionFailed" {
		t.Fatalf("error %v, want RetentionFailed naming rollout_events", err)
	}
	var tables []string
	for _, c := range calls {
		if c.BatchSize != DefaultBatchSize {
			t.Errorf("batch size %d", c.BatchSize)
		}
		if len(tables) == 0 || tables[len(tables)-1] != c.Table {
			tables = append(tables, c.Table)
		}
	}
	if !slices.Equal(tables, Tables) {
		t.Errorf("purged %v, want %v", tables, Tables)
	}
}

func TestWorkflow_BatchSizeIsBounded(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var sizes []int
	env.RegisterActivityWithOptions(func(_ context.Context, in PurgeInput) (PurgeResult, error) {
		sizes = append(sizes, in.BatchSize)
		return PurgeResult{Table: in.Table}, nil
	}, activity.RegisterOptions{Name: PurgeActivity})
	env.ExecuteWorkflow(Workflow, Input{BatchSize: 50})
	var res Result
	if err := env.GetWorkflowError(); err != nil || env.GetWorkflowResult(&res) != nil || len(res.Purges) != len(Tables) {
		t.Fatalf("%v %+v", err, res)
	}
	if sizes[0] != 50 {
		t.Errorf("sizes %v", sizes)
	}
}
