package drill

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/acme/platform/drills/experiment"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/testenv"
	"github.com/acme/platform/workflows/drill"
)

// TestRemoveToxics_LeavesTheProxyClean applies every fault to a real
// (in-process) Toxiproxy and checks that the compensation removes them
// all, re-enables a cut proxy, and is idempotent.
func TestRemoveToxics_LeavesTheProxyClean(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer upstream.Close()
	adminURL, c := testenv.Toxiproxy(t)
	testenv.Proxy(t, c, drill.PostgresProxy, strings.TrimPrefix(upstream.URL, "http://"))
	a := &Activities{Config: config.Config{ToxiproxyURL: adminURL}}
	p, err := c.Proxy(drill.PostgresProxy)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range drill.Faults {
		if err := applyFault(p, f); err != nil {
			t.Fatalf("apply %s: %v", f, err)
		}
	}
	p, _ = c.Proxy(drill.PostgresProxy)
	if len(p.ActiveToxics) != 3 || p.Enabled {
		t.Fatalf("before: %d toxics, enabled %v", len(p.ActiveToxics), p.Enabled)
	}
	res, err := a.RemoveToxics(context.Background(), drill.RemoveToxicsInput{Proxy: drill.PostgresProxy})
	if err != nil || len(res.Removed) != 4 {
		t.Fatalf("removed %v, %v", res.Removed, err)
	}
	p, _ = c.Proxy(drill.PostgresProxy)
	if len(p.ActiveToxics) != 0 || !p.Enabled {
		t.Fatalf("after: %v toxics, enabled %v", p.ActiveToxics, p.Enabled)
	}
	if res, err := a.RemoveToxics(context.Background(), drill.RemoveToxicsInput{Proxy: drill.PostgresProxy}); err != nil || len(res.Removed) != 0 {
		t.Fatalf("second removal: %v, %v", res.Removed, err)
	}
	if _, err := a.RemoveToxics(context.Background(), drill.RemoveToxicsInput{Proxy: "tenant-proxy"}); err == nil {
		t.Fatal("a proxy that is not the platform's was accepted")
	}
	if _, err := (&Activities{}).RemoveToxics(context.Background(), drill.RemoveToxicsInput{Proxy: drill.RedisProxy}); err == nil {
		t.Fatal("no Toxiproxy configured, and no error")
	}
}

func TestParseMetrics(t *testing.T) {
	text := "# HELP go_goroutines x\ngo_goroutines 42\nplatform_db_pool_empty_acquire_total{pool=\"a\"} 3\n" +
		"platform_db_pool_empty_acquire_total{pool=\"b\"} 4\nprocess_resident_memory_bytes 1.5e+07\n"
	m := parseMetrics(strings.NewReader(text))
	if m[metricGoroutines] != 42 || m[metricPoolWaits] != 7 || m[metricRSS] != 1.5e7 {
		t.Fatalf("metrics = %v", m)
	}
	r := resources(map[string]float64{metricCPU: 1, metricPoolWaits: 2}, map[string]float64{metricCPU: 3, metricPoolWaits: 7, metricRSS: 9}, 4)
	if r["cpu_seconds_per_second"] != 0.5 || r["pool_acquire_waits"] != 5 || r["rss_bytes"] != 9 {
		t.Fatalf("resources = %v", r)
	}
}

func TestClassOfAndTally(t *testing.T) {
	for url, want := range map[string]string{
		"http://x/v1/jobs/job_1": experiment.ClassGetByID, "http://x/v1/jobs?limit=20": experiment.ClassList,
		"http://x/ofrep/v1/evaluate/flags/f": experiment.ClassOFREP,
	} {
		if got := classOf("GET", url); got != want {
			t.Errorf("classOf(%s) = %s", url, got)
		}
	}
	tl := newTally()
	tl.add(&vegeta.Result{Method: "POST", URL: "http://x/v1/jobs", Code: 201, Body: []byte(`{"id":"job_1"}`), Latency: time.Millisecond})
	tl.add(&vegeta.Result{Method: "POST", URL: "http://x/v1/jobs", Code: 503, Latency: 3 * time.Millisecond})
	tl.add(&vegeta.Result{Method: "POST", URL: "http://x/v1/jobs", Code: 429, Latency: 2 * time.Millisecond})
	s := tl.step(10, 2)
	c := s.Classes[experiment.ClassCreate]
	if c.Requests != 3 || c.Errors != 1 || c.Limited != 1 || c.Rate != 1.5 || c.P99 != 3 || !slices.Equal(tl.acked, []string{"job_1"}) {
		t.Fatalf("class = %+v, acked %v", c, tl.acked)
	}
}

// TestFaultLoad_StopsPastTheGrace feeds windows of 500s to the degraded
// load: it asks to stop only once they outlast the grace.
func TestFaultLoad_StopsPastTheGrace(t *testing.T) {
	l := &faultLoad{breaker: experiment.Breaker{MaxErrorRate: 0.5, MaxP99: 1000, Grace: 2 * time.Second}, byFault: map[string]*faultTally{}}
	l.setFault(drill.FaultCut)
	t0 := time.Now()
	stopAt := -1
	for i := 0; i < 100; i++ {
		r := &vegeta.Result{Code: 500, Timestamp: t0.Add(time.Duration(i) * 100 * time.Millisecond), Latency: time.Millisecond}
		if l.add(r) {
			stopAt = i
			break
		}
	}
	if stopAt < 20 || stopAt > 40 || !strings.Contains(l.stoppedBy(), "error rate 100.0 %") {
		t.Fatalf("stopped at %d: %q", stopAt, l.stoppedBy())
	}
	res := l.results([]string{drill.FaultCut})
	if res[0].Errors500 != stopAt+1 || res[0].Unexpected != stopAt+1 {
		t.Fatalf("results = %+v", res)
	}
	shed := &vegeta.Result{Code: 503, Headers: http.Header{"Retry-After": {"1"}}}
	if unexpected(shed) || !unexpected(&vegeta.Result{Code: 503}) || !unexpected(&vegeta.Result{}) {
		t.Fatal("a 503 with Retry-After is the degraded mode; without it, or no answer, is not")
	}
}
