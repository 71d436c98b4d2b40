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

	drillacts "github.com/acme/platform/activities/drill"
	"github.com/acme/platform/drills"
	"github.com/acme/platform/workflows/drill"
	"github.com/acme/platform/workflows/retention"
)

// registerDrills adds the disaster-recovery drill workflow and its
// activities. Without a backup store (Deps.Backups) only the workflow and
// its record activity are registered, and backup steps fail until one is
// configured.
func registerDrills(r sdkworker.Registry, d Deps) {
	r.RegisterWorkflowWithOptions(drill.Workflow, workflow.RegisterOptions{Name: drill.Name})
	rec := &drillacts.Records{DB: d.DB}
	r.RegisterActivityWithOptions(rec.Record, activity.RegisterOptions{Name: drill.RecordActivity})
	a := &drillacts.Activities{Config: d.Config, DB: d.DB, Redis: d.Redis, Store: d.Backups, Temporal: d.Temporal, Log: d.Log}
	for name, fn := range map[string]any{
		drill.BackupActivity:       a.Backup,
		drill.VerifyBackupActivity: a.VerifyBackup,
		drill.RestoreActivity:      a.Restore,
		drill.CheckRestoreActivity: a.CheckRestore,
		drill.CleanupActivity:      a.Cleanup,
		drill.PruneBackupsActivity: a.PruneBackups,
		drill.CacheLossActivity:    a.CacheLoss,
		drill.CapacityActivity:     a.Capacity,
		drill.DegradedActivity:     a.Degraded,
		drill.RemoveToxicsActivity: a.RemoveToxics,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	r.RegisterActivityWithOptions(a.CheckReplication, activity.RegisterOptions{Name: drill.CheckReplicationActivity})
	r.RegisterActivityWithOptions(a.CheckPatroni, activity.RegisterOptions{Name: drill.CheckPatroniActivity})
	r.RegisterActivityWithOptions(a.Failover, activity.RegisterOptions{Name: drill.FailoverActivity})
	// The hourly platform.retention run sweeps what lost drill workers left.
	r.RegisterActivityWithOptions(a.SweepScratch, activity.RegisterOptions{Name: retention.SweepDrillScratchActivity})
	if d.Registry != nil {
		if err := d.Registry.Register(drillacts.NewMetrics(d.DB)); err != nil {
			d.Log.Error("drill metrics not registered", "error", err)
		}
	}
}

// DrillScheduleID returns the id of the Schedule that runs scenario on the
// control task queue.
func DrillScheduleID(controlQueue, scenario string) string {
	return "platform-drill-" + scenario + "-" + controlQueue
}

// ensureDrillSchedules creates the Schedules of the nightly backup and the
// weekly restore_verify drill (PLATFORM_DRILL_*_SCHEDULE; empty disables
// one), once per control task queue: every worker tries at start and all but
// the first find them there. They start on the control queue as "system".
func ensureDrillSchedules(ctx context.Context, d Deps) {
	rto, rpo := d.Config.DrillRTOObjective.Seconds(), d.Config.DrillRPOObjective.Seconds()
	for _, s := range []struct {
		scenario, cron string
		objectives     drill.Objectives
	}{
		{drills.ScenarioBackup, d.Config.DrillBackupSchedule, drill.Objectives{}},
		{drills.ScenarioRestoreVerify, d.Config.DrillRestoreSchedule, drill.Objectives{RTOSeconds: &rto, RPOSeconds: &rpo}},
	} {
		if s.cron == "" {
			continue
		}
		_, err := d.Temporal.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID:   DrillScheduleID(d.ControlTaskQueue, s.scenario),
			Spec: client.ScheduleSpec{CronExpressions: []string{s.cron}},
			Action: &client.ScheduleWorkflowAction{
				ID:        "platform-drill-" + s.scenario,
				Workflow:  drill.Name,
				Args:      []any{drill.Input{Principal: "system", Scenario: s.scenario, Objectives: s.objectives}},
				TaskQueue: d.ControlTaskQueue,
			},
		})
		if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			d.Log.Warn("drill not scheduled; the next worker start retries", "scenario", s.scenario,
				"error", fmt.Errorf("create the %s drill schedule: %w", s.scenario, err))
		}
	}
}
