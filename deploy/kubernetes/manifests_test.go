// Package kubernetes_test checks the kustomize manifests beside it: every
// document decodes strictly into its Kubernetes type (client-go's scheme;
// KEDA's ScaledObject, a CRD, into a local struct of the fields this
// project uses), the kustomization lists every file, and the objects agree
// with each other (selectors, probe ports, one autoscaler per Deployment,
// grace periods above the drain). No cluster runs here; this is what can
// be checked without one.
package kubernetes_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// strict decodes typed objects and fails on unknown or duplicate fields.
var strict = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// kustomization holds the fields of kustomize's Kustomization this
// directory uses; decoding it strictly rejects any other (or a typo).
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
	} `json:"labels,omitempty"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// scaledObject holds the fields of KEDA's ScaledObject (keda.sh/v1alpha1)
// that this project sets, with the HPA behaviour typed by client-go.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
		MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
		Advanced        *struct {
			HorizontalPodAutoscalerConfig *struct {
				Name     string                                         `json:"name,omitempty"`
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

// temporalScalerKeys are the metadata keys KEDA's temporal scaler reads
// (KEDA 2.17–2.22 docs); a key outside this set is a typo KEDA would
// silently ignore.
var temporalScalerKeys = []string{
	"endpoint", "endpointFromEnv", "namespace", "taskQueue", "targetQueueSize",
	"activationTargetQueueSize", "queueTypes", "workerDeploymentName", "workerDeploymentBuildId",
	"buildId", "selectAllActive", "selectUnversioned", "includeRunningWorkflowCount",
	"workflowTaskQueueForCount", "minConnectTimeout", "unsafeSsl", "tlsServerName", "enableTLS",
}

// decodeDoc decodes one YAML document strictly into its type.
func decodeDoc(doc []byte) (runtime.Object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	switch tm.GroupVersionKind().GroupKind().String() {
	case "Kustomization.kustomize.config.k8s.io":
		return nil, errors.New("a Kustomization is not a resource")
	case "ScaledObject.keda.sh":
		return decodeScaledObject(doc, tm)
	}
	obj, _, err := strict.Decode(doc, nil, nil)
	return obj, err
}

// runtimeScaledObject lets a scaledObject travel with the typed objects.
type runtimeScaledObject struct {
	runtime.Object
	so *scaledObject
}

func decodeScaledObject(doc []byte, tm metav1.TypeMeta) (runtime.Object, error) {
	if tm.APIVersion != "keda.sh/v1alpha1" {
		return nil, fmt.Errorf("ScaledObject apiVersion %q, want keda.sh/v1alpha1", tm.APIVersion)
	}
	var so scaledObject
	if err := yaml.UnmarshalStrict(doc, &so); err != nil {
		return nil, err
	}
	if so.Spec.ScaleTargetRef.Name == "" || len(so.Spec.Triggers) == 0 {
		return nil, errors.New("ScaledObject needs spec.scaleTargetRef.name and triggers")
	}
	for i, tr := range so.Spec.Triggers {
		if tr.Type != "temporal" {
			continue
		}
		for k := range tr.Metadata {
			if !slices.Contains(temporalScalerKeys, k) {
				return nil, fmt.Errorf("spec.triggers[%d].metadata: unknown temporal scaler key %q", i, k)
			}
		}
		if tr.Metadata["taskQueue"] == "" || (tr.Metadata["endpoint"] == "") == (tr.Metadata["endpointFromEnv"] == "") {
			return nil, fmt.Errorf("spec.triggers[%d]: the temporal scaler needs taskQueue and one of endpoint, endpointFromEnv", i)
		}
	}
	return runtimeScaledObject{so: &so}, nil
}

// splitDocs returns the non-empty YAML documents of data.
func splitDocs(data []byte) ([][]byte, error) {
	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

func readKustomization(t *testing.T) kustomization {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	return k
}

// objects decodes every resource the kustomization lists.
func objects(t *testing.T) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	for _, file := range readKustomization(t).Resources {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := splitDocs(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for i, doc := range docs {
			obj, err := decodeDoc(doc)
			if err != nil {
				t.Errorf("%s, document %d: %v", file, i+1, err)
				continue
			}
			objs = append(objs, obj)
		}
	}
	return objs
}

func TestKustomizationListsEveryFile(t *testing.T) {
	k := readKustomization(t)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" || k.Namespace != "platform" {
		t.Errorf("kustomization.yaml: %s %s namespace %q", k.APIVersion, k.Kind, k.Namespace)
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	listed := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(files, listed) {
		t.Errorf("kustomization resources = %v, files = %v", listed, files)
	}
	if len(k.Images) != 1 || k.Images[0].Name != "platform" || !strings.HasPrefix(k.Images[0].Digest, "sha256:") {
		t.Errorf("images = %+v, want the platform image pinned by digest", k.Images)
	}
}

func TestManifestsDecodeStrictly(t *testing.T) {
	kinds := map[string]int{}
	for _, obj := range objects(t) {
		switch o := obj.(type) {
		case runtimeScaledObject:
			kinds["ScaledObject"]++
		default:
			kinds[fmt.Sprintf("%T", o)]++
		}
	}
	for _, want := range []string{"*v1.Deployment", "*v1.Service", "*v1.PodDisruptionBudget", "*v2.HorizontalPodAutoscaler",
		"ScaledObject", "*v1.ServiceAccount", "*v1.Role", "*v1.RoleBinding", "*v1.NetworkPolicy", "*v1.ConfigMap"} {
		if kinds[want] == 0 {
			t.Errorf("no %s among the manifests (%v)", want, kinds)
		}
	}
}

// TestStrictDecodingCatchesTypos proves the decoding above can fail: each
// case is a manifest with one misspelled or unknown field.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"deployment field", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replica: 2
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}
`, `unknown field "spec.replica"`},
		{"probe field", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      terminationGracePeriodSecond: 30
      containers: [{name: c, image: i}]
`, `unknown field "spec.template.spec.terminationGracePeriodSecond"`},
		{"duplicate field", `
apiVersion: v1
kind: Service
metadata: {name: x}
spec:
  ports: [{port: 80}]
  ports: [{port: 81}]
`, `key "ports" already set in map`},
		{"hpa field", `
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: x}
spec:
  scaleTargetRef: {kind: Deployment, name: x}
  maxReplicas: 3
  behaviour: {}
