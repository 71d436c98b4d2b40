package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme/platform/api/keys"
	"github.com/acme/platform/internal/devserver"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/testenv"
)

// jaeger is a real Jaeger (v1.76.0, bin/jaeger) with in-memory storage, its
// OTLP receivers and query API on free loopback ports.
type jaeger struct {
	OTLPHTTP, OTLPGRPC, Query string // host:port
}

// startJaeger starts bin/jaeger (PLATFORM_JAEGER, which make sets) and stops
// it when the test ends.
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := jaegerBinary(t)
	port := func() string {
		p, err := devserver.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return "127.0.0.1:" + strconv.Itoa(p)
	}
	j := &jaeger{OTLPHTTP: port(), OTLPGRPC: port(), Query: port()}
	config := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: %q
    grpc:
      endpoint: %q
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
      http:
        endpoint: %q
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`, j.Query, port(), j.OTLPGRPC, j.OTLPHTTP)
	dir := t.TempDir()
	path := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "jaeger.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config=file:"+path)
	// Jaeger traces itself to the default OTLP endpoint (127.0.0.1:4317,
	// maybe someone else's); like Jaeger's own e2e tests, turn that off.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_SAMPLER=always_off")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("jaeger log:\n%s", out)
		}
	})
	eventually(t, 60*time.Second, "jaeger to answer", func() bool {
		resp, err := http.Get("http://" + j.Query + "/api/services")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return j
}

// jaegerBinary is the Jaeger to run. A missing binary fails the test when
// PLATFORM_JAEGER names it (make unit sets it and builds bin/jaeger first)
// or under CI; only a plain go test without it, outside CI, skips.
func jaegerBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PLATFORM_JAEGER")
	named := bin != ""
	if !named {
		bin, _ = filepath.Abs("../bin/jaeger")
	}
	_, err := os.Stat(bin)
	switch {
	case err == nil:
		return bin
	case named || os.Getenv("CI") == "true":
		t.Fatalf("no Jaeger at %s (PLATFORM_JAEGER=%q, CI=%q; make bin/jaeger builds it): %v", bin, os.Getenv("PLATFORM_JAEGER"), os.Getenv("CI"), err)
	default:
		t.Skipf("no Jaeger at %s (make bin/jaeger builds it; make unit sets PLATFORM_JAEGER): %v", bin, err)
	}
	return ""
}

// jaegerSpan is a span as Jaeger's query API returns it.
type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
	// Service is the service.name of the span's process.
	Service string `json:"-"`
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func (s jaegerSpan) tag(key string) string {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return fmt.Sprint(kv.Value)
		}
	}
	return ""
}

// trace returns the spans Jaeger holds of trace id (none when unknown).
func (j *jaeger) trace(t *testing.T, id string) []jaegerSpan {
	t.Helper()
	resp, err := http.Get("http://" + j.Query + "/api/traces/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var out struct {
		Data []struct {
			Spans     []jaegerSpan `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("jaeger trace %s: %d %s", id, resp.StatusCode, body)
	}
	var spans []jaegerSpan
	for _, d := range out.Data {
		for _, s := range d.Spans {
			s.Service = d.Processes[s.ProcessID].ServiceName
			spans = append(spans, s)
		}
	}
	return spans
}

// tracedPlatform is a real "platform api" and "platform worker" exporting
// to Jaeger: the API over OTLP/HTTP, the worker over OTLP/gRPC.
type tracedPlatform struct {
	base, admin string
}

