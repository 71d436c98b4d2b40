package worker

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/activities"
	"github.com/acme/platform/workflows"
)

// registerJobs adds the background jobs' workflows and activities to r.
func registerJobs(r sdkworker.Registry, d Deps) {
	for name, wf := range map[string]any{
		workflows.WebhookJobWorkflowName:  workflows.WebhookJob,
		workflows.RollupJobWorkflowName:   workflows.RollupJob,
		workflows.UploadJobWorkflowName:   workflows.UploadJob,
		workflows.DailyRollupWorkflowName: workflows.DailyRollup,
	} {
		r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: name})
	}
	jobs := &activities.Jobs{DB: d.DB}
	webhook := &activities.Webhook{DB: d.DB, Client: activities.NewWebhookClient(d.WebhookAllowedNetworks, d.WebhookTimeout)}
	usage := &activities.Usage{DB: d.DB}
	uploads := &activities.Uploads{DB: d.DB}
	for name, fn := range map[string]any{
		workflows.CreateJobActivityName:      jobs.Create,
		workflows.RecordJobActivityName:      jobs.Record,
		workflows.DeliverWebhookActivityName: webhook.Deliver,
		workflows.RollupUsageActivityName:    usage.Rollup,
		workflows.ProcessUploadActivityName:  uploads.Process,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// ensureRollupSchedule creates the Schedule that runs yesterday's usage
// roll-up every day at 00:15 UTC, once per task queue. Every worker tries at
// start; all but the first find it already there, which is fine.
func ensureRollupSchedule(ctx context.Context, d Deps) error {
	_, err := d.Temporal.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: workflows.DailyRollupScheduleID(d.TaskQueue),
		Spec: client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
			Hour:   []client.ScheduleRange{{Start: 0}},
			Minute: []client.ScheduleRange{{Start: 15}},
		}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        "platform-usage-rollup-daily",
			Workflow:  workflows.DailyRollupWorkflowName,
			TaskQueue: d.TaskQueue,
		},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create the daily usage roll-up schedule: %w", err)
	}
	return nil
}
