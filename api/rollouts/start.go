package rollouts

import (
	"context"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/workflows/rollout"
)

// Starter starts rollout workflows, as jobs.Starter does for jobs: id from
// the business key, explicit conflict and reuse policies, and a bounded
// context that outlives the client's hang-up.
type Starter struct {
	Temporal client.Client
	// TaskQueue is the control task queue (PLATFORM_CONTROL_TASK_QUEUE),
	// not the jobs' one: a tenant's backlog there must not delay a rollout's
	// checks and roll-back.
	TaskQueue string
	Store     *Store
}

// startTimeout bounds a start, including the wait for the rollout's row,
// below the request timeout, so that a start stuck behind absent workers
// answers 503 in time.
const startTimeout = 10 * time.Second

// Start starts the rollout's workflow with Update-With-Start and returns
// its state once the workflow has written the row (running, or failed with
// why it cannot start), so a GET right after finds it. The workflow id is
// the rollout id, with conflict policy USE_EXISTING: a retry of the same
// start (same Idempotency-Key) attaches to the running workflow and, the
// update id being fixed, gets the first answer again. An id whose workflow
// has ended is never started twice: its row answers.
func (s *Starter) Start(ctx context.Context, in rollout.Input) (rollout.State, error) {
	// The start completes even if the client goes away: the id is fixed, so
	// finishing is safe, and a half-sent start would leave the client unsure.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	op := s.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: rollout.WorkflowID(in.ID), TaskQueue: s.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, rollout.Name, in)
	handle, err := s.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{UpdateID: rollout.StartedUpdate,
			UpdateName: rollout.StartedUpdate, WaitForStage: client.WorkflowUpdateStageCompleted},
	})
	var st rollout.State
	if err == nil {
		err = handle.Get(ctx, &st)
	}
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		row, err := s.Store.get(ctx, in.ID)
		return rollout.State{Status: row.Status, Reason: row.Reason}, err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return st, problem.UnavailableAfter(5, "no worker answered in time; the rollout may have started: "+
			"retry with the same Idempotency-Key to get it", err)
	}
	if err != nil {
		return st, problem.UnavailableAfter(2, "could not start the rollout workflow", err)
	}
	return st, nil
}
