package kubernetes

import (
	"context"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const ns = "platform"

var deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

func deployment(name string, replicas, ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, ResourceVersion: "1"},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
		Status:     appsv1.DeploymentStatus{Replicas: replicas, ReadyReplicas: ready},
	}
}

// withScaleSubresource makes the fake clientset serve deployments/scale the
// way the API server does (the fake's object tracker does not): GetScale
// reads the Deployment's spec.replicas and resourceVersion; UpdateScale
// refuses a stale resourceVersion with 409 Conflict and otherwise writes
// spec.replicas into the Deployment and bumps its resourceVersion.
func withScaleSubresource(cs *fake.Clientset) {
	tracker := cs.Tracker()
	get := func(name string) (*appsv1.Deployment, error) {
		obj, err := tracker.Get(deploymentsGVR, ns, name)
		if err != nil {
			return nil, err
		}
		return obj.(*appsv1.Deployment).DeepCopy(), nil
	}
	cs.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		dep, err := get(a.(k8stesting.GetAction).GetName())
		if err != nil {
			return true, nil, err
		}
		return true, &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: dep.Name, Namespace: ns, ResourceVersion: dep.ResourceVersion},
			Spec:       autoscalingv1.ScaleSpec{Replicas: *dep.Spec.Replicas},
			Status:     autoscalingv1.ScaleStatus{Replicas: dep.Status.Replicas},
		}, nil
	})
	cs.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		scale := a.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
		dep, err := get(scale.Name)
		if err != nil {
			return true, nil, err
		}
		if scale.ResourceVersion != "" && scale.ResourceVersion != dep.ResourceVersion {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, scale.Name,
				errString("the object has been modified; please apply your changes to the latest version and try again"))
		}
		bump(dep)
		dep.Spec.Replicas = &scale.Spec.Replicas
		if err := tracker.Update(deploymentsGVR, dep, ns); err != nil {
			return true, nil, err
		}
		out := scale.DeepCopy()
		out.ResourceVersion = dep.ResourceVersion
		return true, out, nil
	})
}

type errString string

func (e errString) Error() string { return string(e) }

func bump(dep *appsv1.Deployment) {
	rv, _ := strconv.Atoi(dep.ResourceVersion)
	dep.ResourceVersion = strconv.Itoa(rv + 1)
}

func newDriver(t *testing.T, objs ...runtime.Object) (*Driver, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	withScaleSubresource(cs)
	return NewWithClient(cs, ns, map[string]string{"worker": "platform-worker", "api": "platform-api"}), cs
}

// specReplicas reads the stored Deployment through the tracker, so the
// read is not among the recorded actions.
func specReplicas(t *testing.T, cs *fake.Clientset, name string) int32 {
	t.Helper()
	obj, err := cs.Tracker().Get(deploymentsGVR, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return *obj.(*appsv1.Deployment).Spec.Replicas
}

// verbs lists the clientset calls as "verb resource/subresource".
func verbs(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		s := a.GetVerb() + " " + a.GetResource().Resource
		if a.GetSubresource() != "" {
			s += "/" + a.GetSubresource()
		}
		out = append(out, s)
	}
	return out
}

func TestScale_UpAndDownThroughTheScaleSubresource(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to int32
	}{{"up", 1, 4}, {"down", 4, 1}, {"to zero", 2, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			d, cs := newDriver(t, deployment("platform-worker", tc.from, tc.from), deployment("platform-api", 2, 2))
			if err := d.Scale(context.Background(), "worker", tc.to); err != nil {
				t.Fatal(err)
			}
			if got := specReplicas(t, cs, "platform-worker"); got != tc.to {
				t.Errorf("spec.replicas = %d, want %d", got, tc.to)
			}
			if got := specReplicas(t, cs, "platform-api"); got != 2 {
				t.Errorf("the api Deployment changed to %d replicas", got)
			}
			want := []string{"get deployments/scale", "update deployments/scale"}
			if got := verbs(cs); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("calls = %v, want %v (the scale subresource only, never the whole Deployment)", got, want)
			}
			update := cs.Actions()[1].(k8stesting.UpdateAction)
			if s := update.GetObject().(*autoscalingv1.Scale); s.Spec.Replicas != tc.to || s.ResourceVersion != "1" || s.Name != "platform-worker" {
				t.Errorf("UpdateScale sent %+v, want replicas %d at resourceVersion 1", s, tc.to)
			}
		})
	}
}

func TestScale_SameCountWritesNothing(t *testing.T) {
	d, cs := newDriver(t, deployment("platform-api", 3, 3))
	if err := d.Scale(context.Background(), "api", 3); err != nil {
		t.Fatal(err)
	}
	if got := verbs(cs); len(got) != 1 || got[0] != "get deployments/scale" {
		t.Errorf("calls = %v, want only the read", got)
	}
}

