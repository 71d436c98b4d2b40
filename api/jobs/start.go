package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/api/problem"
	"github.com/acme/platform/workflows"
)

// Starter starts job workflows. Handlers that create jobs (POST /v1/jobs,
// POST /v1/uploads?process=true) share it.
type Starter struct {
	Temporal  client.Client
	TaskQueue string
	Store     *Store
}

// startTimeout bounds a start, including the wait for the job's row. It is
// shorter than the request timeout so that a start stuck behind absent
// workers answers 503 in time.
const startTimeout = 10 * time.Second

// Start starts the job's workflow with Update-With-Start and returns the
// job once its workflow has written the row, so a GET right after finds it;
// the handler writes nothing itself. The workflow id is the job id, with
// conflict policy USE_EXISTING: starting an id that runs (a retry, a replay
// after the idempotency store lost the key) attaches to the running workflow
// and, the update id being fixed, gets the first answer again. Reuse policy
// REJECT_DUPLICATE: an id whose workflow has finished is never started
// twice; the existing job is returned.
func (s *Starter) Start(ctx context.Context, in workflows.JobInput) (workflows.Job, error) {
	name, ok := workflows.JobWorkflowName(in.Type)
	if !ok {
		return workflows.Job{}, fmt.Errorf("start job %s: unknown type %q", in.ID, in.Type)
	}
	// The start completes even if the client goes away meanwhile: the id is
	// fixed, so finishing is always safe, and an abandoned half-sent start is
	// exactly what would leave the client unsure whether the job exists.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	op := s.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.JobWorkflowID(in.ID),
		TaskQueue:                s.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, name, in)
	handle, err := s.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID:     workflows.JobCreatedUpdate,
			UpdateName:   workflows.JobCreatedUpdate,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	var job workflows.Job
	if err == nil {
		err = handle.Get(ctx, &job)
	}
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return s.Store.Get(ctx, in.ID)
	}
	if err != nil {
		return workflows.Job{}, unavailable(in.ID, err)
	}
	return job, nil
}

func unavailable(id string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return problem.UnavailableAfter(5, "no worker answered in time; the job may have been accepted: "+
			"retry with the same Idempotency-Key to get it", fmt.Errorf("start job %s: %w", id, err))
	}
	return problem.UnavailableAfter(2, "could not start the job; retry with the same Idempotency-Key",
		fmt.Errorf("start job %s: %w", id, err))
}
