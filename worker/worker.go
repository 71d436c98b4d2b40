// Package worker runs the platform's Temporal worker: it registers every
// workflow and activity on the task queue, tunes pollers and concurrency
// from configuration, and stops gracefully, letting running activities end.
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

	retentionacts "github.com/acme/platform/activities/retention"
	"github.com/acme/platform/internal/redis"
)

// Deps is what the worker's activities need.
type Deps struct {
	Temporal  client.Client
	TaskQueue string
	DB        *pgxpool.Pool
	Redis     *goredis.Client
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

	// Registry receives the worker's domain metrics, such as
	// rollout_rollbacks_total; nil keeps them in a private registry.
	Registry prometheus.Registerer

	// PrometheusURL is the server rollout guards query
	// (PLATFORM_PROMETHEUS_URL); empty fails Prometheus observations.
	PrometheusURL string
	// Retention says how long the platform.retention schedule keeps rows.
	Retention retentionacts.Policy
}

// Run polls the task queue until ctx is done, then stops polling and waits up
// to DrainTimeout for running activities to finish.
func Run(ctx context.Context, d Deps) error {
	w := sdkworker.New(d.Temporal, d.TaskQueue, sdkworker.Options{
		MaxConcurrentActivityExecutionSize: d.MaxActivities,
		MaxConcurrentActivityTaskPollers:   d.ActivityPollers,
		MaxConcurrentWorkflowTaskPollers:   d.WorkflowPollers,
		WorkerStopTimeout:                  d.DrainTimeout,
		// Cancellation reaches a running activity in a heartbeat's response;
		// sending heartbeats at least every second makes it prompt.
		MaxHeartbeatThrottleInterval: time.Second,
	})
	Register(w, d)
	if err := ensureRollupSchedule(ctx, d); err != nil {
		d.Log.Warn("daily usage roll-up not scheduled; the next worker start retries", "error", err)
	}
	ensureRetentionSchedule(ctx, d)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on %s: %w", d.TaskQueue, err)
	}
	d.Log.Info("worker polling", "task_queue", d.TaskQueue, "max_activities", d.MaxActivities)
	<-ctx.Done()
	d.Log.Info("worker stopping: no new tasks, waiting for running activities", "drain_timeout", d.DrainTimeout)
	w.Stop()
	d.Log.Info("worker stopped")
	return nil
}

// Register adds every workflow and activity of the platform to r. Tests use
// it to build workers on their own task queues.
func Register(r sdkworker.Registry, d Deps) {
	registerPing(r, d)
	registerJobs(r, d)
	registerRollouts(r, d)
	registerRetention(r, d)
}
