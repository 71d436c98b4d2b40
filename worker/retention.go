package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	retentionacts "github.com/acme/platform/activities/retention"
	"github.com/acme/platform/workflows/retention"
)

// registerRetention adds the retention workflow and its purge activity. The
// policy is the worker's (PLATFORM_RETENTION_*), read when a purge runs, so
// a changed setting applies from the next hourly run.
func registerRetention(r sdkworker.Registry, d Deps) {
	r.RegisterWorkflowWithOptions(retention.Workflow, workflow.RegisterOptions{Name: retention.Name})
	p := &retentionacts.Purger{DB: d.DB, Policy: d.Retention, Log: d.Log}
	r.RegisterActivityWithOptions(p.Purge, activity.RegisterOptions{Name: retention.PurgeActivity})
}

// ensureRetentionSchedule creates the Schedule that runs platform.retention
// every hour, once per task queue; like the daily roll-up's, every worker
// tries at start and all but the first find it there. A run still going
// when the next is due makes that one skip (the Schedule's default).
func ensureRetentionSchedule(ctx context.Context, d Deps) {
	_, err := d.Temporal.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   retention.ScheduleID(d.ControlTaskQueue),
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour, Offset: 25 * time.Minute}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        "platform-retention",
			Workflow:  retention.Name,
			Args:      []any{retention.Input{}},
			TaskQueue: d.ControlTaskQueue,
		},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		d.Log.Warn("retention not scheduled; the next worker start retries", "error", fmt.Errorf("create the retention schedule: %w", err))
	}
}
