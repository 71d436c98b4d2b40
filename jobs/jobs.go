// Package jobs is the job record: what a job is, its types, statuses and
// last error, as the job workflow's activities write it and the API reads
// it. It is a leaf: it imports nothing of the project but the retry policy,
// so the jobs table's scanner, the workflow and the API can share it
// without any of them reaching up a layer.
package jobs

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/acme/platform/jobs/retry"
)

// Types: what a client names in POST /v1/
const (
	TypeWebhook = "webhook"
	TypeRollup  = "analytics.rollup"
	TypeUpload  = "upload.process"
)

// Types lists every job type.
var Types = []string{TypeWebhook, TypeRollup, TypeUpload}

// Statuses. A job is queued from its acceptance until its first attempt
// begins (its row is written with this status before that), running during
// an attempt, retrying while it waits for the next one, and ends in one of
// the four final statuses.
const (
	Queued    = "queued"
	Running   = "running"
	Retrying  = "retrying"
	Succeeded = "succeeded"
	Failed    = "failed"
	Canceled  = "canceled"
	TimedOut  = "timed_out"
)

// Statuses lists every status.
var Statuses = []string{Queued, Running, Retrying, Succeeded, Failed, Canceled, TimedOut}

// Final reports whether status is final: the job will not change again.
func Final(status string) bool {
	return slices.Contains([]string{Succeeded, Failed, Canceled, TimedOut}, status)
}

// Job is a job's row as its activities write it.
type Job struct {
	ID         string          `json:"id"`
	Principal  string          `json:"principal"`
	Type       string          `json:"type"`
	Status     string          `json:"status"`
	Input      json.RawMessage `json:"input"`
	Retry      retry.Policy    `json:"retry"`
	Result     json.RawMessage `json:"result,omitempty"`
	Attempts   int             `json:"attempts"`
	LastError  *LastError      `json:"last_error,omitempty"`
	WorkflowID string          `json:"workflow_id"`
	RunID      string          `json:"run_id"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	StartedAt  *time.Time      `json:"started_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

// LastError is the last error of a job.
type LastError struct {
	Message   string    `json:"message"`
	Attempt   int       `json:"attempt"`
	At        time.Time `json:"at"`
	Retryable bool      `json:"retryable"`
}