func startTracedPlatform(t *testing.T, j *jaeger) *tracedPlatform {
	t.Helper()
	db, dbURL := testenv.Postgres(t)
	_, secret, err := (&keys.Store{DB: db}).Create(t.Context(), keys.NewKey{ID: ids.New(ids.Key), Principal: "ops", Name: "traces", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	_, prefix := testenv.Redis(t)
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	common := []string{
		"PLATFORM_DATABASE_URL=" + dbURL,
		"PLATFORM_REDIS_URL=" + testenv.RedisURL(),
		"PLATFORM_REDIS_PREFIX=" + string(prefix),
		"PLATFORM_TEMPORAL_ADDRESS=" + testenv.TemporalAddress(t),
		"PLATFORM_TASK_QUEUE=" + testenv.TaskQueue(t),
		"PLATFORM_CONTROL_TASK_QUEUE=" + testenv.TaskQueue(t),
		"PLATFORM_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8",
		"PLATFORM_BACKUP_URL=file://" + t.TempDir(), "PLATFORM_DRILL_SCRATCH_DIR=" + t.TempDir(),
		"PLATFORM_DRILL_BACKUP_SCHEDULE=", "PLATFORM_DRILL_RESTORE_SCHEDULE=",
		"PLATFORM_LOG_LEVEL=warn",
		"PLATFORM_TRACE_SAMPLE_RATIO=1",
		"PLATFORM_FLAGS_POLL_INTERVAL=1s",
		"OTEL_BSP_SCHEDULE_DELAY=100",
	}
	start := func(role string, env ...string) {
		startPlatform(t, append(append([]string(nil), common...), env...), role)
	}
	start("api", "PLATFORM_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port), "PLATFORM_OPS_ADDR=127.0.0.1:0",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+j.OTLPHTTP, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_SERVICE_NAME=platform-api")
	start("worker", "PLATFORM_WORKER_OPS_ADDR=127.0.0.1:0",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+j.OTLPGRPC, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_RESOURCE_ATTRIBUTES=service.name=platform-worker,deployment.environment=test")
	p := &tracedPlatform{base: "http://127.0.0.1:" + strconv.Itoa(port), admin: secret}
	waitReady(t, p.base, "the api", 30*time.Second)
	return p
}

// call sends a request to the real API; secret "" sends none.
func (p *tracedPlatform) call(t *testing.T, method, path, secret string, body any, headers ...string) response {
	t.Helper()
	s := &stack{t: t, URL: p.base}
	if secret != "" {
		headers = append(headers, bearer(secret)...)
	}
	return s.do(method, path, body, headers...)
}

// TestTraceExport_RequestToWorkflowToEveryCall sends one real request that
// starts a webhook job and finds, in Jaeger, the whole tree under one trace
// id: the API's server span → StartWorkflow → RunWorkflow → StartActivity →
// RunActivity → the activity's Postgres, Redis and HTTP client spans, each under its
// parent.
func TestTraceExport_RequestToWorkflowToEveryCall(t *testing.T) {
	j := startJaeger(t)
	p := startTracedPlatform(t, j)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

	res := p.call(t, http.MethodPost, "/v1/jobs", p.admin, webhookJob(rc.URL, map[string]any{"traced": true}, nil))
	if res.Status != http.StatusCreated {
		t.Fatalf("POST /v1/jobs = %d %s", res.Status, res.Body)
	}
	tid := res.Header.Get("X-Trace-Id")
	var job jobJSON
	res.JSON(t, &job)
	eventually(t, 30*time.Second, "the webhook to be delivered", func() bool { return len(rc.got()) > 0 })
	if tp := rc.got()[0].Header.Get("Traceparent"); tp != "" {
		t.Errorf("a tenant's receiver got our traceparent %q", tp)
	}

	var spans []jaegerSpan
	var byID map[string]jaegerSpan
	var leaves map[string]jaegerSpan
	// Wait for the whole tree: the activity's client spans arrive before
	// the workflow's span, which ends with the workflow. On time-out the
	// checks below say what is missing.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		spans = j.trace(t, tid)
		byID = map[string]jaegerSpan{}
		for _, s := range spans {
			byID[s.SpanID] = s
		}
		leaves = map[string]jaegerSpan{}
		complete := true
		for _, s := range spans {
			complete = complete && (s.parent() == "" || byID[s.parent()].SpanID != "")
			kind := ""
			switch {
			case s.tag("db.system.name") == "postgresql" || s.tag("db.system") == "postgresql":
				kind = "sql"
			case s.tag("db.system") == "redis" || s.tag("db.system.name") == "redis":
				kind = "redis"
			case s.OperationName == "HTTP POST" && s.tag("span.kind") == "client":
				kind = "http"
			}
			if kind != "" && hasAncestor(byID, s, "RunActivity:") {
				leaves[kind] = s
			}
		}
		if len(leaves) == 3 && complete || time.Now().After(deadline) {
			break
		}
	}
	if len(leaves) != 3 {
		t.Errorf("found %d spans of trace %s in jaeger, of SQL, Redis and HTTP under an activity only %v", len(spans), tid, slices.Collect(maps.Keys(leaves)))
	}
	// Each step, and the process that made it: the API exports over
	// OTLP/HTTP as platform-api (OTEL_SERVICE_NAME), the worker over
	// OTLP/gRPC as platform-worker (OTEL_RESOURCE_ATTRIBUTES).
	want := []struct{ op, service string }{
		{"RunActivity:", "platform-worker"}, {"StartActivity:", "platform-worker"},
		{"RunWorkflow:platform.job.webhook", "platform-worker"},
		{"StartWorkflow:platform.job.webhook", "platform-api"}, {"POST /v1/jobs", "platform-api"},
	}
	for kind, leaf := range leaves {
		chain := ancestry(byID, leaf)
		t.Logf("%s: %s", kind, strings.Join(chain, " ← "))
		if leaf.Service != "platform-worker" {
			t.Errorf("%s span %s from service %q, want platform-worker", kind, leaf.OperationName, leaf.Service)
		}
		at := 0
		for s := leaf; s.SpanID != "" && at < len(want); s = byID[s.parent()] {
			if strings.HasPrefix(s.OperationName, want[at].op) {
				if s.Service != want[at].service {
					t.Errorf("%s span's ancestor %s from service %q, want %s", kind, s.OperationName, s.Service, want[at].service)
				}
				at++
			}
		}
		if at != len(want) {
			t.Errorf("%s span's ancestry %v lacks %v in order", kind, chain, want[at:])
		}
		root := chain[len(chain)-1]
		if root != "POST /v1/jobs" {
			t.Errorf("%s span's root is %q, want the API's server span", kind, root)
		}
	}
	for _, s := range spans {
		if s.TraceID != tid {
			t.Errorf("span %s in trace %s, want %s", s.OperationName, s.TraceID, tid)
		}
		if s.parent() != "" && byID[s.parent()].SpanID == "" {
			t.Errorf("span %s's parent %s is not in the trace", s.OperationName, s.parent())
		}
	}
}

// ancestry is the operation names from s up to its root.
func ancestry(byID map[string]jaegerSpan, s jaegerSpan) []string {
	chain := []string{s.OperationName}
	for s.parent() != "" && len(chain) < 50 {
		p, ok := byID[s.parent()]
		if !ok {
			chain = append(chain, "(missing "+s.parent()+")")
			break
		}
		s = p
		chain = append(chain, s.OperationName)
	}
	return chain
}

func hasAncestor(byID map[string]jaegerSpan, s jaegerSpan, prefix string) bool {
	for _, op := range ancestry(byID, s)[1:] {
		if strings.HasPrefix(op, prefix) {
			return true
		}
	}
	return false
}

// TestTraceExport_AnonymousTraceparentStartsALinkedTrace: an anonymous
// caller's traceparent is not continued (a new trace id, linked to the
// caller's span); an authenticated caller's is.
func TestTraceExport_AnonymousTraceparentStartsALinkedTrace(t *testing.T) {
	j := startJaeger(t)
	p := startTracedPlatform(t, j)
	const remote, remoteSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tp := []string{"traceparent", "00-" + remote + "-" + remoteSpan + "-01"}

	anon := p.call(t, http.MethodGet, "/openapi.json", "", nil, tp...)
	badKey := p.call(t, http.MethodGet, "/v1/jobs", "plk_not_a_key", nil, tp...)
	for _, r := range []response{anon, badKey} {
		tid := r.Header.Get("X-Trace-Id")
		if tid == remote || tid == "" {
			t.Fatalf("an unauthenticated request (%d) continued trace %q", r.Status, tid)
		}
		var root jaegerSpan
		eventually(t, 20*time.Second, "the new trace in jaeger", func() bool {
			spans := j.trace(t, tid)
			for _, s := range spans {
				if s.parent() == "" {
					root = s
				}
			}
			return root.SpanID != ""
		})
		linked := false
		for _, ref := range root.References {
			if ref.TraceID == remote && ref.SpanID == remoteSpan && ref.RefType == "FOLLOWS_FROM" {
				linked = true
			}
		}
		if !linked {
			t.Errorf("root %s of trace %s has references %+v, want a link to %s/%s", root.OperationName, tid, root.References, remote, remoteSpan)
		}
	}

	authed := p.call(t, http.MethodGet, "/v1/jobs", p.admin, nil, tp...)
	if authed.Status != 200 || authed.Header.Get("X-Trace-Id") != remote {
		t.Fatalf("authenticated request: %d, trace %q, want %s continued", authed.Status, authed.Header.Get("X-Trace-Id"), remote)
	}
	eventually(t, 20*time.Second, "the continued trace's server span in jaeger", func() bool {
		for _, s := range j.trace(t, remote) {
			if s.OperationName == "GET /v1/jobs" {
				return s.parent() == remoteSpan
			}
		}
		return false
	})
}

// TestTraceExport_SampleRatioFlagChangesSamplingWithoutRestart: setting the
// flag platform.tracing.sample_ratio to 0 stops new traces in the running
// API; setting it back to 1 resumes them. A trusted sampled traceparent is
// the marker: once its span is in Jaeger, every span that ended before it
// has been exported too.
func TestTraceExport_SampleRatioFlagChangesSamplingWithoutRestart(t *testing.T) {
	j := startJaeger(t)
	p := startTracedPlatform(t, j)
	// sampled sends n anonymous requests then a marker, and says how many of
	// the n reached Jaeger.
	sampled := func(n int) int {
		var tids []string
		for range n {
			tids = append(tids, p.call(t, http.MethodGet, "/openapi.json", "", nil).Header.Get("X-Trace-Id"))
		}
		marker := strings.ReplaceAll(ids.New(ids.Key), "_", "")
		marker = fmt.Sprintf("%032x", []byte(marker))[:32]
		p.call(t, http.MethodGet, "/v1/jobs", p.admin, nil, "traceparent", "00-"+marker+"-00f067aa0ba902b7-01")
		eventually(t, 20*time.Second, "the marker trace in jaeger", func() bool { return len(j.trace(t, marker)) > 0 })
		found := 0
		for _, tid := range tids {
			if len(j.trace(t, tid)) > 0 {
				found++
			}
		}
		return found
	}
	if got := sampled(5); got != 5 {
		t.Fatalf("at ratio 1, %d of 5 traces exported", got)
	}
	setRatio := func(v float64) {
		def := map[string]any{"state": "ENABLED", "variants": map[string]any{"v": v}, "defaultVariant": "v"}
		if r := p.call(t, http.MethodPut, "/v1/flags/platform.tracing.sample_ratio", p.admin, def); r.Status != 200 && r.Status != 201 {
			t.Fatalf("PUT flag: %d %s", r.Status, r.Body)
		}
	}
	setRatio(0)
	eventually(t, 30*time.Second, "ratio 0 to reach the api", func() bool { return sampled(1) == 0 })
	if got := sampled(10); got != 0 {
		t.Errorf("at ratio 0, %d of 10 traces exported", got)
	}
	setRatio(1)
	eventually(t, 30*time.Second, "ratio 1 to reach the api", func() bool { return sampled(1) == 1 })
	if got := sampled(5); got != 5 {
		t.Errorf("back at ratio 1, %d of 5 traces exported", got)
	}
}
