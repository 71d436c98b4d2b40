package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/acme/platform/jobs"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/jobs/retry"
)

// Names of the job workflows and of the activities they share, as
// registered on the worker and shown in the Temporal UI.
const (
	WebhookName = "platform.job.webhook"
	RollupName  = "platform.job.analytics_rollup"
	UploadName  = "platform.job.upload_process"

	CreateActivity = "platform.job.create"
	RecordActivity = "platform.job.record"
)

// WorkflowID returns the workflow id of job id: the job's id itself.
func WorkflowID(jobID string) string { return jobID }

// Name returns the registered workflow name of jobType.
//
// The API starts job workflows by this name rather than by function: a
// client's registry does not know the names a worker in another process
// registered, and would start the workflow under its Go function name.
func Name(jobType string) (string, bool) {
	switch jobType {
	case jobs.TypeWebhook:
		return WebhookName, true
	case jobs.TypeRollup:
		return RollupName, true
	case jobs.TypeUpload:
		return UploadName, true
	}
	return "", false
}

// Input is the input of every job workflow.
type Input struct {
	ID        string          `json:"id"`
	Principal string          `json:"principal"`
	Type      string          `json:"type"`
	Input     json.RawMessage `json:"input"`
	Retry     retry.Policy    `json:"retry"`
}

// MemoKey names the entry the API puts in a job workflow's memo when it
// starts the workflow.
const MemoKey = "platform.job"

// Memo is what the API keeps in a job workflow's memo: what it needs to
// answer for the job before the workflow has written its row, and to tell a
// replay of the creating request from another request under the same
// Idempotency-Key. It stays small: the input is in the start event.
type Memo struct {
	Principal string `json:"principal"`
	Type      string `json:"type"`
	// Fingerprint is a SHA-256 of the canonical request: type, input and
	// normalised retry policy.
	Fingerprint string `json:"fingerprint"`
	// CreatedAt is when the API accepted the job: the job's created_at, in
	// the API's answers and in its row.
	CreatedAt time.Time    `json:"created_at"`
	Retry     retry.Policy `json:"retry"`
}

// CreateInput is the input of the create activity: the job, the run
// that owns it and when it was accepted (the row's created_at), which may be
// long before a worker first ran it.
type CreateInput struct {
	Job        Input     `json:"job"`
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	CreatedAt  time.Time `json:"created_at"`
}

// RecordInput is one transition of a job, written by the record activity.
type RecordInput struct {
	ID       string    `json:"id"`
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"` // attempts begun so far
	At       time.Time `json:"at"`       // workflow time of the transition
	Started  bool      `json:"started"`  // the first attempt begins: sets started_at
	Finished bool      `json:"finished"` // a final status: sets finished_at
	// Result and LastError, when set, replace the stored ones.
	Result    json.RawMessage `json:"result,omitempty"`
	LastError *jobs.LastError `json:"last_error,omitempty"`
	// Attempt, when set, is an attempt that just ended.
	Attempt *AttemptRecord `json:"attempt,omitempty"`
}

// AttemptRecord is one ended attempt.
type AttemptRecord struct {
	Attempt    int           `json:"attempt"`
	Status     string        `json:"status"` // succeeded, failed or canceled
	Error      string        `json:"error,omitempty"`
	Retryable  bool          `json:"retryable"`
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt time.Time     `json:"finished_at"`
	Exchange   *HTTPExchange `json:"exchange,omitempty"`
}

// Attempt statuses.
const (
	AttemptSucceeded = "succeeded"
	AttemptFailed    = "failed"
	AttemptCanceled  = "canceled"
)

// HTTPExchange is what a webhook attempt learned of the receiver.
type HTTPExchange struct {
	Status        int     `json:"status"`
	LatencyMS     float64 `json:"latency_ms"`
	Body          string  `json:"body"`
	BodyTruncated bool    `json:"body_truncated"`
}

// AttemptInput is the input of every attempt activity: ids only. The
// activity reads the job's input from its row, so that the input (a webhook
// payload may be 1 MiB) is in the history once, in the start event, and not
// again in every attempt's ActivityTaskScheduled event, which would take a
// job with many attempts past Temporal's history size limit.
type AttemptInput struct {
	JobID     string `json:"job_id"`
	Principal string `json:"principal"`
	Attempt   int    `json:"attempt"`
}

