package job

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/acme/platform/jobs"

	"github.com/google/go-cmp/cmp"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/jobs/retry"
)

// jobEnv is a test environment with fake row-writing activities that keep
// every transition, and a fake attempt activity.
type jobEnv struct {
	*testsuite.TestWorkflowEnvironment
	mu      sync.Mutex
	records []RecordInput
	created []CreateInput
	timers  []time.Duration
}

func newJobEnv(t *testing.T, attempt func(ctx context.Context, in AttemptInput) (AttemptResult, error)) *jobEnv {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	e := &jobEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment()}
	e.RegisterWorkflowWithOptions(Webhook, workflow.RegisterOptions{Name: WebhookName})
	e.RegisterWorkflowWithOptions(Rollup, workflow.RegisterOptions{Name: RollupName})
	e.RegisterActivityWithOptions(func(ctx context.Context, in CreateInput) (jobs.Job, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.created = append(e.created, in)
		return jobs.Job{ID: in.Job.ID, Principal: in.Job.Principal, Type: in.Job.Type, Status: jobs.Queued, Input: in.Job.Input,
			WorkflowID: in.WorkflowID, RunID: in.RunID}, nil
	}, activity.RegisterOptions{Name: CreateActivity})
	e.RegisterActivityWithOptions(func(ctx context.Context, in RecordInput) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.records = append(e.records, in)
		return nil
	}, activity.RegisterOptions{Name: RecordActivity})
	for _, name := range []string{DeliverWebhookActivity, RollupUsageActivity} {
		e.RegisterActivityWithOptions(attempt, activity.RegisterOptions{Name: name})
	}
	e.SetOnTimerScheduledListener(func(_ string, d time.Duration) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.timers = append(e.timers, d)
	})
	return e
}

// statuses lists the recorded transitions.
func (e *jobEnv) statuses() []string {
	var out []string
	for _, r := range e.records {
		out = append(out, r.Status)
	}
	return out
}

// input is what the attempt activity reads from job id's row: the input the
// create activity wrote.
func (e *jobEnv) input(id string) json.RawMessage {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.created {
		if c.Job.ID == id {
			return c.Job.Input
		}
	}
	return nil
}

func (e *jobEnv) last() RecordInput { return e.records[len(e.records)-1] }

func webhookInput(p retry.Policy) Input {
	return Input{ID: "job_1", Principal: "acme", Type: jobs.TypeWebhook,
		Input: json.RawMessage(`{"url":"https://example.com/hook","payload":{}}`), Retry: p}
}

func policy(attempts int, initial, maxInterval float64, ttl int) retry.Policy {
	return retry.Policy{MaxAttempts: attempts, InitialIntervalSeconds: initial, MaxIntervalSeconds: maxInterval,
		BackoffCoefficient: 2, TTLSeconds: ttl}
}

// unavailable is a receiver's 503, retryable.
func unavailable(retryAfter time.Duration) error {
	return temporal.NewApplicationErrorWithOptions("receiver answered 503", "WebhookRetryable", temporal.ApplicationErrorOptions{
		NextRetryDelay: retryAfter,
		Details:        []any{AttemptFailure{Exchange: &HTTPExchange{Status: 503, LatencyMS: 3, Body: "busy"}}},
	})
}

