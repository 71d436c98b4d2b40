package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/workflows/job"
)

// lookup finds a job by id: its row, or, while no worker has written the row
// yet, the job as Temporal holds it (the memo and the start event of its
// workflow). A job is thus visible from the moment POST /v1/jobs answers,
// whether or not a worker runs.
type lookup struct {
	rows     *Store
	temporal client.Client
}

// find returns job id if canSee its principal; an unknown job, or one
// canSee refuses, is an error wrapping problem.ErrNotFound.
func (l lookup) find(ctx context.Context, id string, canSee func(principal string) bool) (jobs.Job, error) {
	j, err := l.rows.Get(ctx, id)
	if errors.Is(err, problem.ErrNotFound) {
		var w startedWorkflow
		if w, err = l.describe(ctx, id); err == nil {
			j, err = l.fromWorkflow(ctx, w, canSee)
		}
	}
	if err == nil && !canSee(j.Principal) {
		err = fmt.Errorf("job %s: %w", id, problem.ErrNotFound)
	}
	return j, err
}

// startedWorkflow is a job's workflow as DescribeWorkflow shows it.
type startedWorkflow struct {
	id, runID string
	status    enumspb.WorkflowExecutionStatus
	startedAt time.Time
	closedAt  *time.Time
	memo      *job.Memo // nil when started without one (the daily roll-up's jobs)
}

// describe reads the workflow of job id and its memo.
func (l lookup) describe(ctx context.Context, id string) (startedWorkflow, error) {
	d, err := l.temporal.DescribeWorkflow(ctx, job.WorkflowID(id), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return startedWorkflow{}, fmt.Errorf("job %s: %w", id, problem.ErrNotFound)
	}
	if err != nil {
		return startedWorkflow{}, temporalUnavailable(id, err)
	}
	w := startedWorkflow{id: d.WorkflowExecution.ID, runID: d.WorkflowExecution.RunID, status: d.Status,
		startedAt: d.WorkflowStartTime, closedAt: d.WorkflowCloseTime}
	if p, ok := d.Memo.GetFields()[job.MemoKey]; ok {
		var m job.Memo
		if err := converter.GetDefaultDataConverter().FromPayload(p, &m); err != nil {
			return startedWorkflow{}, fmt.Errorf("job %s: read memo: %w", id, err)
		}
		w.memo = &m
	}
	return w, nil
}

// fromWorkflow is the job of a workflow that had written no row when it was
// looked up: queued, with the input of its start event. The owner in the
// memo is checked before the history is read.
func (l lookup) fromWorkflow(ctx context.Context, w startedWorkflow, canSee func(string) bool) (jobs.Job, error) {
	if w.memo != nil && !canSee(w.memo.Principal) {
		return jobs.Job{}, fmt.Errorf("job %s: %w", w.id, problem.ErrNotFound)
	}
	ended := w.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	if ended {
		// It ended after the row was looked for: it wrote the row first,
		// unless it ended before any worker ran it (terminated, say).
		if row, err := l.rows.Get(ctx, w.id); !errors.Is(err, problem.ErrNotFound) {
			return row, err
		}
	}
	in, err := l.startInput(ctx, w)
	if err != nil {
		return jobs.Job{}, err
	}
	createdAt := w.startedAt.UTC()
	if w.memo != nil {
		createdAt = w.memo.CreatedAt
	}
	j := queuedJob(in, createdAt, w.id, w.runID)
	if ended && w.closedAt != nil {
		j.Status, j.UpdatedAt, j.FinishedAt = endStatus(w.status), *w.closedAt, w.closedAt
		j.LastError = &jobs.LastError{At: *w.closedAt,
			Message: "the job's workflow ended (" + strings.ToLower(w.status.String()) + ") before a worker ran it"}
	}
	return j, nil
}

// startInput decodes the JobInput of the workflow's start event.
func (l lookup) startInput(ctx context.Context, w startedWorkflow) (job.Input, error) {
	iter := l.temporal.GetWorkflowHistory(ctx, w.id, w.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !iter.HasNext() {
		return job.Input{}, fmt.Errorf("job %s: the workflow's history is empty", w.id)
	}
	ev, err := iter.Next()
	if err != nil {
		return job.Input{}, temporalUnavailable(w.id, err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return job.Input{}, fmt.Errorf("job %s: the workflow's first event is %s", w.id, ev.GetEventType())
	}
	var in job.Input
	if err := converter.GetDefaultDataConverter().FromPayloads(attrs.GetInput(), &in); err != nil {
		return job.Input{}, fmt.Errorf("job %s: decode the workflow's input: %w", w.id, err)
	}
	return in, nil
}

// endStatus is the status of a job whose workflow ended without writing a
// row: only an operator's termination (or a timeout set outside the API)
// ends a job workflow before its first step.
func endStatus(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return jobs.Canceled
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return jobs.TimedOut
	}
	return jobs.Failed
}

func temporalUnavailable(id string, err error) error {
	return problem.UnavailableAfter(2, "could not read the job from Temporal", fmt.Errorf("job %s: %w", id, err))
}
