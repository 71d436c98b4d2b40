package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/acme/platform/internal/config"
)

func testServer(t *testing.T) *Server {
	t.Helper()
	return testServerLogging(t, slog.New(slog.DiscardHandler))
}

// testServerLogging is a server without Postgres or Temporal, whose Redis
// is unreachable (the limiter falls back to its in-process buckets).
func testServerLogging(t *testing.T, log *slog.Logger) *Server {
	t.Helper()
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := New(Deps{Config: cfg, Redis: rdb, Keys: "test:", Registry: prometheus.NewRegistry(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOpenAPI_MatchesRouter fails when a route is registered without being
// described, or described without being registered.
func TestOpenAPI_MatchesRouter(t *testing.T) {
	s := testServer(t)
	var registered []string
	err := s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, _ := route.GetMethods()
		for _, m := range methods {
			if m != http.MethodHead { // HEAD rides along with GET
				registered = append(registered, strings.ToLower(m)+" "+path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var described []string
	doc := OpenAPI("http://localhost:8080")
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			described = append(described, method+" "+path)
		}
	}
	sort.Strings(registered)
	sort.Strings(described)
	if diff := cmp.Diff(registered, described); diff != "" {
		t.Errorf("router (-) and OpenAPI (+) differ:\n%s", diff)
	}
}

func TestOpenAPI_ServedAsJSON(t *testing.T) {
	s := testServer(t)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc["openapi"] != "3.1.0" {
		t.Fatalf("status %d, openapi %v, err %v", rec.Code, doc["openapi"], err)
	}
}

func TestRecoverPanic_Answers500WithoutInternals(t *testing.T) {
	h := chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret internal state") }),
		requestID("http://localhost:8080", slog.New(slog.DiscardHandler)), recoverPanic)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 500 || strings.Contains(string(body), "secret") || !strings.Contains(string(body), `"code":"internal"`) {
		t.Errorf("status %d body %s", rec.Code, body)
	}
	var p map[string]any
	_ = json.Unmarshal(body, &p)
	if p["request_id"] != rec.Header().Get("X-Request-Id") {
		t.Errorf("request id %v vs %q", p["request_id"], rec.Header().Get("X-Request-Id"))
	}
}

// TestObserve_UnknownMethodsAreOneLabel sends many long, made-up methods:
// metrics and the access log see one _OTHER value, never the method itself.
func TestObserve_UnknownMethodsAreOneLabel(t *testing.T) {
	var logs bytes.Buffer
	s := testServerLogging(t, slog.New(slog.NewJSONHandler(&logs, nil)))
	long := strings.Repeat("Q", 2000)
	for i := range 20 {
		for _, path := range []string{"/v1/jobs", "/nowhere"} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Method = fmt.Sprintf("M%d%s", i, long)
			s.Handler().ServeHTTP(httptest.NewRecorder(), req)
		}
	}
	s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	families, err := s.deps.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "http_request") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" {
					methods[l.GetValue()] = true
				}
			}
		}
	}
	if diff := cmp.Diff(map[string]bool{"GET": true, "_OTHER": true}, methods); diff != "" {
		t.Errorf("method labels (-want +got):\n%.500s", diff)
	}
	if strings.Contains(logs.String(), long) {
		t.Errorf("the access log carries the made-up method: %.300s", logs.String())
	}
}