// AttemptResult is what a successful attempt returns.
type AttemptResult struct {
	Result   json.RawMessage `json:"result"`
	Exchange *HTTPExchange   `json:"exchange,omitempty"`
}

// AttemptFailure travels as the details of a failed attempt's application
// error, so the workflow can record what the attempt saw.
type AttemptFailure struct {
	Result   json.RawMessage `json:"result,omitempty"`
	Exchange *HTTPExchange   `json:"exchange,omitempty"`
}

// ThrottledErrorType is the error type of an attempt that did not begin
// because the job's principal was over its delivery limits. Its
// NextRetryDelay is when a slot may be free. It is not an attempt: the
// workflow waits and tries the same attempt again (see jobRun.attempt).
const ThrottledErrorType = "Throttled"

// Error types of a job workflow's own failures, as shown in the Temporal UI.
const (
	FailedErrorType   = "JobFailed"
	TimedOutErrorType = "JobTimedOut"
	InvalidErrorType  = "InvalidJob"
)

// attemptHeartbeatTimeout is how soon a lost worker is noticed: activities
// heartbeat every second, and a heartbeat is also how cancellation reaches
// a running attempt.
const attemptHeartbeatTimeout = 5 * time.Second

// jobKind is what differs between job types: the attempt activity and how
// long one attempt may run.
type jobKind struct {
	activity     string
	startToClose time.Duration
}

// runJob runs a job: it writes the row, then makes attempts until one
// succeeds, one fails for good, the attempts or the TTL run out, or the job
// is canceled. A job canceled before a worker first ran it still writes its
// row, then records "canceled" without an attempt.
func runJob(ctx workflow.Context, in Input, kind jobKind) (json.RawMessage, error) {
	j := &jobRun{in: in, kind: kind}
	if err := j.validate(); err != nil {
		return nil, err
	}
	return j.run(ctx)
}

type jobRun struct {
	in   Input
	kind jobKind
}

// validate checks the input; an invalid job fails without writing a row.
func (j *jobRun) validate() error {
	if j.in.ID == "" || j.in.Principal == "" || j.in.Type == "" {
		return temporal.NewNonRetryableApplicationError("job id, principal and type are required", InvalidErrorType, nil)
	}
	if issues := j.in.Retry.Validate(); len(issues) > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("invalid retry policy: %s %s", issues[0].Field, issues[0].Detail), InvalidErrorType, nil)
	}
	return nil
}

func (j *jobRun) run(ctx workflow.Context) (json.RawMessage, error) {
	// Rows are written with a disconnected context, so that a cancellation
	// still gets recorded.
	rec, _ := workflow.NewDisconnectedContext(ctx)
	if err := j.create(rec); err != nil {
		return nil, err
	}
	deadline := j.in.Retry.Deadline(workflow.GetInfo(ctx).WorkflowStartTime)
	for n := 1; ; n++ {
		if ctx.Err() != nil {
			return nil, j.cancel(ctx, rec, n-1, nil)
		}
		started := workflow.Now(ctx)
		if err := j.record(rec, RecordInput{Status: jobs.Running, Attempts: n, At: started, Started: n == 1}); err != nil {
			return nil, err
		}
		res, a, err := j.attempt(ctx, n, started, deadline)
		switch {
		case err == nil:
			return res.Result, j.succeed(rec, a, res)
		case ctx.Err() != nil:
			a.Status = AttemptCanceled
			return nil, j.cancel(ctx, rec, n, &a)
		}
		delay, err := j.retryOrStop(ctx, rec, a, err, deadline)
		if err != nil {
			return nil, err // the job has ended: failed or timed out
		}
		if err := workflow.Sleep(ctx, delay); err != nil {
			return nil, j.cancel(ctx, rec, n, nil)
		}
	}
}

