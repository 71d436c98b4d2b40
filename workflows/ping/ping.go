// Package ping is the ping workflow: the smallest end-to-end proof that the
// API, Temporal, a worker, Postgres and Redis are wired together.
package ping

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Names of the ping workflow and its activity, as registered on the worker
// and shown in the Temporal UI.
const (
	Name           = "platform.ping"
	RecordActivity = "platform.ping.record"
)

// WorkflowID returns the workflow id of ping id: the ping's id itself.
func WorkflowID(pingID string) string { return pingID }

// MemoPrincipal is the memo field naming the ping's owner, so the API can
// check it before a worker has written the row.
const MemoPrincipal = "principal"

// Input is the ping workflow's input.
type Input struct {
	ID      string `json:"id"`
	Message string `json:"message"`
	// Principal owns the ping; empty (a start from the Temporal UI) means
	// only admins see it.
	Principal string `json:"principal,omitempty"`
}

// Result is what the ping workflow returns.
type Result struct {
	ID       string    `json:"id"`
	RedisKey string    `json:"redis_key"`
	At       time.Time `json:"at"`
}

// RecordInput is the input of the record activity.
type RecordInput struct {
	ID         string `json:"id"`
	Message    string `json:"message"`
	Principal  string `json:"principal,omitempty"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// RecordResult is the result of the record activity.
type RecordResult struct {
	RedisKey string    `json:"redis_key"`
	At       time.Time `json:"at"`
}

// Workflow proves the whole path: it runs one activity that writes a row to
// Postgres and a key to Redis.
func Workflow(ctx workflow.Context, in Input) (Result, error) {
	if in.ID == "" {
		return Result{}, temporal.NewNonRetryableApplicationError("ping id is empty", "InvalidInput", nil)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    500 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Second,
			MaximumAttempts:    10,
		},
	})
	info := workflow.GetInfo(ctx)
	var res RecordResult
	err := workflow.ExecuteActivity(ctx, RecordActivity, RecordInput{
		ID: in.ID, Message: in.Message, Principal: in.Principal,
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
	}).Get(ctx, &res)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: in.ID, RedisKey: res.RedisKey, At: res.At}, nil
}