func TestJob_RetriesWithBackoffThenSucceeds(t *testing.T) {
	calls := 0
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		calls++
		if in.Attempt != calls || in.JobID != "job_1" || in.Principal != "acme" {
			return AttemptResult{}, temporal.NewNonRetryableApplicationError("unexpected input", "Test", nil)
		}
		if calls < 3 {
			return AttemptResult{}, unavailable(0)
		}
		return AttemptResult{Result: json.RawMessage(`{"status":200}`), Exchange: &HTTPExchange{Status: 200}}, nil
	})
	e.ExecuteWorkflow(Webhook, webhookInput(policy(5, 1, 60, 3600)))
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, e.timers); diff != "" {
		t.Errorf("backoff sleeps (-want +got):\n%s", diff)
	}
	want := []string{jobs.Running, jobs.Retrying, jobs.Running, jobs.Retrying, jobs.Running, jobs.Succeeded}
	if diff := cmp.Diff(want, e.statuses()); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
	retrying := e.records[1]
	if retrying.LastError == nil || retrying.LastError.Message != "receiver answered 503" || !retrying.LastError.Retryable ||
		retrying.Attempt.Exchange == nil || retrying.Attempt.Exchange.Status != 503 {
		t.Errorf("retrying record = %+v (attempt %+v)", retrying, retrying.Attempt)
	}
	final := e.last()
	if final.Attempts != 3 || !final.Finished || string(final.Result) != `{"status":200}` || final.Attempt.Status != AttemptSucceeded {
		t.Errorf("final record = %+v", final)
	}
	if !e.records[0].Started || e.records[2].Started {
		t.Error("started_at must be set by the first attempt only")
	}
	var res json.RawMessage
	if err := e.GetWorkflowResult(&res); err != nil || string(res) != `{"status":200}` {
		t.Errorf("result %s, %v", res, err)
	}
}

func TestJob_LongerRetryAfterIsHonoured(t *testing.T) {
	calls := 0
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		if calls++; calls == 1 {
			return AttemptResult{}, unavailable(30 * time.Second)
		}
		return AttemptResult{}, nil
	})
	e.ExecuteWorkflow(Webhook, webhookInput(policy(5, 1, 60, 3600)))
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{30 * time.Second}, e.timers); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

func TestJob_TTLEndsRetriesAsTimedOut(t *testing.T) {
	calls := 0
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		calls++
		return AttemptResult{}, unavailable(0)
	})
	// Attempt 1 fails at 0s and waits 4s; attempt 2 fails at 4s and would
	// wait 8s, past the 10s TTL: the job times out without a third attempt.
	e.ExecuteWorkflow(Webhook, webhookInput(policy(10, 4, 60, 10)))
	var appErr *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != TimedOutErrorType {
		t.Fatalf("workflow error = %v, want %s", err, TimedOutErrorType)
	}
	if calls != 2 {
		t.Errorf("%d attempts, want 2", calls)
	}
	final := e.last()
	if final.Status != jobs.TimedOut || final.Attempts != 2 || final.LastError == nil || final.LastError.Attempt != 2 {
		t.Errorf("final record = %+v", final)
	}
	if diff := cmp.Diff([]time.Duration{4 * time.Second}, e.timers); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

func TestJob_NonRetryableErrorFailsAtOnce(t *testing.T) {
	calls := 0
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		calls++
		return AttemptResult{}, temporal.NewNonRetryableApplicationError("receiver answered 404", "WebhookRejected", nil,
			AttemptFailure{Exchange: &HTTPExchange{Status: 404}})
	})
	e.ExecuteWorkflow(Webhook, webhookInput(policy(5, 1, 60, 3600)))
	var appErr *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != FailedErrorType {
		t.Fatalf("workflow error = %v, want %s", err, FailedErrorType)
	}
	final := e.last()
	if calls != 1 || len(e.timers) != 0 || final.Status != jobs.Failed || final.LastError.Retryable ||
		final.LastError.Message != "receiver answered 404" || final.Attempt.Exchange.Status != 404 {
		t.Errorf("%d attempts, timers %v, final %+v", calls, e.timers, final)
	}
}

func TestJob_ExhaustedAttemptsFail(t *testing.T) {
	calls := 0
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		calls++
		return AttemptResult{}, errors.New("connection refused")
	})
	e.ExecuteWorkflow(Webhook, webhookInput(policy(3, 1, 1.5, 3600)))
	if err := e.GetWorkflowError(); err == nil {
		t.Fatal("workflow succeeded")
	}
	if calls != 3 || e.last().Status != jobs.Failed || !e.last().LastError.Retryable {
		t.Errorf("%d attempts, final %+v", calls, e.last())
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 1500 * time.Millisecond}, e.timers); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

