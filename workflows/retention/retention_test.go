package retention

import (
	"context"
	"errors"
	"slices"
	"strings"
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
	swept := false
	env.RegisterActivityWithOptions(func(context.Context) (SweepResult, error) {
		swept = true
		return SweepResult{}, nil
	}, activity.RegisterOptions{Name: SweepDrillScratchActivity})
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
	if !swept {
		t.Error("a failed purge skipped the drill scratch sweep")
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
	env.RegisterActivityWithOptions(func(context.Context) (SweepResult, error) { return SweepResult{}, nil },
		activity.RegisterOptions{Name: SweepDrillScratchActivity})
	env.ExecuteWorkflow(Workflow, Input{BatchSize: 50})
	var res Result
	if err := env.GetWorkflowError(); err != nil || env.GetWorkflowResult(&res) != nil || len(res.Purges) != len(Tables) {
		t.Fatalf("%v %+v", err, res)
	}
	if sizes[0] != 50 {
		t.Errorf("sizes %v", sizes)
	}
}

// TestWorkflow_SweepsDrillScratchAndReportsItsFailure: the sweep's result
// is the run's; a failed sweep fails the run after every purge, naming it.
func TestWorkflow_SweepsDrillScratchAndReportsItsFailure(t *testing.T) {
	for _, fail := range []bool{false, true} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		purged := 0
		env.RegisterActivityWithOptions(func(_ context.Context, in PurgeInput) (PurgeResult, error) {
			purged++
			return PurgeResult{Table: in.Table}, nil
		}, activity.RegisterOptions{Name: PurgeActivity})
		env.RegisterActivityWithOptions(func(context.Context) (SweepResult, error) {
			if fail {
				return SweepResult{}, temporal.NewNonRetryableApplicationError("boom", "Test", nil)
			}
			return SweepResult{Databases: []string{"drill_scratch_x"}, Kept: 1}, nil
		}, activity.RegisterOptions{Name: SweepDrillScratchActivity})
		env.ExecuteWorkflow(Workflow, Input{})
		var res Result
		err := env.GetWorkflowError()
		if purged != len(Tables) {
			t.Errorf("fail=%v: %d purges, want %d", fail, purged, len(Tables))
		}
		if fail {
			if err == nil || !strings.Contains(err.Error(), "drill scratch") {
				t.Errorf("error = %v, want one naming the drill scratch sweep", err)
			}
			continue
		}
		if err != nil || env.GetWorkflowResult(&res) != nil || res.Sweep == nil || res.Sweep.Databases[0] != "drill_scratch_x" {
			t.Errorf("err %v, result %+v", err, res)
		}
	}
}
