package scaling_test

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	scalingacts "github.com/acme/platform/activities/scaling"
	"github.com/acme/platform/scaling/kubernetes"
	wf "github.com/acme/platform/workflows/scaling"
)

const ns = "platform"

// fakeCluster is a clientset holding the worker's Deployment whose scale
// subresource writes spec.replicas and, like a healthy cluster, makes the
// new pods ready at once.
func fakeCluster(t *testing.T, replicas int32) *fake.Clientset {
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "platform-worker", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas}, Status: appsv1.DeploymentStatus{ReadyReplicas: replicas}}
	cs := fake.NewClientset(dep)
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	load := func() *appsv1.Deployment {
		obj, err := cs.Tracker().Get(gvr, ns, "platform-worker")
		if err != nil {
			t.Fatal(err)
		}
		return obj.(*appsv1.Deployment).DeepCopy()
	}
	cs.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		d := load()
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: ns},
			Spec: autoscalingv1.ScaleSpec{Replicas: *d.Spec.Replicas}}, nil
	})
	cs.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		s := a.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
		d := load()
		d.Spec.Replicas = &s.Spec.Replicas
		d.Status.ReadyReplicas = s.Spec.Replicas
		return true, s, cs.Tracker().Update(gvr, d, ns)
	})
	return cs
}

func activityEnv(a *scalingacts.Activities) *testsuite.TestActivityEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a.Replicas)
	env.RegisterActivity(a.Scale)
	env.RegisterActivity(a.WaitReady)
	return env
}

// TestKubernetesDriver_ThroughTheActivities: the activities reach the
// kubernetes driver through the lazily built registry entry, as a worker
// in a cluster does (client-go's fake clientset stands in for the cluster).
func TestKubernetesDriver_ThroughTheActivities(t *testing.T) {
	cs := fakeCluster(t, 1)
	builds := 0
	a := &scalingacts.Activities{Drivers: map[string]scalingacts.Driver{"kubernetes": &scalingacts.Lazy{
		Build: func() (scalingacts.Driver, error) {
			builds++
			return kubernetes.NewWithClient(cs, ns, map[string]string{"worker": "platform-worker"}), nil
		}}}}
	env := activityEnv(a)
	in := wf.DriverInput{Target: "worker", Driver: "kubernetes"}
	if _, err := env.ExecuteActivity(a.Scale, wf.ScaleInput{Target: "worker", Driver: "kubernetes", Replicas: 3}); err != nil {
		t.Fatalf("scale: %v", err)
	}
	if _, err := env.ExecuteActivity(a.WaitReady, wf.ScaleInput{Target: "worker", Driver: "kubernetes", Replicas: 3, TimeoutSeconds: 5}); err != nil {
		t.Fatalf("wait ready: %v", err)
	}
	v, err := env.ExecuteActivity(a.Replicas, in)
	if err != nil {
		t.Fatalf("replicas: %v", err)
	}
	var got wf.ReplicasResult
	if err := v.Get(&got); err != nil {
		t.Fatal(err)
	}
	if got.Desired != 3 || got.Ready != 3 {
		t.Errorf("replicas = %+v, want 3 desired and ready", got)
	}
	if builds != 1 {
		t.Errorf("the driver was built %d times, want once", builds)
	}
}

// TestKubernetesDriver_UnavailableFailsTheActivityNotTheWorker: a driver
// that cannot be built fails each activity naming it with a non-retryable
// error that says why (it ends up in the decision's or action's notes),
// and is tried again at the next use.
func TestKubernetesDriver_UnavailableFailsTheActivityNotTheWorker(t *testing.T) {
	builds := 0
	a := &scalingacts.Activities{Drivers: map[string]scalingacts.Driver{"kubernetes": &scalingacts.Lazy{
		Build: func() (scalingacts.Driver, error) {
			builds++
			return nil, errors.New("not in a cluster and no KUBECONFIG")
		}}}}
	env := activityEnv(a)
	for range 2 {
		_, err := env.ExecuteActivity(a.Replicas, wf.DriverInput{Target: "worker", Driver: "kubernetes"})
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != scalingacts.ErrTypeDriverUnavailable || !app.NonRetryable() {
			t.Fatalf("err = %v, want a non-retryable %s error", err, scalingacts.ErrTypeDriverUnavailable)
		}
		if !strings.Contains(app.Message(), "no KUBECONFIG") || !strings.Contains(app.Message(), `"kubernetes"`) {
			t.Errorf("message %q does not say which driver and why", app.Message())
		}
	}
	if builds != 2 {
		t.Errorf("builds = %d, want a new try at each use", builds)
	}
}
