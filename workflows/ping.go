// Package workflows holds the platform's deterministic workflow code. It uses
// only workflow.* APIs for time, randomness and I/O, and never imports
// database or Redis code: activities are called by name with the Input and
// Result types declared here.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Names of the ping workflow and its activity, as registered on the worker
// and shown in the Temporal UI.
const (
	PingWorkflowName       = "platform.ping"
	RecordPingActivityName = "platform.ping.record"
)

// PingWorkflowID returns the workflow id of ping id: the ping's id itself.
func PingWorkflowID(pingID string) string { return pingID }

// PingInput is the ping workflow's input.
type PingInput struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// PingResult is what the ping workflow returns.
type PingResult struct {
	ID       string    `json:"id"`
	RedisKey string    `json:"redis_key"`
	At       time.Time `json:"at"`
}

// RecordPingInput is the input of the record activity.
type RecordPingInput struct {
	ID         string `json:"id"`
	Message    string `json:"message"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// RecordPingResult is the result of the record activity.
type RecordPingResult struct {
	RedisKey string    `json:"redis_key"`
	At       time.Time `json:"at"`
}

// Ping proves the whole path: it runs one activity that writes a row to
// Postgres and a key to Redis.
func Ping(ctx workflow.Context, in PingInput) (PingResult, error) {
	if in.ID == "" {
		return PingResult{}, temporal.NewNonRetryableApplicationError("ping id is empty", "InvalidInput", nil)
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
	var res RecordPingResult
	err := workflow.ExecuteActivity(ctx, RecordPingActivityName, RecordPingInput{
		ID: in.ID, Message: in.Message,
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
	}).Get(ctx, &res)
	if err != nil {
		return PingResult{}, err
	}
	return PingResult{ID: in.ID, RedisKey: res.RedisKey, At: res.At}, nil
}