// retryOrStop records failed attempt a and returns the wait before the next
// attempt, or, when the policy says stop, the job's final error.
func (j *jobRun) retryOrStop(ctx, rec workflow.Context, a AttemptRecord, err error, deadline time.Time) (time.Duration, error) {
	f := failureOf(err)
	a.Status, a.Error, a.Retryable, a.Exchange = AttemptFailed, f.message, f.retryable, f.details.Exchange
	if isThrottled(err) { // attempt only returns a throttle when waiting it out would pass the TTL
		return 0, j.fail(rec, a, f, retry.DeadlinePassed)
	}
	d := j.in.Retry.Next(retry.Failure{Attempt: a.Attempt, Retryable: f.retryable, RetryAfter: f.retryAfter}, workflow.Now(ctx), deadline)
	if d.Stop != retry.Continue {
		return 0, j.fail(rec, a, f, d.Stop)
	}
	return d.Delay, j.record(rec, RecordInput{Status: jobs.Retrying, Attempts: a.Attempt, At: a.FinishedAt,
		LastError: lastError(a), Attempt: &a})
}

// create writes the job's row with status queued: the workflow's first
// step, so the row exists before anything else happens to the job.
func (j *jobRun) create(ctx workflow.Context) error {
	info := workflow.GetInfo(ctx)
	err := workflow.ExecuteLocalActivity(recordOptions(ctx), CreateActivity, CreateInput{
		Job: j.in, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		CreatedAt: acceptedAt(info),
	}).Get(ctx, nil)
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.in.ID, err)
	}
	return nil
}

// acceptedAt is when the job was accepted: the created_at of the memo the
// API started the workflow with (what its 201 said), else the workflow's
// start (jobs the platform starts itself, such as the daily roll-up).
func acceptedAt(info *workflow.Info) time.Time {
	var m Memo
	if p, ok := info.Memo.GetFields()[MemoKey]; ok && converter.GetDefaultDataConverter().FromPayload(p, &m) == nil &&
		!m.CreatedAt.IsZero() {
		return m.CreatedAt
	}
	return info.WorkflowStartTime.UTC()
}

// attempt runs attempt n as one activity execution: retries are the
// workflow's, so each attempt is its own activity in the Temporal UI and the
// API sees every failure as it happens.
//
// A try the principal's delivery limits turn away (ThrottledErrorType) is
// not an attempt: it records nothing, counts against neither max_attempts
// nor the attempts shown, and is tried again after the limiter's wait, which
// grows with each refusal (see throttleWait). The TTL still holds: when the
// wait would pass the deadline, the throttle is returned and ends the job as
// timed out.
func (j *jobRun) attempt(ctx workflow.Context, n int, started, deadline time.Time) (AttemptResult, AttemptRecord, error) {
	a := AttemptRecord{Attempt: n, StartedAt: started}
	for try := 0; ; try++ {
		res, err := j.try(ctx, n, try)
		a.FinishedAt = workflow.Now(ctx)
		if !isThrottled(err) || ctx.Err() != nil {
			return res, a, err
		}
		wait := throttleWait(err, try)
		if a.FinishedAt.Add(wait).After(deadline) {
			return res, a, err
		}
		if err := workflow.Sleep(ctx, wait); err != nil {
			return res, a, err // canceled while waiting
		}
		a.StartedAt = workflow.Now(ctx)
	}
}

