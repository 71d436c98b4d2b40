package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/activities"
	"github.com/acme/platform/workflows"
)

// registerRollouts adds the guarded-rollout workflow and its activities.
func registerRollouts(r sdkworker.Registry, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.Rollout, workflow.RegisterOptions{Name: workflows.RolloutWorkflowName})
	reg := d.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a, err := activities.NewRollouts(d.DB, reg, d.Log)
	if err != nil {
		// Only a clashing metric name gets here; the activities matter more
		// than the metric, so they run with a private one.
		d.Log.Error("rollout metrics not registered; rollout_rollbacks_total is not exported", "error", err)
		a, _ = activities.NewRollouts(d.DB, prometheus.NewRegistry(), d.Log)
	}
	for name, fn := range map[string]any{
		workflows.RolloutBeginActivityName:   a.Begin,
		workflows.RolloutSplitActivityName:   a.Split,
		workflows.RolloutObserveActivityName: a.Observe,
		workflows.RolloutResetActivityName:   a.Reset,
		workflows.RolloutRecordActivityName:  a.Record,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
