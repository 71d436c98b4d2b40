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

	jobacts "github.com/acme/platform/activities/job"
	"github.com/acme/platform/workflows/job"
)

// registerJobs adds the background jobs' workflows and activities to r.
func registerJobs(r sdkworker.Registry, d Deps) {
	for name, wf := range map[string]any{
		job.WebhookName:     job.Webhook,
		job.RollupName:      job.Rollup,
		job.UploadName:      job.Upload,
		job.DailyRollupName: job.DailyRollup,
	} {
		r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: name})
	}
	jobs := &jobacts.Jobs{DB: d.DB}
	webhook := &jobacts.Webhook{DB: d.DB, Client: jobacts.NewWebhookClient(d.WebhookAllowedNetworks, d.WebhookTimeout, d.WebhookAllowedPorts...),
		Inputs: jobacts.StartEvents{Temporal: d.Temporal}, Limits: webhookLimiter(d)}
	usage := &jobacts.Usage{DB: d.DB}
	uploads := &jobacts.Uploads{DB: d.DB}
	for name, fn := range map[string]any{
		job.CreateActivity:         jobs.Create,
		job.RecordActivity:         jobs.Record,
		job.DeliverWebhookActivity: webhook.Deliver,
		job.RollupUsageActivity:    usage.Rollup,
		job.ProcessUploadActivity:  uploads.Process,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// webhookLimiter bounds each principal's deliveries. A slot's lease
// outlives the longest delivery (the client's timeout) with a margin, so it
// is released by its delivery, or by expiry when the worker died.
func webhookLimiter(d Deps) *jobacts.Limiter {
	return jobacts.NewLimiter(d.Redis, d.Keys, jobacts.DeliveryLimits{
		MaxInFlight: d.WebhookMaxInFlight, Rate: d.WebhookRate, Period: d.WebhookRatePeriod,
		Lease: max(d.WebhookTimeout, 10*time.Second) + 30*time.Second,
	})
}

// ensureRollupSchedule creates the Schedule that runs yesterday's usage
// roll-up every day at 00:15 UTC, once per task queue. Every worker tries at
// start; all but the first find it already there, which is fine.
func ensureRollupSchedule(ctx context.Context, d Deps) error {
	_, err := d.Temporal.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: job.DailyRollupScheduleID(d.TaskQueue),
		Spec: client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
			Hour:   []client.ScheduleRange{{Start: 0}},
			Minute: []client.ScheduleRange{{Start: 15}},
		}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        "platform-usage-rollup-daily",
			Workflow:  job.DailyRollupName,
			TaskQueue: d.TaskQueue,
		},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create the daily usage roll-up schedule: %w", err)
	}
	return nil
}
