package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	rolloutacts "github.com/acme/platform/activities/rollout"
	"github.com/acme/platform/workflows/rollout"
)

// newRolloutActivities builds the rollout activities once per process, so
// that their metric is registered once however many queues run them.
func newRolloutActivities(d Deps) *rolloutacts.Activities {
	reg := d.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a, err := rolloutacts.New(d.DB, reg, d.Log)
	if err != nil {
		// Only a clashing metric name gets here; the activities matter more
		// than the metric, so they run with a private one.
		d.Log.Error("rollout metrics not registered; rollout_rollbacks_total is not exported", "error", err)
		a, _ = rolloutacts.New(d.DB, prometheus.NewRegistry(), d.Log)
	}
	a.PrometheusURL = d.PrometheusURL
	return a
}

// registerRollouts adds the guarded-rollout workflow and its activities.
func registerRollouts(r sdkworker.Registry, a *rolloutacts.Activities) {
	r.RegisterWorkflowWithOptions(rollout.Workflow, workflow.RegisterOptions{Name: rollout.Name})
	for name, fn := range map[string]any{
		rollout.BeginActivity:   a.Begin,
		rollout.SplitActivity:   a.Split,
		rollout.ObserveActivity: a.Observe,
		rollout.ResetActivity:   a.Reset,
		rollout.RecordActivity:  a.Record,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