// The testsuite resolves a canceled activity at once and does not cancel the
// activity's context; that the running attempt itself stops (through its
// heartbeats) is shown end to end in tests/jobs_webhook_test.go.
func TestJob_CancellationDuringAnAttemptEndsCanceled(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		select {
		case <-ctx.Done():
		case <-release:
		}
		return AttemptResult{}, ctx.Err()
	})
	e.RegisterDelayedCallback(e.CancelWorkflow, time.Second)
	e.ExecuteWorkflow(Webhook, webhookInput(policy(5, 1, 60, 3600)))
	if err := e.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	final := e.last()
	if final.Status != jobs.Canceled || !final.Finished || final.Attempts != 1 || final.Attempt == nil || final.Attempt.Status != AttemptCanceled {
		t.Errorf("final %+v", final)
	}
}

func TestJob_CancellationWhileWaitingEndsTheJob(t *testing.T) {
	calls := 0
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		calls++
		return AttemptResult{}, unavailable(0)
	})
	e.RegisterDelayedCallback(e.CancelWorkflow, 30*time.Second)
	e.ExecuteWorkflow(Webhook, webhookInput(policy(5, 60, 60, 3600)))
	if err := e.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	if calls != 1 || e.last().Status != jobs.Canceled || e.last().Attempts != 1 {
		t.Errorf("%d attempts, final %+v", calls, e.last())
	}
}

// The API answers 201 without waiting for a worker, and GET answers from
// Temporal until the row exists: the row must be the workflow's first write.
func TestJob_WritesItsRowBeforeAnythingElse(t *testing.T) {
	var e *jobEnv
	e = newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(e.created) != 1 || len(e.records) != 1 {
			return AttemptResult{}, temporal.NewNonRetryableApplicationError("attempt before the row", "Test", nil)
		}
		return AttemptResult{}, nil
	})
	e.ExecuteWorkflow(Webhook, webhookInput(policy(5, 1, 60, 3600)))
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(e.created) != 1 || e.created[0].Job.ID != "job_1" || e.created[0].WorkflowID == "" || e.created[0].RunID == "" {
		t.Errorf("created %+v", e.created)
	}
}

// The row's created_at is when the API accepted the job (its memo), however
// long the job waited for a worker; without the API's memo, the workflow's
// start.
func TestJob_RowIsCreatedAtTheAcceptanceTime(t *testing.T) {
	accepted := time.Date(2026, 3, 10, 9, 0, 0, 123456000, time.UTC)
	started := accepted.Add(2 * time.Hour) // not the acceptance: only the fallback
	for name, memo := range map[string]map[string]any{
		"memo":    {MemoKey: Memo{Principal: "acme", Type: jobs.TypeWebhook, CreatedAt: accepted}},
		"no memo": nil,
	} {
		t.Run(name, func(t *testing.T) {
			e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) { return AttemptResult{}, nil })
			e.SetStartTime(started)
			if memo != nil {
				if err := e.SetMemoOnStart(memo); err != nil {
					t.Fatal(err)
				}
			}
			e.ExecuteWorkflow(Webhook, webhookInput(policy(5, 1, 60, 3600)))
			if err := e.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			want := started
			if memo != nil {
				want = accepted
			}
			if len(e.created) != 1 || !e.created[0].CreatedAt.Equal(want) {
				t.Errorf("created %+v, want created_at %s", e.created, want)
			}
		})
	}
}

// A job canceled while no worker ran it (POST /v1/jobs/{id}/cancel on a
// queued job) still gets its row when a worker picks it up, and ends
// canceled without an attempt.
func TestJob_CanceledBeforeItsFirstTaskEndsCanceledWithoutAnAttempt(t *testing.T) {
	calls := 0
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		calls++
		return AttemptResult{}, nil
	})
	e.RegisterDelayedCallback(e.CancelWorkflow, 0)
	e.ExecuteWorkflow(Webhook, webhookInput(policy(5, 1, 60, 3600)))
	if err := e.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	if calls != 0 || len(e.created) != 1 {
		t.Errorf("%d attempts, created %+v", calls, e.created)
	}
	if diff := cmp.Diff([]string{jobs.Canceled}, e.statuses()); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
	if final := e.last(); !final.Finished || final.Attempts != 0 || final.Attempt != nil {
		t.Errorf("final %+v", final)
	}
}

