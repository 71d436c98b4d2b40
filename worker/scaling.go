package worker

import (
	"context"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	scalingacts "github.com/acme/platform/activities/scaling"
	sc "github.com/acme/platform/scaling"
	"github.com/acme/platform/scaling/kubernetes"
	"github.com/acme/platform/scaling/local"
	wf "github.com/acme/platform/workflows/scaling"
)

// scalingDrivers is the registry of scaling drivers a policy or an action
// may name. Every driver satisfies activities/scaling.Driver.
func scalingDrivers(d Deps) map[string]scalingacts.Driver {
	drivers := map[string]scalingacts.Driver{
		sc.DriverDryRun: &scalingacts.DryRun{},
		sc.DriverLocal:  local.Driver{Dir: d.Config.ScalingLocalDir},
	}
	// Built on first use: outside a cluster (and without KUBECONFIG) the
	// worker still starts, and a policy or action naming kubernetes fails
	// with the reason in its decision or action.
	namespace, deployments := d.Config.ScalingKubernetesNamespace, d.Config.ScalingKubernetesDeployments
	drivers[sc.DriverKubernetes] = &scalingacts.Lazy{Build: func() (scalingacts.Driver, error) {
		return kubernetes.New(kubernetesNamespace(namespace), deployments)
	}}
	return drivers
}

// serviceAccountNamespace is where a pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// kubernetesNamespace is the configured namespace, else the pod's own,
// else "default" (client-go's default too).
func kubernetesNamespace(configured string) string {
	if configured != "" {
		return configured
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}

// newScalingActivities builds the scaling activities once per process.
func newScalingActivities(d Deps) *scalingacts.Activities {
	a := &scalingacts.Activities{DB: d.DB, Temporal: d.Temporal, Drivers: scalingDrivers(d),
		JobQueues: []string{d.TaskQueue}, PrometheusURL: d.PrometheusURL, Log: d.Log}
	if d.Registry != nil {
		if err := a.NewMetrics(d.Registry); err != nil {
			d.Log.Error("scaling metrics not registered", "error", err)
		}
	}
	return a
}

// ensureScalingControllers starts the controller of every policy unless
// it runs, so the autoscaler survives a controller that ended without its
// policy being deleted. A failure is logged: the next worker start, PUT,
// pause, resume or override starts it.
func ensureScalingControllers(ctx context.Context, d Deps, a *scalingacts.Activities) {
	if d.DB == nil || d.Temporal == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.StartControllers(ctx, d.ControlTaskQueue); err != nil {
		d.Log.Warn("scaling controllers not (re)started; the next worker start retries", "error", err)
	}
}

// registerScaling adds the autoscaler and scaling actions (control queue).
func registerScaling(r sdkworker.Registry, a *scalingacts.Activities) {
	r.RegisterWorkflowWithOptions(wf.ControllerWorkflow, workflow.RegisterOptions{Name: wf.ControllerName})
	r.RegisterWorkflowWithOptions(wf.ActionWorkflow, workflow.RegisterOptions{Name: wf.ActionName})
	for name, fn := range map[string]any{
		wf.LoadPolicyActivity:     a.LoadPolicy,
		wf.ReadSignalsActivity:    a.ReadSignals,
		wf.ReplicasActivity:       a.Replicas,
		wf.ScaleActivity:          a.Scale,
		wf.WaitReadyActivity:      a.WaitReady,
		wf.CheckServingActivity:   a.CheckServing,
		wf.RecordDecisionActivity: a.RecordDecision,
		wf.RecordActionActivity:   a.RecordAction,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
