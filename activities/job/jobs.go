package job

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/jobs"
	"github.com/acme/platform/jobs/jobrow"
	"github.com/acme/platform/workflows/job"
)

// Jobs writes job rows. Only the job workflows call it (as local
// activities), so each job's row has one writer: its workflow.
type Jobs struct {
	DB *pgxpool.Pool
}

// A repeated create (the local activity ran again after a worker crash)
// returns the existing row unchanged but for the run id, which is the same.
// created_at is when the job was accepted, which may be long before a worker
// first ran it; the insert's time when the workflow does not say.
const insertJob = `
INSERT INTO jobs (id, principal, type, status, input, retry, workflow_id, run_id, created_at)
VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, COALESCE($8, clock_timestamp()))
ON CONFLICT (id) DO UPDATE SET run_id = EXCLUDED.run_id
RETURNING ` + jobrow.Columns

// Create writes the job's row with status queued and returns it.
func (a *Jobs) Create(ctx context.Context, in job.CreateInput) (jobs.Job, error) {
	j := in.Job
	var createdAt *time.Time
	if !in.CreatedAt.IsZero() {
		createdAt = &in.CreatedAt
	}
	job, err := jobrow.Scan(a.DB.QueryRow(ctx, insertJob, j.ID, j.Principal, j.Type, rawJSON(j.Input), j.Retry, in.WorkflowID, in.RunID, createdAt))
	if err != nil {
		return jobs.Job{}, fmt.Errorf("create job %s: %w", j.ID, err)
	}
	return job, nil
}

// Every field is set from the transition, so writing it again writes the
// same values: started_at and finished_at keep their first value.
const updateJob = `
UPDATE jobs SET
    status      = $2,
    attempts    = GREATEST(attempts, $3),
    result      = COALESCE($4, result),
    last_error  = COALESCE($5, last_error),
    started_at  = CASE WHEN $6 THEN COALESCE(started_at, $8) ELSE started_at END,
    finished_at = CASE WHEN $7 THEN COALESCE(finished_at, $8) ELSE finished_at END,
    updated_at  = $8
WHERE id = $1`

const upsertAttempt = `
INSERT INTO job_attempts (job_id, attempt, status, error, retryable, started_at, finished_at,
                          response_status, latency_ms, response_body, body_truncated)
VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (job_id, attempt) DO UPDATE SET
    status = EXCLUDED.status, error = EXCLUDED.error, retryable = EXCLUDED.retryable,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
    response_status = EXCLUDED.response_status, latency_ms = EXCLUDED.latency_ms,
    response_body = EXCLUDED.response_body, body_truncated = EXCLUDED.body_truncated`

// Record writes one transition of a job, and the attempt that just ended if
// any, in one transaction.
func (a *Jobs) Record(ctx context.Context, in job.RecordInput) error {
	err := database.InTx(ctx, a.DB, func(tx pgx.Tx) error {
		if in.Attempt != nil {
			if err := recordAttempt(ctx, tx, in.ID, *in.Attempt); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, updateJob, in.ID, in.Status, in.Attempts, rawJSON(in.Result), in.LastError,
			in.Started, in.Finished, in.At)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return temporal.NewNonRetryableApplicationError("job row "+in.ID+" does not exist", "JobRowMissing", nil)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record job %s %s: %w", in.ID, in.Status, err)
	}
	return nil
}

func recordAttempt(ctx context.Context, tx pgx.Tx, jobID string, a job.AttemptRecord) error {
	var status *int
	var latency *float64
	var body *string
	truncated := false
	if ex := a.Exchange; ex != nil {
		status, latency, body, truncated = &ex.Status, &ex.LatencyMS, &ex.Body, ex.BodyTruncated
	}
	_, err := tx.Exec(ctx, upsertAttempt, jobID, a.Attempt, a.Status, a.Error, a.Retryable, a.StartedAt, a.FinishedAt,
		status, latency, body, truncated)
	return err
}

// rawJSON is v as a jsonb parameter: NULL when empty.
func rawJSON(v json.RawMessage) any {
	if len(v) == 0 {
		return nil
	}
	return v
}

// jobInput is the input of the job an attempt belongs to, read from its
// row: attempts carry ids only (see job.AttemptInput). The principal is part
// of the key, so an attempt can only ever read its own principal's job.
const jobInput = `SELECT input FROM jobs WHERE id = $1 AND principal = $2`

// loadInput reads the input of attempt in's job into v, strictly. A missing
// row or bad input is not retryable: the workflow writes the row before its
// first attempt, and no retry changes the input. A database error is.
func loadInput(ctx context.Context, db *pgxpool.Pool, in job.AttemptInput, v any) error {
	var raw []byte
	err := db.QueryRow(ctx, jobInput, in.JobID, in.Principal).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return temporal.NewNonRetryableApplicationError("job row "+in.JobID+" does not exist", "JobRowMissing", nil)
	}
	if err != nil {
		return fmt.Errorf("load input of job %s: %w", in.JobID, err)
	}
	return decodeInput(raw, v)
}

// decodeInput reads a job's input strictly; bad input is not retryable.
func decodeInput(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return temporal.NewNonRetryableApplicationError("invalid job input: "+err.Error(), "InvalidJobInput", nil)
	}
	return nil
}

// notRetryable is an attempt failure that no retry can fix, with what the
// attempt saw.
func notRetryable(errType, message string, f job.AttemptFailure) error {
	return temporal.NewApplicationErrorWithOptions(message, errType, temporal.ApplicationErrorOptions{
		NonRetryable: true, Details: []any{f},
	})
}

// heartbeatEvery is how often long attempts heartbeat; the workflows' 5 s
// heartbeat timeout then notices a lost worker within seconds.
const heartbeatEvery = time.Second

// heartbeating runs fn while heartbeating every second from beside it, so a
// lost worker is noticed within the heartbeat timeout and a cancellation,
// which arrives in a heartbeat's response, cancels fn's context.
func heartbeating[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	activity.RecordHeartbeat(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	defer wg.Wait()
	defer close(stop)
	return fn(ctx)
}

// canceled reports whether err is the activity's own cancellation.
func canceled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
