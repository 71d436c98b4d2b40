package worker

import (
	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	pingacts "github.com/acme/platform/activities/ping"
	"github.com/acme/platform/workflows/ping"
)

// registerPing adds the ping workflow, the smallest end-to-end check that
// API, Temporal, worker, Postgres and Redis are wired together.
func registerPing(r sdkworker.Registry, d Deps) {
	r.RegisterWorkflowWithOptions(ping.Workflow, workflow.RegisterOptions{Name: ping.Name})
	a := &pingacts.Activities{DB: d.DB, Redis: d.Redis, Keys: d.Keys}
	r.RegisterActivityWithOptions(a.Record, activity.RegisterOptions{Name: ping.RecordActivity})
}