func TestScale_ConcurrentChangeIsAConflict(t *testing.T) {
	d, cs := newDriver(t, deployment("platform-worker", 2, 2))
	// Another writer (kubectl scale, another controller) changes the
	// Deployment between our read of the scale and our update.
	cs.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "scale" {
			obj, _ := cs.Tracker().Get(deploymentsGVR, ns, "platform-worker")
			dep := obj.(*appsv1.Deployment).DeepCopy()
			bump(dep)
			if err := cs.Tracker().Update(deploymentsGVR, dep, ns); err != nil {
				t.Fatal(err)
			}
		}
		return false, nil, nil
	})
	err := d.Scale(context.Background(), "worker", 5)
	if !apierrors.IsConflict(err) {
		t.Fatalf("err = %v, want a Conflict (apierrors.IsConflict) surfaced", err)
	}
	if got := specReplicas(t, cs, "platform-worker"); got != 2 {
		t.Errorf("spec.replicas = %d after a conflict, want 2 unchanged", got)
	}
}

func TestScale_MissingDeploymentIsNotFound(t *testing.T) {
	d, _ := newDriver(t) // the worker maps to a Deployment that does not exist
	err := d.Scale(context.Background(), "worker", 2)
	if !apierrors.IsNotFound(err) {
		t.Fatalf("Scale: err = %v, want NotFound surfaced", err)
	}
	if _, _, err := d.Replicas(context.Background(), "worker"); !apierrors.IsNotFound(err) {
		t.Fatalf("Replicas: err = %v, want NotFound surfaced", err)
	}
}

func TestUnknownTargetCallsNothing(t *testing.T) {
	d, cs := newDriver(t, deployment("platform-worker", 1, 1))
	if err := d.Scale(context.Background(), "scheduler", 2); err == nil || !strings.Contains(err.Error(), `unknown target "scheduler"`) {
		t.Errorf("Scale: err = %v, want unknown target", err)
	}
	if _, _, err := d.Replicas(context.Background(), "scheduler"); err == nil {
		t.Error("Replicas of an unknown target: no error")
	}
	if err := d.Scale(context.Background(), "worker", -1); err == nil {
		t.Error("Scale to -1: no error")
	}
	if got := verbs(cs); len(got) != 0 {
		t.Errorf("calls = %v, want none", got)
	}
}

func TestReplicas_ReadyFromReadyReplicas(t *testing.T) {
	d, cs := newDriver(t, deployment("platform-worker", 1, 1))
	ctx := context.Background()
	if err := d.Scale(ctx, "worker", 4); err != nil {
		t.Fatal(err)
	}
	desired, ready, err := d.Replicas(ctx, "worker")
	if err != nil || desired != 4 || ready != 1 {
		t.Fatalf("Replicas = %d, %d, %v; want 4 desired, 1 ready (new pods not ready yet)", desired, ready, err)
	}
	// The Deployment controller reports three ready pods out of four
	// (status.replicas counts pods that run but are not ready).
	dep, _ := cs.AppsV1().Deployments(ns).Get(ctx, "platform-worker", metav1.GetOptions{})
	dep.Status.Replicas, dep.Status.ReadyReplicas, dep.Status.AvailableReplicas = 4, 3, 2
	if _, err := cs.AppsV1().Deployments(ns).UpdateStatus(ctx, dep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if desired, ready, err = d.Replicas(ctx, "worker"); err != nil || desired != 4 || ready != 3 {
		t.Fatalf("Replicas = %d, %d, %v; want 4 desired, 3 ready", desired, ready, err)
	}
}

func TestReplicas_UnsetSpecMeansOne(t *testing.T) {
	dep := deployment("platform-api", 0, 1)
	dep.Spec.Replicas = nil
	d, _ := newDriver(t, dep)
	desired, ready, err := d.Replicas(context.Background(), "api")
	if err != nil || desired != 1 || ready != 1 {
		t.Fatalf("Replicas = %d, %d, %v; want 1, 1", desired, ready, err)
	}
}

func TestNew_RejectsBadNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ns   string
		deps map[string]string
	}{
		{"empty namespace", "", map[string]string{"worker": "w"}},
		{"bad namespace", "Platform_NS", map[string]string{"worker": "w"}},
		{"no targets", "platform", nil},
		{"bad deployment", "platform", map[string]string{"worker": "Worker Deployment"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.ns, tc.deps); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

func TestNew_ReadsKUBECONFIGOutsideACluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", t.TempDir()+"/missing")
	_, err := New("platform", map[string]string{"worker": "platform-worker"})
	if err == nil || !strings.Contains(err.Error(), "KUBECONFIG") {
		t.Fatalf("err = %v, want the kubeconfig error", err)
	}
}
