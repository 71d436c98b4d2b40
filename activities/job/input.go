package job

import (
	"context"
	"encoding/json"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/workflows/job"
)

// InputSource gives an attempt its job's input. Attempts carry ids only
// (see job.AttemptInput), so the input is in the workflow's history once.
type InputSource interface {
	JobInput(ctx context.Context, in job.AttemptInput) (json.RawMessage, error)
}

// StartEvents reads a job's input from its workflow's start event: the
// exact bytes the API accepted. Webhooks read it there rather than from the
// row, whose jsonb column reorders keys and adds spaces: a receiver gets the
// payload as the client wrote it (compacted), as before.
type StartEvents struct {
	Temporal client.Client
}

var _ InputSource = StartEvents{}

// JobInput reads the start event of the running activity's own workflow (not
// one the input names), and checks that it is the job in names.
func (s StartEvents) JobInput(ctx context.Context, in job.AttemptInput) (json.RawMessage, error) {
	info := activity.GetInfo(ctx)
	resp, err := s.Temporal.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
		Namespace: info.Namespace,
		Execution: &commonpb.WorkflowExecution{WorkflowId: info.WorkflowExecution.ID, RunId: info.WorkflowExecution.RunID},
		// The start event is the first: one event, however long the history.
		MaximumPageSize: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("read the start event of job %s: %w", in.JobID, err)
	}
	events := resp.GetHistory().GetEvents()
	if len(events) == 0 || events[0].GetWorkflowExecutionStartedEventAttributes() == nil {
		return nil, fmt.Errorf("job %s: no start event in the first page of its history", in.JobID)
	}
	var started job.Input
	payloads := events[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
	if err := converter.GetDefaultDataConverter().FromPayloads(payloads, &started); err != nil {
		return nil, temporal.NewNonRetryableApplicationError("decode the input of job "+in.JobID+": "+err.Error(), "InvalidJobInput", nil)
	}
	if started.ID != in.JobID || started.Principal != in.Principal {
		return nil, temporal.NewNonRetryableApplicationError("attempt of job "+in.JobID+" runs in another job's workflow", "InvalidJobInput", nil)
	}
	return started.Input, nil
}
