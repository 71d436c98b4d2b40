// Package retention is the platform.retention workflow: a Temporal Schedule
// runs it every hour, and it has the purge activity delete, table by table,
// the rows older than their retention, in small batches. It holds the
// workflow, its contract (names, input and result types, the schedule's id)
// and its testsuite tests; like every package under workflows/, it imports
// no database code.
package retention

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Registered names.
const (
	Name          = "platform.retention"
	PurgeActivity = "platform.retention.purge"
)

// Tables with a retention, purged in this order.
const (
	Uploads       = "uploads"
	UsageEvents   = "usage_events"
	RolloutEvents = "rollout_events"
	RolloutChecks = "rollout_checks"
	FlagAudit     = "flag_audit"
)

// Tables lists every table with a retention.
var Tables = []string{Uploads, UsageEvents, RolloutEvents, RolloutChecks, FlagAudit}

// Batch sizes of one DELETE: small enough that each batch is a short
// transaction holding few row locks.
const (
	DefaultBatchSize = 1000
	MaxBatchSize     = 10000
)

// ScheduleID is the id of the Schedule that runs the workflow hourly for
// the workers of taskQueue.
func ScheduleID(taskQueue string) string { return "platform-retention-" + taskQueue }

// Input is the workflow's input; the Schedule passes the zero value.
// BatchSize 0 means DefaultBatchSize.
type Input struct {
	BatchSize int `json:"batch_size,omitempty"`
}

// PurgeInput is the purge activity's input: one table, in batches.
type PurgeInput struct {
	Table     string `json:"table"`
	BatchSize int    `json:"batch_size"`
}

// PurgeResult says what a purge did: the rows deleted (and, for uploads,
// the large objects unlinked) older than Cutoff; Disabled when the table's
// retention is 0.
type PurgeResult struct {
	Table    string    `json:"table"`
	Disabled bool      `json:"disabled,omitempty"`
	Cutoff   time.Time `json:"cutoff,omitzero"`
	Deleted  int64     `json:"deleted"`
	Unlinked int64     `json:"unlinked,omitempty"`
}

// Result is every table's purge, in Tables order.
type Result struct {
	Purges []PurgeResult `json:"purges"`
}

// purgeLimit bounds one purge attempt; the Schedule skips an hour while a
// run is still going, and a backlog is worked off across attempts, each
// batch committed on its own.
const purgeLimit = 50 * time.Minute

// Workflow purges every table. A table that fails does not stop the others;
// the workflow then fails naming it, and the next hour tries again.
func Workflow(ctx workflow.Context, in Input) (Result, error) {
	size := in.BatchSize
	if size <= 0 || size > MaxBatchSize {
		size = DefaultBatchSize
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: purgeLimit,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 3},
	})
	var res Result
	var failed []string
	for _, table := range Tables {
		var r PurgeResult
		if err := workflow.ExecuteActivity(ctx, PurgeActivity, PurgeInput{Table: table, BatchSize: size}).Get(ctx, &r); err != nil {
			workflow.GetLogger(ctx).Warn("retention purge failed", "table", table, "error", err)
			failed = append(failed, table)
			continue
		}
		res.Purges = append(res.Purges, r)
	}
	if len(failed) > 0 {
		return res, temporal.NewApplicationError(fmt.Sprintf("retention failed for %s; the next run retries", strings.Join(failed, ", ")), "RetentionFailed")
	}
	return res, nil
}
