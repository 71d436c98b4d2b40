package worker

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	scalingacts "github.com/acme/platform/activities/scaling"
	"github.com/acme/platform/internal/config"
	wf "github.com/acme/platform/workflows/scaling"
)

// TestScalingDrivers_KubernetesOutsideACluster: the registry has a
// kubernetes driver even where no cluster is reachable; building the
// registry does not fail, and using it fails with a clear error.
func TestScalingDrivers_KubernetesOutsideACluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("HOME", t.TempDir())
	cfg := config.Config{ScalingKubernetesNamespace: "platform",
		ScalingKubernetesDeployments: map[string]string{"worker": "platform-worker", "api": "platform-api"}}
	drivers := scalingDrivers(Deps{Config: cfg})
	if drivers["kubernetes"] == nil {
		t.Fatal("no kubernetes driver in the registry")
	}
	a := &scalingacts.Activities{Drivers: drivers}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a.Replicas)
	_, err := env.ExecuteActivity(a.Replicas, wf.DriverInput{Target: "worker", Driver: "kubernetes"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != scalingacts.ErrTypeDriverUnavailable {
		t.Fatalf("err = %v, want %s", err, scalingacts.ErrTypeDriverUnavailable)
	}
	if !strings.Contains(app.Message(), "KUBECONFIG") {
		t.Errorf("message %q does not say what is missing", app.Message())
	}
	if err := drivers["dry_run"].Scale(context.Background(), "worker", 2); err != nil {
		t.Errorf("dry_run: %v", err)
	}
}

func TestKubernetesNamespace(t *testing.T) {
	if got := kubernetesNamespace("ops"); got != "ops" {
		t.Errorf("configured: %q", got)
	}
	// This machine is no pod: no service account namespace file.
	if got := kubernetesNamespace(""); got != "default" {
		t.Errorf("unset outside a pod: %q, want default", got)
	}
}
