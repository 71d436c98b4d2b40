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
	// SweepDrillScratchActivity drops the scratch databases and removes the
	// scratch directories (and their redis-server) that restore and
	// cache_loss drills left behind when their worker was lost: older than
	// PLATFORM_DRILL_SCRATCH_MAX_AGE and owned by no drill still running.
	// The drill workers register it on the control task queue.
	SweepDrillScratchActivity = "platform.retention.drill_scratch"
)

// sweepVersion marks runs that sweep drill scratch after the purges.
const sweepVersion = "drill-scratch-sweep"

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

// SweepResult says what the drill scratch sweep removed and what it
// left: scratch targets too young or owned by a running drill.
type SweepResult struct {
	Databases []string `json:"databases_dropped"`
	Dirs      []string `json:"dirs_removed"`
	Redis     int      `json:"redis_servers_stopped"`
	Kept      int      `json:"kept"`
}

// Result is every table's purge, in Tables order, and the drill scratch
// sweep.
type Result struct {
	Purges []PurgeResult `json:"purges"`
	Sweep  *SweepResult  `json:"drill_scratch,omitempty"`
}

// purgeLimit bounds one purge attempt; the Schedule skips an hour while a
// run is still going, and a backlog is worked off across attempts, each
// batch committed on its own.
const purgeLimit = 50 * time.Minute

// Workflow purges every table, then sweeps drill scratch. A table that
// fails does not stop the others; the workflow then fails naming it, and
// the next hour tries again.
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
	if workflow.GetVersion(ctx, sweepVersion, workflow.DefaultVersion, 1) == 1 {
		var sw SweepResult
		if err := workflow.ExecuteActivity(ctx, SweepDrillScratchActivity).Get(ctx, &sw); err != nil {
			workflow.GetLogger(ctx).Warn("drill scratch sweep failed", "error", err)
			failed = append(failed, "drill scratch")
		} else {
			res.Sweep = &sw
		}
	}
	if len(failed) > 0 {
		return res, temporal.NewApplicationError(fmt.Sprintf("retention failed for %s; the next run retries", strings.Join(failed, ", ")), "RetentionFailed")
	}
	return res, nil
}