// try runs one activity execution of attempt n.
func (j *jobRun) try(ctx workflow.Context, n, try int) (AttemptResult, error) {
	id := fmt.Sprintf("attempt-%d", n)
	if try > 0 {
		id = fmt.Sprintf("attempt-%d.%d", n, try)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:          id,
		StartToCloseTimeout: j.kind.startToClose,
		HeartbeatTimeout:    attemptHeartbeatTimeout,
		WaitForCancellation: true, // record "canceled" only once the attempt has stopped
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var res AttemptResult
	err := workflow.ExecuteActivity(actx, j.kind.activity, AttemptInput{
		JobID: j.in.ID, Principal: j.in.Principal, Attempt: n,
	}).Get(actx, &res)
	return res, err
}

// maxThrottleWait caps the wait after a throttle. With the doubling below it
// bounds the throttles of one job to about one per 10 minutes of its TTL,
// and so its history (a 7-day TTL: about a thousand).
const maxThrottleWait = 10 * time.Minute

// throttleWait is the wait after the try-th throttle (0-based) of an
// attempt: the limiter's estimate, but at least 1 s doubling per refusal,
// so a job that keeps being turned away asks less and less often.
func throttleWait(err error, try int) time.Duration {
	backoff := min(time.Second<<min(try, 10), maxThrottleWait)
	return min(max(failureOf(err).retryAfter, backoff), maxThrottleWait)
}

func isThrottled(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == ThrottledErrorType
}

func (j *jobRun) succeed(rec workflow.Context, a AttemptRecord, res AttemptResult) error {
	a.Status, a.Exchange = AttemptSucceeded, res.Exchange
	return j.record(rec, RecordInput{Status: jobs.Succeeded, Attempts: a.Attempt, At: a.FinishedAt, Finished: true,
		Result: res.Result, Attempt: &a})
}

// fail records the final failure and returns the workflow's own error, so
// the run in the Temporal UI fails with the job's last error.
func (j *jobRun) fail(rec workflow.Context, a AttemptRecord, f failure, stop retry.Stop) error {
	status, errType := jobs.Failed, FailedErrorType
	if stop == retry.DeadlinePassed {
		status, errType = jobs.TimedOut, TimedOutErrorType
	}
	if err := j.record(rec, RecordInput{Status: status, Attempts: a.Attempt, At: a.FinishedAt, Finished: true,
		Result: f.details.Result, LastError: lastError(a), Attempt: &a}); err != nil {
		return err
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("job %s %s after %d attempt(s): %s", j.in.ID, status, a.Attempt, f.message), errType, nil)
}

// cancel records the cancellation (and the attempt it interrupted, if any)
// and returns the cancellation, so the run shows as canceled.
func (j *jobRun) cancel(ctx, rec workflow.Context, attempts int, a *AttemptRecord) error {
	if err := j.record(rec, RecordInput{Status: jobs.Canceled, Attempts: attempts, At: workflow.Now(rec),
		Finished: true, Attempt: a}); err != nil {
		return err
	}
	return ctx.Err()
}

func (j *jobRun) record(ctx workflow.Context, in RecordInput) error {
	in.ID = j.in.ID
	if err := workflow.ExecuteLocalActivity(recordOptions(ctx), RecordActivity, in).Get(ctx, nil); err != nil {
		return fmt.Errorf("record job %s %s: %w", j.in.ID, in.Status, err)
	}
	return nil
}

// recordOptions are those of the row-writing local activities: they run in
// the worker beside the workflow task, and retry for a long time, because a
// job whose row cannot be written must wait for Postgres, not give up.
func recordOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: 24 * time.Hour,
		StartToCloseTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    200 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

func lastError(a AttemptRecord) *jobs.LastError {
	return &jobs.LastError{Message: a.Error, Attempt: a.Attempt, At: a.FinishedAt, Retryable: a.Retryable}
}

// failure is what the workflow makes of a failed attempt's error.
type failure struct {
	message    string
	retryable  bool
	retryAfter time.Duration
	details    AttemptFailure
}

// failureOf reads an attempt's error: application errors carry their own
// retryability, the receiver's Retry-After (as the next retry delay) and
// what the attempt saw; timeouts (a lost worker, a hung receiver) and other
// errors are retryable.
func failureOf(err error) failure {
	var appErr *temporal.ApplicationError
	var timeoutErr *temporal.TimeoutError
	switch {
	case errors.As(err, &appErr):
		f := failure{message: appErr.Message(), retryable: !appErr.NonRetryable(), retryAfter: appErr.NextRetryDelay()}
		if appErr.HasDetails() {
			_ = appErr.Details(&f.details)
		}
		return f
	case errors.As(err, &timeoutErr):
		return failure{message: "attempt timed out: " + timeoutName(timeoutErr), retryable: true}
	}
	return failure{message: err.Error(), retryable: true}
}

func timeoutName(e *temporal.TimeoutError) string {
	switch e.TimeoutType() {
	case enumspb.TIMEOUT_TYPE_HEARTBEAT:
		return "no heartbeat from the worker (it may have stopped)"
	case enumspb.TIMEOUT_TYPE_START_TO_CLOSE:
		return "the attempt ran longer than its time limit"
	}
	return e.TimeoutType().String()
}