`, `unknown field "spec.behaviour"`},
		{"pdb wrong version", `
apiVersion: policy/v1beta2
kind: PodDisruptionBudget
metadata: {name: x}
`, `no kind "PodDisruptionBudget" is registered for version "policy/v1beta2"`},
		{"scaledobject field", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: x}
  minReplicas: 1
  triggers: [{type: temporal, metadata: {endpoint: "t:7233", taskQueue: q}}]
`, `unknown field "minReplicas"`},
		{"temporal scaler key", `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: x}
  triggers: [{type: temporal, metadata: {endpoint: "t:7233", taskqueue: q}}]
`, `unknown temporal scaler key "taskqueue"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeDoc([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	var k kustomization
	if err := yaml.UnmarshalStrict([]byte("kind: Kustomization\nresource: [a.yaml]\n"), &k); err == nil {
		t.Error("a Kustomization with resource: instead of resources: decoded")
	}
}

// set gathers the decoded objects by kind.
type set struct {
	deployments map[string]*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	scaled      []*scaledObject
	roles       []*rbacv1.Role
	bindings    []*rbacv1.RoleBinding
	accounts    map[string]bool
	policies    []*networkingv1.NetworkPolicy
	config      map[string]string
}

func gather(t *testing.T) set {
	s := set{deployments: map[string]*appsv1.Deployment{}, accounts: map[string]bool{}, config: map[string]string{}}
	for _, obj := range objects(t) {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			s.deployments[o.Name] = o
		case *corev1.Service:
			s.services = append(s.services, o)
		case *policyv1.PodDisruptionBudget:
			s.pdbs = append(s.pdbs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			s.hpas = append(s.hpas, o)
		case runtimeScaledObject:
			s.scaled = append(s.scaled, o.so)
		case *rbacv1.Role:
			s.roles = append(s.roles, o)
		case *rbacv1.RoleBinding:
			s.bindings = append(s.bindings, o)
		case *corev1.ServiceAccount:
			s.accounts[o.Name] = true
		case *networkingv1.NetworkPolicy:
			s.policies = append(s.policies, o)
		case *corev1.ConfigMap:
			for k, v := range o.Data {
				s.config[k] = v
			}
		}
	}
	return s
}

// selects reports the Deployments whose pods sel matches.
func (s set) selects(t *testing.T, sel *metav1.LabelSelector) []string {
	t.Helper()
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name, d := range s.deployments {
		if selector.Matches(labels.Set(d.Spec.Template.Labels)) {
			names = append(names, name)
		}
	}
	return names
}

func duration(t *testing.T, s set, key, fallback string) time.Duration {
	t.Helper()
	v, ok := s.config[key]
	if !ok {
		v = fallback
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", key, v, err)
	}
	return d
}

func TestDeploymentsProbesResourcesAndGrace(t *testing.T) {
	s := gather(t)
	// The README's defaults when the ConfigMap does not set them.
	drain := duration(t, s, "PLATFORM_DRAIN_TIMEOUT", "15s") + duration(t, s, "PLATFORM_SHUTDOWN_DELAY", "5s")
	for _, name := range []string{"platform-api", "platform-worker"} {
		d, ok := s.deployments[name]
		if !ok {
			t.Errorf("no Deployment %s", name)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("%s sets spec.replicas: its autoscaler owns the count and an apply would reset it", name)
		}
		if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector does not match its pods", name)
		}
		pod := d.Spec.Template.Spec
		if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain {
			t.Errorf("%s: terminationGracePeriodSeconds %v not above shutdown delay + drain timeout (%s)", name, g, drain)
		}
		if !s.accounts[pod.ServiceAccountName] {
			t.Errorf("%s: service account %q is not among the manifests", name, pod.ServiceAccountName)
		}
		for _, c := range pod.Containers {
			checkContainer(t, name, c)
		}
	}
}

func checkContainer(t *testing.T, deployment string, c corev1.Container) {
	t.Helper()
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name] = true
	}
	for _, p := range []struct {
		kind, path string
		probe      *corev1.Probe
	}{{"readiness", "/readyz", c.ReadinessProbe}, {"liveness", "/healthz", c.LivenessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s/%s: no HTTP %s probe", deployment, c.Name, p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "ops" || !ports["ops"] {
			t.Errorf("%s/%s: %s probe %s on port %s, want %s on the ops port", deployment, c.Name, p.kind,
				p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("%s/%s: no %s request", deployment, c.Name, r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("%s/%s: no %s limit", deployment, c.Name, r)
		}
	}
}

// TestOneAutoscalerPerDeployment: an HPA and a ScaledObject (which makes
// its own HPA) on one Deployment would fight; docs/scaling.md.
func TestOneAutoscalerPerDeployment(t *testing.T) {
	s := gather(t)
	owners := map[string][]string{}
	for _, h := range s.hpas {
		owners[h.Spec.ScaleTargetRef.Name] = append(owners[h.Spec.ScaleTargetRef.Name], "HPA "+h.Name)
	}
	for _, so := range s.scaled {
		owners[so.Spec.ScaleTargetRef.Name] = append(owners[so.Spec.ScaleTargetRef.Name], "ScaledObject "+so.Name)
	}
	for target, by := range owners {
		if _, ok := s.deployments[target]; !ok {
			t.Errorf("%v scale %q, which is not a Deployment here", by, target)
		}
		if len(by) > 1 {
			t.Errorf("Deployment %s has %d autoscalers: %v", target, len(by), by)
		}
	}
	if len(owners["platform-api"]) != 1 || len(owners["platform-worker"]) != 1 {
		t.Errorf("owners = %v, want an HPA for the API and a ScaledObject for the worker", owners)
	}
	for _, so := range s.scaled {
		for _, tr := range so.Spec.Triggers {
			if env := tr.Metadata["endpointFromEnv"]; env != "" && s.config[env] == "" {
				t.Errorf("ScaledObject %s reads the endpoint from %s, which platform-config does not set", so.Name, env)
			}
		}
	}
}

func TestSelectorsReachTheirPods(t *testing.T) {
	s := gather(t)
	for _, svc := range s.services {
		if got := s.selects(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}); len(got) != 1 {
			t.Errorf("Service %s selects %v, want one Deployment", svc.Name, got)
		}
	}
	for _, p := range s.pdbs {
		if got := s.selects(t, p.Spec.Selector); len(got) != 1 {
			t.Errorf("PodDisruptionBudget %s selects %v, want one Deployment", p.Name, got)
		}
	}
	for _, np := range s.policies {
		if len(np.Spec.PodSelector.MatchLabels) > 0 && len(s.selects(t, &np.Spec.PodSelector)) == 0 {
			t.Errorf("NetworkPolicy %s selects no pod", np.Name)
		}
	}
}

// TestScalerRoleAllowsOnlyTheScaleSubresource: the kubernetes driver needs
// get/update on deployments/scale and get on deployments, for the
// platform's Deployments only, bound to the worker's service account.
func TestScalerRoleAllowsOnlyTheScaleSubresource(t *testing.T) {
	s := gather(t)
	var role *rbacv1.Role
	for _, r := range s.roles {
		if r.Name == "platform-scaler" {
			role = r
		}
	}
	if role == nil {
		t.Fatal("no Role platform-scaler")
	}
	allowed := map[string][]string{}
	for _, rule := range role.Rules {
		for _, res := range rule.Resources {
			allowed[res] = append(allowed[res], rule.Verbs...)
			for _, name := range rule.ResourceNames {
				if _, ok := s.deployments[name]; !ok {
					t.Errorf("rule names %q, not a Deployment here", name)
				}
			}
			if len(rule.ResourceNames) == 0 {
				t.Errorf("rule on %s is not limited to named Deployments", res)
			}
		}
	}
	if got := slices.Sorted(slices.Values(allowed["deployments/scale"])); !slices.Equal(got, []string{"get", "update"}) {
		t.Errorf("deployments/scale verbs = %v, want get, update", got)
	}
	if got := allowed["deployments"]; !slices.Equal(got, []string{"get"}) {
		t.Errorf("deployments verbs = %v, want get only", got)
	}
	bound := false
	for _, b := range s.bindings {
		for _, sub := range b.Subjects {
			bound = bound || (b.RoleRef.Name == role.Name && sub.Kind == "ServiceAccount" && sub.Name == "platform-scaler")
		}
	}
	if !bound || s.deployments["platform-worker"].Spec.Template.Spec.ServiceAccountName != "platform-scaler" {
		t.Error("the platform-scaler Role is not bound to the worker's service account")
	}
}

// TestConfigKeysAreSettings: a misspelled PLATFORM_ key in the ConfigMap
// would be ignored silently; each must be a setting the README documents.
func TestConfigKeysAreSettings(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := gather(t)
	if len(s.config) == 0 {
		t.Fatal("no ConfigMap data")
	}
	for k := range s.config {
		if !bytes.Contains(readme, []byte("| `"+k+"` |")) {
			t.Errorf("platform-config sets %s, which the README's configuration table does not list", k)
		}
	}
}