func TestJob_InvalidInputFailsWithoutWritingARow(t *testing.T) {
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) { return AttemptResult{}, nil })
	e.ExecuteWorkflow(Webhook, Input{ID: "job_1", Principal: "acme", Type: jobs.TypeWebhook, Retry: retry.Policy{}})
	var appErr *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != InvalidErrorType {
		t.Fatalf("err = %v", err)
	}
	if len(e.created) != 0 {
		t.Error("an invalid job wrote a row")
	}
}

func TestDailyRollup_RollsUpYesterdayAsASystemJob(t *testing.T) {
	var seen RollupInput
	var e *jobEnv
	e = newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		if err := json.Unmarshal(e.input(in.JobID), &seen); err != nil {
			return AttemptResult{}, err
		}
		return AttemptResult{Result: json.RawMessage(`{}`)}, nil
	})
	e.RegisterWorkflowWithOptions(DailyRollup, workflow.RegisterOptions{Name: DailyRollupName})
	e.SetStartTime(time.Date(2026, 3, 10, 0, 15, 0, 0, time.UTC))
	e.ExecuteWorkflow(DailyRollup)
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	if !seen.From.Equal(day) || !seen.To.Equal(day.AddDate(0, 0, 1)) {
		t.Errorf("rolled up %s..%s, want %s..%s", seen.From, seen.To, day, day.AddDate(0, 0, 1))
	}
	if len(e.created) != 1 || e.created[0].Job.Principal != SystemPrincipal || e.created[0].Job.Type != jobs.TypeRollup {
		t.Fatalf("created %+v", e.created)
	}
	// "default-test-taskqueue" is the testsuite's task queue.
	if id := e.created[0].Job.ID; id != DailyRollupJobID("default-test-taskqueue", day) {
		t.Errorf("job id %s is not the day's derived id", id)
	}
}

func throttled(wait time.Duration) error {
	return temporal.NewApplicationErrorWithOptions("delivery deferred", ThrottledErrorType,
		temporal.ApplicationErrorOptions{NextRetryDelay: wait})
}

// A try turned away by the principal's delivery limits is not an attempt:
// a job allowed one attempt still delivers after three throttles, records
// one attempt, and waits the limiter's time (at least a doubling second).
func TestJob_ThrottledTriesAreNotAttempts(t *testing.T) {
	calls := 0
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		if calls++; calls <= 3 {
			if in.Attempt != 1 {
				return AttemptResult{}, temporal.NewNonRetryableApplicationError("throttle counted as an attempt", "Test", nil)
			}
			return AttemptResult{}, throttled(1500 * time.Millisecond)
		}
		return AttemptResult{Result: json.RawMessage(`{"status":200}`)}, nil
	})
	e.ExecuteWorkflow(Webhook, webhookInput(policy(1, 1, 60, 3600)))
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{1500 * time.Millisecond, 2 * time.Second, 4 * time.Second}, e.timers); diff != "" {
		t.Errorf("throttle waits (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{jobs.Running, jobs.Succeeded}, e.statuses()); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
	if final := e.last(); final.Attempts != 1 || final.Attempt == nil || final.Attempt.Attempt != 1 {
		t.Errorf("final record = %+v", final)
	}
}

// Throttles keep the TTL: a job whose principal stays over its limits times
// out when the next try would begin after the deadline.
func TestJob_ThrottledPastTheTTLTimesOut(t *testing.T) {
	e := newJobEnv(t, func(ctx context.Context, in AttemptInput) (AttemptResult, error) {
		return AttemptResult{}, throttled(time.Second)
	})
	e.ExecuteWorkflow(Webhook, webhookInput(policy(5, 1, 60, 10)))
	var appErr *temporal.ApplicationError
	if err := e.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != TimedOutErrorType {
		t.Fatalf("workflow error = %v, want %s", err, TimedOutErrorType)
	}
	// 1 + 2 + 4 s of waits; the next (8 s) would end past the 10 s TTL.
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, e.timers); diff != "" {
		t.Errorf("throttle waits (-want +got):\n%s", diff)
	}
	if final := e.last(); final.Status != jobs.TimedOut || final.Attempts != 1 {
		t.Errorf("final record = %+v", final)
	}
}
