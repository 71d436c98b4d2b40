package ping

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

func TestPing_RecordsThroughItsActivity(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	env.RegisterActivityWithOptions(func(ctx context.Context, in RecordInput) (RecordResult, error) {
		if in.ID != "png_1" || in.Message != "hi" || in.Principal != "acme" || in.WorkflowID == "" {
			return RecordResult{}, errors.New("unexpected input")
		}
		return RecordResult{RedisKey: "k", At: at}, nil
	}, activity.RegisterOptions{Name: RecordActivity})
	env.ExecuteWorkflow(Workflow, Input{ID: "png_1", Message: "hi", Principal: "acme"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var got Result
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "png_1" || got.RedisKey != "k" || !got.At.Equal(at) {
		t.Errorf("result = %+v", got)
	}
}

func TestPing_RetriesTheActivity(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	calls := 0
	env.RegisterActivityWithOptions(func(ctx context.Context, in RecordInput) (RecordResult, error) {
		calls++
		if calls < 3 {
			return RecordResult{}, errors.New("postgres is restarting")
		}
		return RecordResult{RedisKey: "k"}, nil
	}, activity.RegisterOptions{Name: RecordActivity})
	env.ExecuteWorkflow(Workflow, Input{ID: "png_1"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("activity ran %d times, want 3", calls)
	}
}

func TestPing_EmptyIDFailsWithoutRetry(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(Workflow, Input{})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Fatalf("err = %v, want a non-retryable application error", err)
	}
}
