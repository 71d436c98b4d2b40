package job

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/acme/platform/jobs"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/jobs/retry"
)

// Names of the usage roll-up's activity and of the daily workflow that a
// Temporal Schedule runs.
const (
	RollupUsageActivity = "platform.usage.rollup"
	DailyRollupName     = "platform.usage.daily_rollup"
)

// SystemPrincipal owns the jobs the platform starts by itself, such as the
// daily roll-up; admins see them.
const SystemPrincipal = "system"

// RollupInput is the input of an analytics.rollup job: a time range, widened
// to whole hours when it is not aligned.
type RollupInput struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// RollupResult says what a roll-up did: the hours it covered, the hourly rows
// it computed and how many of them changed (none when a range is re-run).
type RollupResult struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Rows        int64     `json:"rows"`
	RowsChanged int64     `json:"rows_changed"`
}

// rollupAttemptLimit bounds one roll-up attempt (a range of up to 31 days).
const rollupAttemptLimit = 30 * time.Minute

// Rollup aggregates usage events of a range into hourly rows.
func Rollup(ctx workflow.Context, in Input) (json.RawMessage, error) {
	return runJob(ctx, in, jobKind{activity: RollupUsageActivity, startToClose: rollupAttemptLimit})
}

// DailyRollupScheduleID is the id of the Schedule that runs DailyRollup for
// the workers of taskQueue.
func DailyRollupScheduleID(taskQueue string) string {
	return "platform-usage-rollup-daily-" + taskQueue
}

// DailyRollupJobID is the job id of the daily roll-up of day on taskQueue:
// derived, so that a schedule firing twice for one day runs one job.
func DailyRollupJobID(taskQueue string, day time.Time) string {
	return ids.Derive(ids.Job, "daily-usage-rollup", taskQueue, day.UTC().Format(time.DateOnly))
}

// scheduledStartTime is the search attribute a Schedule sets on the
// workflows it starts: the nominal time of the run.
var scheduledStartTime = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// DailyRollup rolls up yesterday's usage (UTC) as an analytics.rollup job
// owned by the system principal. "Yesterday" is taken from the schedule's
// nominal time, so a run that starts late still rolls up the right day.
func DailyRollup(ctx workflow.Context) error {
	now, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStartTime)
	if !ok {
		now = workflow.Now(ctx)
	}
	today := now.UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -1)
	input, err := json.Marshal(RollupInput{From: from, To: today})
	if err != nil {
		return err
	}
	id := DailyRollupJobID(workflow.GetInfo(ctx).TaskQueueName, from)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            WorkflowID(id),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		// The job outlives this wrapper if it is terminated, so that the job
		// still reaches a final state and its row says so.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	err = workflow.ExecuteChildWorkflow(cctx, RollupName, Input{
		ID: id, Principal: SystemPrincipal, Type: jobs.TypeRollup, Input: input, Retry: retry.Defaults(),
	}).Get(ctx, nil)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return nil // this day's roll-up already ran or runs
	}
	if err != nil {
		return fmt.Errorf("roll up %s: %w", from.Format(time.DateOnly), err)
	}
	return nil
}