func TestNormalMethod(t *testing.T) {
	for in, want := range map[string]string{
		"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE",
		"OPTIONS": "OPTIONS", "get": "_OTHER", "CONNECT": "_OTHER", "TRACE": "_OTHER", "BREW": "_OTHER", "": "_OTHER",
	} {
		if got := normalMethod(in); got != want {
			t.Errorf("normalMethod(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReadyz_ChecksDependenciesAtMostOncePerSecond: a burst of probes costs
// one dependency check per second of the (injected) clock.
func TestReadyz_ChecksDependenciesAtMostOncePerSecond(t *testing.T) {
	s := testServer(t)
	var checks atomic.Int64
	s.checkDeps = func(context.Context) map[string]string {
		checks.Add(1)
		return map[string]string{"postgres": "ok"}
	}
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	burst := func() {
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
				if rec.Code != http.StatusOK {
					t.Errorf("readyz = %d %s", rec.Code, rec.Body)
				}
			})
		}
		wg.Wait()
	}
	burst()
	if n := checks.Load(); n != 1 {
		t.Errorf("50 probes ran %d checks, want 1", n)
	}
	advance(999 * time.Millisecond)
	burst()
	if n := checks.Load(); n != 1 {
		t.Errorf("after 999ms: %d checks, want 1", n)
	}
	advance(time.Millisecond)
	burst()
	if n := checks.Load(); n != 2 {
		t.Errorf("after 1s: %d checks, want 2", n)
	}
}

// TestMetrics_OnlyOnTheOpsListener: the public handler does not expose the
// registry; the ops handler serves it beside the probes.
func TestMetrics_OnlyOnTheOpsListener(t *testing.T) {
	s := testServer(t)
	s.checkDeps = func(context.Context) map[string]string { return map[string]string{"postgres": "unreachable"} }
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("public /metrics = %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	s.OpsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "http_requests_total") {
		t.Errorf("ops /metrics = %d %.200s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		rec = httptest.NewRecorder()
		s.OpsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		// The stub check fails, so /readyz is 503.
		if rec.Code != http.StatusOK && !(path == "/readyz" && rec.Code == http.StatusServiceUnavailable) {
			t.Errorf("ops %s = %d %s", path, rec.Code, rec.Body)
		}
	}
}

// TestTracing_DropsInboundBaggage: a client's baggage never reaches the
// request context (and so never the Temporal headers of what it starts).
func TestTracing_DropsInboundBaggage(t *testing.T) {
	members := -1
	h := tracing(sdktrace.NewTracerProvider(), nil)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		members = baggage.FromContext(r.Context()).Len()
	}))
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set("Baggage", "tenant=someone-else,blob="+strings.Repeat("x", 100))
	h.ServeHTTP(httptest.NewRecorder(), req)
	if members != 0 {
		t.Errorf("%d baggage members reached the handler, want 0", members)
	}
}

// TestMetrics_DependencyReadinessGauges: the readiness check is exported per
// dependency, 1 reachable and 0 not, from the same cached check as /readyz.
func TestMetrics_DependencyReadinessGauges(t *testing.T) {
	s := testServer(t)
	s.checkDeps = func(context.Context) map[string]string {
		return map[string]string{"postgres": "ok", "redis": "unreachable", "temporal": "ok"}
	}
	got := map[string]float64{}
	families, err := s.deps.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "platform_dependency_ready" {
			continue
		}
		for _, m := range f.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"postgres": 1, "redis": 0, "temporal": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("platform_dependency_ready (-want +got):\n%s", diff)
	}
}

// TestObserve_ClassLabel: every request is counted under the SLO class its
// method and route template give, never under anything the client sent.
func TestObserve_ClassLabel(t *testing.T) {
	s := testServer(t)
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/v1/jobs/job_x"}, {http.MethodPost, "/v1/jobs"}, {http.MethodGet, "/healthz"},
		{http.MethodGet, "/nowhere/at/all"}, {http.MethodPost, "/ofrep/v1/evaluate/flags/f"},
	} {
		s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	families, err := s.deps.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["method"]+" "+l["route"]+" "+l["class"]] = true
		}
	}
	want := map[string]bool{
		"GET /v1/jobs/{id} reads": true, "POST /v1/jobs job_start": true, "GET /healthz none": true,
		"GET unmatched none": true, "POST /ofrep/v1/evaluate/flags/{key} ofrep": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("http_requests_total series (-want +got):\n%s", diff)
	}
}

// TestTracing_TrustsTraceparentOnlyFromAuthenticatedCallers: an
// authenticated request continues the caller's trace; any other starts a
// new trace with a link to the caller's span.
func TestTracing_TrustsTraceparentOnlyFromAuthenticatedCallers(t *testing.T) {
	const remoteTrace, remoteSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, c := range []struct {
		name    string
		trusted bool
	}{{"authenticated", true}, {"anonymous", false}} {
		t.Run(c.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			asked := false
			h := tracing(tp, func(*http.Request) bool { asked = true; return c.trusted })(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			req := httptest.NewRequest(http.MethodGet, "/v1/keys", nil)
			req.Header.Set("Traceparent", "00-"+remoteTrace+"-"+remoteSpan+"-01")
			h.ServeHTTP(httptest.NewRecorder(), req)
			spans := rec.Ended()
			if !asked || len(spans) != 1 {
				t.Fatalf("trust asked %v, %d spans", asked, len(spans))
			}
			sp := spans[0]
			continued := sp.SpanContext().TraceID().String() == remoteTrace && sp.Parent().SpanID().String() == remoteSpan
			if continued != c.trusted {
				t.Errorf("trace %s parent %s: continued = %v, want %v", sp.SpanContext().TraceID(), sp.Parent().SpanID(), continued, c.trusted)
			}
			linked := len(sp.Links()) == 1 && sp.Links()[0].SpanContext.TraceID().String() == remoteTrace
			if !c.trusted && (!linked || sp.Parent().IsValid()) {
				t.Errorf("anonymous request: parent %v, links %v; want a new root linked to the caller's span", sp.Parent(), sp.Links())
			}
		})
	}
	// Without a traceparent, nothing needs trusting: no key lookup happens.
	h := tracing(sdktrace.NewTracerProvider(), func(*http.Request) bool { t.Error("trust asked without a traceparent"); return false })(http.NotFoundHandler())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
}

