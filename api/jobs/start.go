package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/jobs/retry"
	"github.com/acme/platform/workflows/job"
)

// Starter starts job workflows. Handlers that create jobs (POST /v1/jobs,
// POST /v1/uploads?process=true) share it.
type Starter struct {
	Temporal  client.Client
	TaskQueue string
	Store     *Store
}

// startTimeout bounds a start: one call to the Temporal frontend, retried by
// the SDK while the frontend is unreachable. It is shorter than the request
// timeout so that an unreachable Temporal answers 503 in time.
const startTimeout = 10 * time.Second

// Start starts the job's workflow and returns the job as accepted: queued,
// built from the request, its run named. It does not wait for a worker: the
// workflow's first step writes the row (the handler writes nothing), and
// until it has, GET answers from the workflow's memo and start event (see
// lookup). Temporal has durably stored the workflow when Start returns, so a
// job is accepted while no worker runs.
//
// The workflow is started by its registered name, with id = job id. An id
// that exists already (a retry after a lost response, a replay after the
// idempotency store lost the key) never starts a second workflow: conflict
// policy FAIL for a running workflow and reuse policy REJECT_DUPLICATE for a
// finished one both answer "already started", and Start then returns the
// existing job if an equal request created it (the fingerprint in the memo
// says so), or 422 idempotency_key_reused.
//
// FAIL rather than USE_EXISTING: with USE_EXISTING the SDK hands back the
// running workflow exactly as if it had just been started, so telling a
// replay from a first start would cost a DescribeWorkflow on every keyed
// start; with FAIL the conflict is an error, and the describe happens only
// then. Either way one workflow runs per id.
func (s *Starter) Start(ctx context.Context, in job.Input) (jobs.Job, error) {
	name, ok := job.Name(in.Type)
	if !ok {
		return jobs.Job{}, fmt.Errorf("start job %s: unknown type %q", in.ID, in.Type)
	}
	memo, err := newJobMemo(in, time.Now())
	if err != nil {
		return jobs.Job{}, fmt.Errorf("start job %s: %w", in.ID, err)
	}
	// The start completes even if the client goes away meanwhile: the id is
	// fixed, so finishing is always safe, and an abandoned half-sent start is
	// exactly what would leave the client unsure whether the job exists.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       job.WorkflowID(in.ID),
		TaskQueue:                s.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		// Without it the SDK answers a conflict with a handle on the
		// existing run, indistinguishable from a new one.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{job.MemoKey: memo},
	}, name, in)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return s.existing(ctx, in, memo.Fingerprint)
	}
	if err != nil {
		return jobs.Job{}, problem.UnavailableAfter(2, "could not start the job; retry with the same Idempotency-Key",
			fmt.Errorf("start job %s: %w", in.ID, err))
	}
	return queuedJob(in, memo.CreatedAt, run.GetID(), run.GetRunID()), nil
}

// existing returns the job that already holds in's id when an equal request
// (same principal and fingerprint) created it; another request under the
// same Idempotency-Key is a 422.
func (s *Starter) existing(ctx context.Context, in job.Input, fingerprint string) (jobs.Job, error) {
	l := lookup{rows: s.Store, temporal: s.Temporal}
	w, err := l.describe(ctx, in.ID)
	if errors.Is(err, problem.ErrNotFound) { // removed after its retention since the start said it exists
		return jobs.Job{}, problem.UnavailableAfter(1, "the job's workflow went away while it was started; retry", err)
	}
	if err != nil {
		return jobs.Job{}, err
	}
	principal, fp := "", ""
	if w.memo != nil {
		principal, fp = w.memo.Principal, w.memo.Fingerprint
	} else { // a workflow started without the API's memo
		first, err := l.startInput(ctx, w)
		if err != nil {
			return jobs.Job{}, err
		}
		if fp, err = requestFingerprint(first); err != nil {
			return jobs.Job{}, err
		}
		principal = first.Principal
	}
	if principal != in.Principal || fp != fingerprint {
		return jobs.Job{}, problem.Newf(problem.IdempotencyKeyReused,
			"this Idempotency-Key already created job %s from a different request", in.ID)
	}
	return l.find(ctx, in.ID, func(owner string) bool { return owner == in.Principal })
}

// newJobMemo is the memo of job in accepted at now.
func newJobMemo(in job.Input, now time.Time) (job.Memo, error) {
	fp, err := requestFingerprint(in)
	if err != nil {
		return job.Memo{}, err
	}
	// Microseconds, as Postgres keeps timestamps.
	return job.Memo{Principal: in.Principal, Type: in.Type, Fingerprint: fp,
		CreatedAt: now.UTC().Truncate(time.Microsecond), Retry: in.Retry}, nil
}

// requestFingerprint is a SHA-256 of the job's type, input and retry
// policy in a canonical form: object members sorted, no insignificant
// whitespace, numbers as written. Two requests that differ only in member
// order or spacing have the same fingerprint.
func requestFingerprint(in job.Input) (string, error) {
	input, err := canonicalJSON(in.Input)
	if err != nil {
		return "", fmt.Errorf("fingerprint job %s: %w", in.ID, err)
	}
	b, err := json.Marshal(struct {
		Type  string          `json:"type"`
		Input json.RawMessage `json:"input"`
		Retry retry.Policy    `json:"retry"`
	}{in.Type, input, in.Retry})
	if err != nil {
		return "", fmt.Errorf("fingerprint job %s: %w", in.ID, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// canonicalJSON re-encodes raw with encoding/json, which sorts object
// members; numbers keep their text.
func canonicalJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("null"), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// queuedJob is a job no worker has started yet, as its request or its
// workflow's start describes it.
func queuedJob(in job.Input, createdAt time.Time, workflowID, runID string) jobs.Job {
	return jobs.Job{ID: in.ID, Principal: in.Principal, Type: in.Type, Status: jobs.Queued,
		Input: in.Input, Retry: in.Retry, WorkflowID: workflowID, RunID: runID, CreatedAt: createdAt, UpdatedAt: createdAt}
}
