// Package worker runs the platform's Temporal workers: one per task queue
// (tenants' jobs, and platform control work such as rollouts), each with the
// workflows and activities of its queue, pollers and concurrency from
// configuration, stopping gracefully and letting running activities end.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"golang.org/x/sync/errgroup"

	retentionacts "github.com/acme/platform/activities/retention"
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/redis"
)

// Deps is what the worker's activities need.
type Deps struct {
	Temporal  client.Client
	TaskQueue string
	DB        *pgxpool.Pool
	Redis     goredis.UniversalClient
	Keys      redis.Keys
	Log       *slog.Logger

	DrainTimeout    time.Duration
	ActivityPollers int
	WorkflowPollers int
	MaxActivities   int

	// WebhookAllowedNetworks are private networks webhooks may reach anyway
	// (PLATFORM_WEBHOOK_ALLOWED_NETWORKS); WebhookTimeout bounds one delivery.
	WebhookAllowedNetworks []netip.Prefix
	WebhookTimeout         time.Duration
	// WebhookAllowedPorts are the ports of public addresses webhooks may
	// dial (PLATFORM_WEBHOOK_ALLOWED_PORTS); empty means 80 and 443.
	WebhookAllowedPorts []uint16

	// Registry receives the worker's domain metrics, such as
	// rollout_rollbacks_total; nil keeps them in a private registry.
	Registry prometheus.Registerer

	// ControlTaskQueue is the queue of platform work (rollouts), polled by a
	// worker of its own with ControlMaxActivities slots, so that no tenant's
	// jobs can hold the slots an auto-rollback needs.
	ControlTaskQueue     string
	ControlMaxActivities int

	// WebhookMaxInFlight and WebhookRate bound each principal's deliveries
	// across every worker (in Redis); zero disables a limit.
	WebhookMaxInFlight int
	WebhookRate        int
	WebhookRatePeriod  time.Duration

	// PrometheusURL is the server rollout guards query
	// (PLATFORM_PROMETHEUS_URL); empty fails Prometheus observations.
	PrometheusURL string
	// Config is the process's configuration; drills read the database and
	// Redis URLs, the tool paths and their schedules from it.
	Config config.Config
	// Backups is the backup store of the drills (PLATFORM_BACKUP_URL).
	Backups *backupstore.Store

	// Retention says how long the platform.retention schedule keeps rows.
	Retention retentionacts.Policy
}

// Run polls the jobs' task queue and the control task queue until ctx is
// done, then stops polling and waits up to DrainTimeout for running
// activities to finish. Each queue has its own SDK worker, so its own
// pollers and activity slots: a backlog of deliveries cannot hold the slots
// that rollout checks and roll-backs need.
func Run(ctx context.Context, d Deps) error {
	if d.ControlTaskQueue == "" || d.ControlTaskQueue == d.TaskQueue {
		return fmt.Errorf("the control task queue %q must be set and differ from %q", d.ControlTaskQueue, d.TaskQueue)
	}
	if err := ensureRollupSchedule(ctx, d); err != nil {
		d.Log.Warn("daily usage roll-up not scheduled; the next worker start retries", "error", err)
	}
	ensureRetentionSchedule(ctx, d)
	ensureDrillSchedules(ctx, d)
	rollouts := newRolloutActivities(d)
	scaling := newScalingActivities(d)
	ensureScalingControllers(ctx, d, scaling)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return runQueue(ctx, d, d.TaskQueue, d.MaxActivities, func(r sdkworker.Registry) {
			registerPing(r, d)
			registerJobs(r, d)
			// Rollouts started on this queue before it had a control queue
			// (or by hand) still finish here; the API starts them on the
			// control queue.
			registerRollouts(r, rollouts)
		})
	})
	g.Go(func() error {
		return runQueue(ctx, d, d.ControlTaskQueue, d.ControlMaxActivities, func(r sdkworker.Registry) {
			registerRollouts(r, rollouts)
			registerRetention(r, d)
			registerDrills(r, d)
			registerScaling(r, scaling)
		})
	})
	return g.Wait()
}

// runQueue polls one task queue with its own slots until ctx is done.
func runQueue(ctx context.Context, d Deps, queue string, maxActivities int, register func(sdkworker.Registry)) error {
	w := sdkworker.New(d.Temporal, queue, sdkworker.Options{
		MaxConcurrentActivityExecutionSize: maxActivities,
		MaxConcurrentActivityTaskPollers:   d.ActivityPollers,
		MaxConcurrentWorkflowTaskPollers:   d.WorkflowPollers,
		WorkerStopTimeout:                  d.DrainTimeout,
		// Cancellation reaches a running activity in a heartbeat's response;
		// sending heartbeats at least every second makes it prompt.
		MaxHeartbeatThrottleInterval: time.Second,
	})
	register(w)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on %s: %w", queue, err)
	}
	d.Log.Info("worker polling", "task_queue", queue, "max_activities", maxActivities)
	<-ctx.Done()
	d.Log.Info("worker stopping: no new tasks, waiting for running activities", "task_queue", queue,
		"drain_timeout", d.DrainTimeout)
	w.Stop()
	d.Log.Info("worker stopped", "task_queue", queue)
	return nil
}

// Register adds every workflow and activity of the platform to r. Tests use
// it to build workers on their own task queues.
func Register(r sdkworker.Registry, d Deps) {
	registerPing(r, d)
	registerJobs(r, d)
	registerRollouts(r, newRolloutActivities(d))
	registerRetention(r, d)
	registerDrills(r, d)
	registerScaling(r, newScalingActivities(d))
}
