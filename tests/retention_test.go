package tests

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/acme/platform/activities/retention"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/worker"
	wfretention "github.com/acme/platform/workflows/retention"
)

// TestRetention_ScheduledAtWorkerStartAndPurges: a worker creates the hourly
// retention Schedule; a run deletes the rows older than their retention.
func TestRetention_ScheduledAtWorkerStartAndPurges(t *testing.T) {
	s := newAPIStack(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, worker.Deps{Temporal: testenv.Temporal(t), TaskQueue: s.cfg.TaskQueue, DB: s.DB,
			Redis: s.Redis, Keys: s.Keys, Log: testenv.Logger(t), DrainTimeout: 2 * time.Second,
			ActivityPollers: 2, WorkflowPollers: 2, MaxActivities: 10,
			ControlTaskQueue: s.cfg.ControlTaskQueue, ControlMaxActivities: 10,
			Retention: retention.Policy{RolloutEvents: 7 * 24 * time.Hour}})
	}()
	t.Cleanup(func() { cancel(); <-done })
	for _, age := range []string{"40 days", "1 hour"} {
		if _, err := s.DB.Exec(context.Background(), `INSERT INTO rollout_events (rollout_id, at, targeting_key, variant, error)
			VALUES ('rol_x', now() - $1::interval, 'k', 'on', false)`, age); err != nil {
			t.Fatal(err)
		}
	}

	h := s.Temporal.ScheduleClient().GetHandle(context.Background(), wfretention.ScheduleID(s.cfg.ControlTaskQueue))
	t.Cleanup(func() { _ = h.Delete(context.Background()) })
	eventually(t, 10*time.Second, "the retention schedule", func() bool {
		d, err := h.Describe(context.Background())
		return err == nil && len(d.Schedule.Spec.Intervals) == 1 && d.Schedule.Spec.Intervals[0].Every == time.Hour
	})
	if err := h.Trigger(context.Background(), client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the old event purged", func() bool {
		var old, recent int
		err := s.DB.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE at < now() - interval '1 day'),
			count(*) FILTER (WHERE at > now() - interval '1 day') FROM rollout_events`).Scan(&old, &recent)
		return err == nil && old == 0 && recent == 1
	})
}