// TestTracing_ServerSpanNamedByRouteTemplate: the server span starts before
// mux has matched, so it is named (and given http.route) once the route is
// known: the template, never the path a client sent.
func TestTracing_ServerSpanNamedByRouteTemplate(t *testing.T) {
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	rec := tracetest.NewSpanRecorder()
	s, err := New(Deps{Config: cfg, Redis: rdb, Keys: "test:", Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler),
		Tracer: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/v1/jobs/job_x"}, {http.MethodPost, "/v1/jobs"}, {http.MethodGet, "/nowhere/at/all"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	var got []string
	for _, sp := range rec.Ended() {
		route := ""
		for _, kv := range sp.Attributes() {
			if kv.Key == "http.route" {
				route = kv.Value.AsString()
			}
		}
		got = append(got, sp.Name()+" route="+route)
	}
	want := []string{"GET /v1/jobs/{id} route=/v1/jobs/{id}", "POST /v1/jobs route=/v1/jobs", "GET unmatched route="}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("server spans (-want +got):\n%s", diff)
	}
}

// TestTracing_ServerSpanAttributesAndStatus: the server span carries the
// HTTP semantic conventions' attributes, bounded where a client chooses
// them, and the response status; a 5xx marks it an error, a 4xx does not.
func TestTracing_ServerSpanAttributesAndStatus(t *testing.T) {
	for _, c := range []struct {
		status int
		failed bool
	}{{http.StatusServiceUnavailable, true}, {http.StatusNotFound, false}, {http.StatusOK, false}} {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		h := chain(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(c.status) }),
			tracing(tp, nil), newHTTPMetrics(prometheus.NewRegistry()).observe(nil))
		req := httptest.NewRequest(http.MethodGet, "/v1/"+strings.Repeat("p", 1000), nil)
		req.Header.Set("User-Agent", strings.Repeat("u", 1000))
		h.ServeHTTP(httptest.NewRecorder(), req)
		spans := rec.Ended()
		if len(spans) != 1 {
			t.Fatalf("%d spans", len(spans))
		}
		attrs := map[string]string{}
		for _, kv := range spans[0].Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if attrs["http.request.method"] != "GET" || attrs["url.scheme"] != "http" || attrs["client.address"] != "192.0.2.1" ||
			attrs["http.response.status_code"] != fmt.Sprint(c.status) {
			t.Errorf("status %d: attributes %v", c.status, attrs)
		}
		if len(attrs["url.path"]) > maxLoggedPath+len("…") || len(attrs["user_agent.original"]) > maxSpanUserAgent+len("…") {
			t.Errorf("unbounded attributes: path %d bytes, user agent %d bytes", len(attrs["url.path"]), len(attrs["user_agent.original"]))
		}
		if failed := spans[0].Status().Code == codes.Error; failed != c.failed {
			t.Errorf("status %d: span error = %v, want %v", c.status, failed, c.failed)
		}
	}
}

// TestReadyz_DrainingAnswerClosesTheConnection: the 503 that tells a load
// balancer the replica drains also asks the client to reconnect, even for a
// request that arrived just before draining began (closeWhenDraining looked
// too early for it).
func TestReadyz_DrainingAnswerClosesTheConnection(t *testing.T) {
	s := testServer(t)
	s.checkDeps = func(context.Context) map[string]string { return map[string]string{"postgres": "ok"} }
	h := s.Handler() // without closeWhenDraining, as for a request already past it
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Connection") != "" {
		t.Fatalf("ready: %d, Connection %q", rec.Code, rec.Header().Get("Connection"))
	}
	s.draining.Store(true)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Connection") != "close" {
		t.Errorf("draining: %d, Connection %q; want 503 and close", rec.Code, rec.Header().Get("Connection"))
	}
}
