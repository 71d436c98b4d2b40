// Package kubernetes is the scaling driver for a platform that runs on
// Kubernetes: it changes a Deployment's replica count through the
// Deployment's scale subresource and reads its desired and ready replicas.
//
// It writes only the scale subresource (never the whole Deployment), so the
// RBAC it needs is get/update on deployments/scale plus get on deployments
// (deploy/kubernetes/rbac.yaml), and an update cannot overwrite a concurrent
// change of the pod template. No cluster runs where this package is
// developed: its tests use client-go's fake clientset.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Driver scales the Deployments of the platform's targets in one namespace.
type Driver struct {
	cs          k8s.Interface
	namespace   string
	deployments map[string]string // target → Deployment name
}

// New connects with the in-cluster configuration (the pod's service
// account) or, outside a cluster, with KUBECONFIG (or ~/.kube/config).
// deployments maps each target (worker, api) to its Deployment's name.
func New(namespace string, deployments map[string]string) (*Driver, error) {
	if err := validate(namespace, deployments); err != nil {
		return nil, err
	}
	cfg, err := restConfig()
	if err != nil {
		return nil, err
	}
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return NewWithClient(cs, namespace, deployments), nil
}

// NewWithClient uses cs, for tests (client-go's fake clientset) and for
// callers that build their own client. It copies deployments.
func NewWithClient(cs k8s.Interface, namespace string, deployments map[string]string) *Driver {
	return &Driver{cs: cs, namespace: namespace, deployments: maps.Clone(deployments)}
}

func restConfig() (*rest.Config, error) {
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("kubernetes in-cluster config: %w", err)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules() // KUBECONFIG, else ~/.kube/config
	cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes config (not in a cluster, so from KUBECONFIG): %w", err)
	}
	return cfg, nil
}

func validate(namespace string, deployments map[string]string) error {
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return fmt.Errorf("kubernetes namespace %q: %s", namespace, msgs[0])
	}
	if len(deployments) == 0 {
		return errors.New("kubernetes driver: no target is mapped to a Deployment")
	}
	for _, target := range sortedKeys(deployments) {
		if msgs := validation.IsDNS1123Subdomain(deployments[target]); len(msgs) > 0 {
			return fmt.Errorf("kubernetes Deployment %q of target %q: %s", deployments[target], target, msgs[0])
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// deployment returns the Deployment that runs target.
func (d *Driver) deployment(target string) (string, error) {
	name, ok := d.deployments[target]
	if !ok {
		return "", fmt.Errorf("kubernetes driver: unknown target %q (known: %v)", target, sortedKeys(d.deployments))
	}
	return name, nil
}

// Scale sets target's Deployment to replicas through the scale
// subresource. The update carries the resourceVersion that GetScale read,
// so a concurrent change (another controller, an operator's kubectl scale)
// fails with a Conflict error (apierrors.IsConflict) instead of being
// overwritten; errors are returned wrapped, not retried, so the caller
// (an activity with its retry policy) decides.
func (d *Driver) Scale(ctx context.Context, target string, replicas int32) error {
	name, err := d.deployment(target)
	if err != nil {
		return err
	}
	if replicas < 0 {
		return fmt.Errorf("kubernetes driver: replicas %d for %q is negative", replicas, target)
	}
	deployments := d.cs.AppsV1().Deployments(d.namespace)
	scale, err := deployments.GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get scale of deployment %s/%s: %w", d.namespace, name, err)
	}
	if scale.Spec.Replicas == replicas {
		return nil
	}
	next := &autoscalingv1.Scale{ObjectMeta: scale.ObjectMeta, Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	if _, err := deployments.UpdateScale(ctx, name, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("scale deployment %s/%s to %d: %w", d.namespace, name, replicas, err)
	}
	return nil
}

// Replicas returns target's Deployment's spec.replicas (1 when unset, the
// API server's default) and status.readyReplicas. Right after a Scale the
// status may still describe the previous spec until the Deployment
// controller observes it; a caller waiting for readiness polls until ready
// reaches desired.
func (d *Driver) Replicas(ctx context.Context, target string) (desired, ready int32, err error) {
	name, err := d.deployment(target)
	if err != nil {
		return 0, 0, err
	}
	dep, err := d.cs.AppsV1().Deployments(d.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("get deployment %s/%s: %w", d.namespace, name, err)
	}
	desired = 1
	if dep.Spec.Replicas != nil {
		desired = *dep.Spec.Replicas
	}
	return desired, dep.Status.ReadyReplicas, nil
}
